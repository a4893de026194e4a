package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/gitgrant/gitgrant"
)

// Stamped by the linker in release builds (.goreleaser.yaml, .ko.yaml):
//
//	-X main.version=v1.2.3 -X main.commit=<full sha> -X main.date=<commit date, RFC 3339>
//
// Empty in any other build; then the Go toolchain's own record of the build
// (debug.ReadBuildInfo) says what it can.
var (
	version = ""
	commit  = ""
	date    = ""
)

// buildDetails says which gitgrant this is.
type buildDetails struct {
	Version  string // v1.2.3, a pseudo-version, or "devel"
	Commit   string
	Date     string
	Modified bool // built from a work tree with uncommitted changes
}

func runVersion(ctx context.Context, args []string, e *env) error {
	fs := newFlags("version", "", "Print gitgrant's version, the commit and date it was built from, the format versions it reads, and the Go toolchain.", e)
	if err := parseFlagsOnly(fs, args); err != nil {
		return err
	}
	info, _ := debug.ReadBuildInfo()
	writeVersion(e.stdout, describeBuild(buildDetails{Version: version, Commit: commit, Date: date}, info))
	return nil
}

// describeBuild prefers what the release stamped; what it left empty
// comes from the build info: the module version (set by `go install
// module@version`, or derived from the VCS by a local build) and the VCS
// settings that `go build` records unless -buildvcs=false.
func describeBuild(stamped buildDetails, info *debug.BuildInfo) buildDetails {
	d := stamped
	if info != nil {
		if d.Version == "" {
			d.Version = info.Main.Version
		}
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				if d.Commit == "" {
					d.Commit = s.Value
				}
			case "vcs.time":
				if d.Date == "" {
					d.Date = s.Value
				}
			case "vcs.modified":
				d.Modified = s.Value == "true"
			}
		}
	}
	if d.Version == "" || d.Version == "(devel)" {
		d.Version = "devel"
	}
	return d
}

func writeVersion(w io.Writer, d buildDetails) {
	fmt.Fprintf(w, "gitgrant %s\n", d.Version)
	if d.Commit != "" {
		modified := ""
		if d.Modified {
			modified = " (modified)"
		}
		fmt.Fprintf(w, "commit: %s%s\n", d.Commit, modified)
	}
	if d.Date != "" {
		fmt.Fprintf(w, "date: %s\n", d.Date)
	}
	fmt.Fprintf(w, "formats: request v%d, config v%d\ngo: %s %s/%s\n", gitgrant.CurrentVersion, gitgrant.CurrentVersion, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

package main

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/gitgrant/gitgrant"
)

// version is set at release time with -ldflags "-X main.version=v1.2.3".
var version = ""

func runVersion(ctx context.Context, args []string, e *env) error {
	fs := newFlags("version", "", "Print gitgrant's version, the format versions it reads, and how it was built.", e)
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	v, commit := version, ""
	if info, ok := debug.ReadBuildInfo(); ok {
		if v == "" {
			v = info.Main.Version
		}
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" {
				commit = s.Value
			}
		}
	}
	if v == "" || v == "(devel)" {
		v = "devel"
	}
	fmt.Fprintf(e.stdout, "gitgrant %s\n", v)
	if commit != "" {
		fmt.Fprintf(e.stdout, "commit: %s\n", commit)
	}
	fmt.Fprintf(e.stdout, "formats: request v%d, config v%d\ngo: %s %s/%s\n", gitgrant.CurrentVersion, gitgrant.CurrentVersion, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}

package main

import (
	"bytes"
	"fmt"
	"runtime"
	"runtime/debug"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestVersionOutput(t *testing.T) {
	t.Parallel()
	const sha = "ef4c288d1c3a3f0e6b1e5f6a7b8c9d0e1f2a3b4c"
	vcs := func(settings ...string) []debug.BuildSetting {
		var out []debug.BuildSetting
		for i := 0; i+1 < len(settings); i += 2 {
			out = append(out, debug.BuildSetting{Key: settings[i], Value: settings[i+1]})
		}
		return out
	}
	tail := fmt.Sprintf("formats: request v1, config v1\ngo: %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	tests := []struct {
		name    string
		stamped buildDetails
		info    *debug.BuildInfo
		want    string
	}{
		{
			name:    "release build: the stamp wins over the build info",
			stamped: buildDetails{Version: "v1.2.3", Commit: sha, Date: "2026-11-20T10:00:00Z"},
			info: &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261120100000-ef4c288d1c3a"},
				Settings: vcs("vcs.revision", "0000000000000000000000000000000000000000", "vcs.time", "2000-01-01T00:00:00Z")},
			want: "gitgrant v1.2.3\ncommit: " + sha + "\ndate: 2026-11-20T10:00:00Z\n",
		},
		{
			name: "go install github.com/gitgrant/gitgrant/cmd/gitgrant@v1.2.3",
			info: &debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}},
			want: "gitgrant v1.2.3\n",
		},
		{
			name: "go build in a work tree with changes",
			info: &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261120100000-ef4c288d1c3a+dirty"},
				Settings: vcs("vcs", "git", "vcs.revision", sha, "vcs.time", "2026-11-20T10:00:00Z", "vcs.modified", "true")},
			want: "gitgrant v0.0.0-20261120100000-ef4c288d1c3a+dirty\ncommit: " + sha + " (modified)\ndate: 2026-11-20T10:00:00Z\n",
		},
		{
			name: "go build in a clean work tree",
			info: &debug.BuildInfo{Main: debug.Module{Version: "(devel)"},
				Settings: vcs("vcs.revision", sha, "vcs.time", "2026-11-20T10:00:00Z", "vcs.modified", "false")},
			want: "gitgrant devel\ncommit: " + sha + "\ndate: 2026-11-20T10:00:00Z\n",
		},
		{
			name: "go run with -buildvcs=false",
			info: &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}},
			want: "gitgrant devel\n",
		},
		{
			name: "no build info at all",
			want: "gitgrant devel\n",
		},
		{
			name:    "a stamp with the version only keeps the commit the toolchain recorded",
			stamped: buildDetails{Version: "v1.2.3"},
			info:    &debug.BuildInfo{Settings: vcs("vcs.revision", sha)},
			want:    "gitgrant v1.2.3\ncommit: " + sha + "\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			writeVersion(&out, describeBuild(tt.stamped, tt.info))
			if diff := cmp.Diff(tt.want+tail, out.String()); diff != "" {
				t.Errorf("gitgrant version (-want +got):\n%s", diff)
			}
		})
	}
}

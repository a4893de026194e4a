package workflowcheck

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The check finds each hazard it is meant to find.
func TestCheck(t *testing.T) {
	t.Parallel()
	const pinned = "actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1 # v7.0.1"
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"hardened", `
on: pull_request_target
permissions: {}
jobs:
  a:
    permissions: {contents: read, pull-requests: write}
    steps:
      - uses: ` + pinned + `
      - run: make
`, nil},
		{"local action with a write token, unpinned actions", `
on: pull_request
permissions:
  contents: read
  checks: write
jobs:
  validate:
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-go@0aaccfd150d50ccaeb58ebd88d36e91967a5f35b
      - uses: ./
`, []string{
			"w.yml:3: top-level permissions grant checks: write; grant nothing (permissions: {}) or read, and give each job what it needs",
			"w.yml:6: job validate does not say which permissions it needs",
			"w.yml:8: actions/checkout@v4 is not pinned: use a full commit SHA with a # vX.Y.Z comment",
			"w.yml:9: actions/setup-go@0aaccfd150d50ccaeb58ebd88d36e91967a5f35b has no # vX.Y.Z comment naming its release",
			"w.yml:10: job validate can write (checks: write) and runs the local action ./, the code of whatever commit it checked out",
		}},
		{"write-all job, local action", `
on: push
permissions: read-all
jobs:
  a:
    permissions: write-all
    steps:
      - uses: ./.github/actions/x
`, []string{
			"w.yml:7: job a can write (write-all) and runs the local action ./.github/actions/x, the code of whatever commit it checked out",
		}},
		{"no top-level permissions; local action in a privileged trigger", `
on: {workflow_run: {workflows: [x]}}
jobs:
  a:
    permissions: {}
    steps:
      - uses: ./
`, []string{
			"w.yml:1: no top-level permissions: say permissions: {} and give each job what it needs",
			"w.yml:6: runs the local action ./ in a workflow triggered by workflow_run, which has the base repository's token for code it did not write",
		}},
		{"reusable workflow and docker image", `
on: push
permissions: {}
jobs:
  a:
    permissions: {}
    uses: org/repo/.github/workflows/x.yml@main
  b:
    permissions: {}
    steps:
      - uses: docker://alpine:3
`, []string{
			"w.yml:6: org/repo/.github/workflows/x.yml@main is not pinned: use a full commit SHA with a # vX.Y.Z comment",
			"w.yml:10: docker://alpine:3 is not pinned: use an image digest (@sha256:...)",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tt.want, Check("w.yml", []byte(strings.TrimPrefix(tt.yaml, "\n")))); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

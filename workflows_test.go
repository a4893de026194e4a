package gitgrant_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"gopkg.in/yaml.v3"
)

// The workflows in .github/ and the action's own steps run with tokens
// that can write to the access repository. These rules keep them from
// running a pull request's own code with such a token, and from running
// third-party code that can change under them (actionlint, run by .ci/run,
// checks the rest):
//   - every third-party action is pinned by full commit SHA, with a
//     "# vX.Y.Z" comment saying which release that is;
//   - a workflow's top-level permissions grant no write; each job says
//     which permissions it needs;
//   - a job that can write never runs a local action (uses: ./...), which
//     is whatever commit the job checked out, a pull request's included;
//   - a workflow that runs with the base repository's token for someone
//     else's code (pull_request_target, workflow_run) runs no local action.
func TestWorkflowsAreHardened(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(".github/workflows/*.y*ml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no workflows found in .github/workflows")
	}
	for _, path := range append(files, "action.yml") {
		t.Run(path, func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range checkWorkflow(path, data) {
				t.Error(p)
			}
		})
	}
}

// The check finds each hazard it is meant to find.
func TestCheckWorkflow(t *testing.T) {
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
			if diff := cmp.Diff(tt.want, checkWorkflow("w.yml", []byte(strings.TrimPrefix(tt.yaml, "\n")))); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

var (
	shaPin      = regexp.MustCompile(`@[0-9a-f]{40}$`)
	releaseNote = regexp.MustCompile(`^#\s*v[0-9]+\.[0-9]+\.[0-9]+\b`)
)

// checkWorkflow lists what breaks the rules above in one workflow or
// action file, each as "file:line: problem".
func checkWorkflow(path string, data []byte) []string {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil || len(doc.Content) == 0 {
		return []string{fmt.Sprintf("%s: not YAML: %v", path, err)}
	}
	root := doc.Content[0]
	var problems []string
	report := func(n *yaml.Node, format string, args ...any) {
		problems = append(problems, fmt.Sprintf("%s:%d: %s", path, n.Line, fmt.Sprintf(format, args...)))
	}
	isAction := get(root, "runs") != nil
	triggers := eventNames(get(root, "on"))
	privileged := ""
	for _, e := range []string{"pull_request_target", "workflow_run"} {
		if slices.Contains(triggers, e) {
			privileged = e
		}
	}
	if !isAction {
		switch perms := get(root, "permissions"); {
		case perms == nil:
			report(root, "no top-level permissions: say permissions: {} and give each job what it needs")
		case writes(perms) != "":
			report(perms, "top-level permissions grant %s; grant nothing (permissions: {}) or read, and give each job what it needs", writes(perms))
		}
	}
	checkUses := func(n *yaml.Node, job, canWrite string) {
		uses := n.Value
		switch {
		case strings.HasPrefix(uses, "./"):
			if privileged != "" {
				report(n, "runs the local action %s in a workflow triggered by %s, which has the base repository's token for code it did not write", uses, privileged)
			} else if canWrite != "" {
				report(n, "job %s can write (%s) and runs the local action %s, the code of whatever commit it checked out", job, canWrite, uses)
			}
		case strings.HasPrefix(uses, "docker://"):
			if !strings.Contains(uses, "@sha256:") {
				report(n, "%s is not pinned: use an image digest (@sha256:...)", uses)
			}
		case !shaPin.MatchString(uses):
			report(n, "%s is not pinned: use a full commit SHA with a # vX.Y.Z comment", uses)
		case !releaseNote.MatchString(n.LineComment):
			report(n, "%s has no # vX.Y.Z comment naming its release", uses)
		}
	}
	if isAction {
		for _, step := range items(get(get(root, "runs"), "steps")) {
			if u := get(step, "uses"); u != nil {
				checkUses(u, "", "")
			}
		}
		return problems
	}
	jobs := get(root, "jobs")
	for i := 0; jobs != nil && i+1 < len(jobs.Content); i += 2 {
		name, job := jobs.Content[i].Value, jobs.Content[i+1]
		perms := get(job, "permissions")
		if perms == nil {
			report(jobs.Content[i], "job %s does not say which permissions it needs", name)
			perms = get(root, "permissions")
		}
		canWrite := writes(perms)
		if u := get(job, "uses"); u != nil {
			checkUses(u, name, canWrite)
		}
		for _, step := range items(get(job, "steps")) {
			if u := get(step, "uses"); u != nil {
				checkUses(u, name, canWrite)
			}
		}
	}
	return problems
}

// get is the value of key in mapping n, or nil.
func get(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

func items(n *yaml.Node) []*yaml.Node {
	if n == nil || n.Kind != yaml.SequenceNode {
		return nil
	}
	return n.Content
}

// eventNames lists the events of an `on:` (a name, a list or a mapping).
func eventNames(on *yaml.Node) []string {
	switch {
	case on == nil:
		return nil
	case on.Kind == yaml.ScalarNode:
		return []string{on.Value}
	case on.Kind == yaml.SequenceNode:
		var out []string
		for _, n := range on.Content {
			out = append(out, n.Value)
		}
		return out
	}
	var out []string
	for i := 0; i < len(on.Content); i += 2 {
		out = append(out, on.Content[i].Value)
	}
	return out
}

// writes names what a permissions value lets a token write, or "".
func writes(perms *yaml.Node) string {
	switch {
	case perms == nil:
		return "" // GitHub's default depends on repository settings; reported elsewhere
	case perms.Kind == yaml.ScalarNode:
		if perms.Value == "write-all" {
			return "write-all"
		}
		return ""
	}
	var w []string
	for i := 0; i+1 < len(perms.Content); i += 2 {
		if perms.Content[i+1].Value == "write" {
			w = append(w, perms.Content[i].Value+": write")
		}
	}
	return strings.Join(w, ", ")
}

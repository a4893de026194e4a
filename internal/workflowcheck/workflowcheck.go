// Package workflowcheck holds the rules gitgrant's own workflows, its
// action and the workflows `gitgrant init` writes must follow: they run
// with tokens that can write to the access repository. The rules keep them from
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
package workflowcheck

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

var (
	shaPin      = regexp.MustCompile(`@[0-9a-f]{40}$`)
	releaseNote = regexp.MustCompile(`^#\s*v[0-9]+\.[0-9]+\.[0-9]+\b`)
)

// Check lists what breaks the rules in one workflow or action file,
// each as "file:line: problem".
func Check(path string, data []byte) []string {
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

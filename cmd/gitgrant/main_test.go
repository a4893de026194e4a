package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gitgrant/gitgrant/internal/testing/golden"

	"github.com/gitgrant/gitgrant/internal/testing/fakeclock"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/schema"
)

var testNow = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

// result is one in-process run of the gitgrant command.
type result struct {
	code           int
	stdout, stderr string
}

func runCLI(t *testing.T, vars map[string]string, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	e := &env{
		stdin:  strings.NewReader(""),
		stdout: &stdout,
		stderr: &stderr,
		getenv: testEnv(vars),
		clk:    fakeclock.NewAuto(testNow), // waits (retries, rate limits) pass at once
	}
	code := run(context.Background(), args, e)
	return result{code, stdout.String(), stderr.String()}
}

// wantContains fails the test for each of wants that text, named by what
// (such as "stderr"), does not contain.
func wantContains(t *testing.T, what, text string, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(text, want) {
			t.Errorf("%s lacks %q:\n%s", what, want, text)
		}
	}
}

// badRepo copies testdata/badrepo and adds what git cannot carry well in
// a test fixture (a symlink).
func badRepo(t *testing.T) string {
	t.Helper()
	dst := t.TempDir()
	if err := os.CopyFS(dst, os.DirFS("testdata/badrepo")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../gitgrant.yaml", filepath.Join(dst, "requests/orders-db/link.yaml")); err != nil {
		t.Fatal(err)
	}
	return dst
}

func TestValidateTemplateExamples(t *testing.T) {
	t.Parallel()
	r := runCLI(t, nil, "validate", "--repo", "../..")
	if r.code != gitgrant.ExitOK {
		t.Fatalf("exit %d; the template's own examples must validate:\n%s%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, "0 errors") {
		t.Errorf("stdout = %q", r.stdout)
	}
}

func TestValidateBadRepo(t *testing.T) {
	t.Parallel()
	repo := badRepo(t)
	for _, tc := range []struct {
		name string
		vars map[string]string
		args []string
	}{
		{"validate-bad.txt", nil, []string{"validate", "--repo", repo}},
		{"validate-bad.json", nil, []string{"validate", "--repo", repo, "--output", "json"}},
		{"validate-bad.github", map[string]string{"GITHUB_ACTIONS": "true"}, []string{"validate", "--repo", repo}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runCLI(t, tc.vars, tc.args...)
			if r.code != gitgrant.ExitInvalid {
				t.Errorf("exit %d, want 1; stderr: %s", r.code, r.stderr)
			}
			golden.CheckString(t, filepath.Join("testdata", "golden", tc.name), r.stdout)
		})
	}
}

func TestValidateJSONShape(t *testing.T) {
	t.Parallel()
	r := runCLI(t, nil, "validate", "--repo", badRepo(t), "--output", "json")
	var out struct {
		Version int  `json:"version"`
		OK      bool `json:"ok"`
		Summary struct {
			Files, Requests, Errors, Warnings int
		} `json:"summary"`
		Files []struct {
			Path        string                `json:"path"`
			OK          bool                  `json:"ok"`
			Request     *json.RawMessage      `json:"request"`
			Diagnostics []gitgrant.Diagnostic `json:"diagnostics"`
		} `json:"files"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, r.stdout)
	}
	if out.Version != 1 || out.OK || out.Summary.Requests != 7 || out.Summary.Errors == 0 {
		t.Errorf("unexpected summary: %+v", out)
	}
	for _, f := range out.Files {
		if f.OK != (f.Request != nil || f.Path == "gitgrant.yaml") {
			t.Errorf("%s: ok=%v but request present=%v", f.Path, f.OK, f.Request != nil)
		}
		for _, d := range f.Diagnostics {
			if d.File != f.Path || d.Message == "" {
				t.Errorf("%s: malformed diagnostic %+v", f.Path, d)
			}
		}
	}
}

func TestValidatePathsAndJobSummary(t *testing.T) {
	t.Parallel()
	repo := badRepo(t)
	summary := filepath.Join(t.TempDir(), "summary.md")
	r := runCLI(t, map[string]string{"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": summary},
		"validate", "--repo", repo, "requests/orders-db/ok.yaml", "requests/orders-db/too-long.yaml")
	if r.code != gitgrant.ExitInvalid {
		t.Fatalf("exit %d, want 1", r.code)
	}
	want := "::error file=requests/orders-db/too-long.yaml,line=5,col=11,title=gitgrant%3A duration::duration 5h exceeds the 4h maximum of orders-db/readwrite%0Aask for 4h or less; file a new request to extend later\n"
	if !strings.HasPrefix(r.stdout, want) {
		t.Errorf("annotation:\n got %q\nwant %q", r.stdout, want)
	}
	if strings.Contains(r.stdout, "typos.yaml") {
		t.Errorf("files not named were validated:\n%s", r.stdout)
	}
	md, err := os.ReadFile(summary)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(md), "| ❌ | `requests/orders-db/too-long.yaml:5:11` | duration | duration 5h exceeds") {
		t.Errorf("job summary:\n%s", md)
	}
}

// cliCase is a command line (or the arguments a test adds to its own) and
// how it must end: its exit code and a substring of what it prints.
type cliCase struct {
	name string
	args []string
	code int
	want string
}

func TestExitCodes(t *testing.T) {
	t.Parallel()
	notDir := t.TempDir()
	os.WriteFile(filepath.Join(notDir, "requests"), []byte("x"), 0o644)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() }) // after the parallel subtests, not when this function returns
	busy := ln.Addr().String()
	cases := []cliCase{
		{"no args", nil, gitgrant.ExitUsage, "Commands:"},
		{"help", []string{"--help"}, gitgrant.ExitOK, "validate"},
		{"help command", []string{"help", "request"}, gitgrant.ExitOK, "Usage: gitgrant request"},
		{"command help", []string{"validate", "-h"}, gitgrant.ExitOK, "Usage: gitgrant validate"},
		{"unknown command", []string{"valid"}, gitgrant.ExitUsage, `did you mean "validate"?`},
		{"mistyped command", []string{"valdiate"}, gitgrant.ExitUsage, `did you mean "validate"?`},
		{"mistyped command 2", []string{"reconclie"}, gitgrant.ExitUsage, `did you mean "reconcile"?`},
		{"missing repo folder", []string{"validate", "--repo", filepath.Join(notDir, "nope")}, gitgrant.ExitSystem, "no such directory"},
		{"missing repo folder for providers", []string{"providers", "check", "--repo", filepath.Join(notDir, "nope")}, gitgrant.ExitSystem, "no such directory"},
		{"providers without subcommand", []string{"providers"}, gitgrant.ExitUsage, "providers: missing subcommand (have: check)"},
		{"providers unknown subcommand", []string{"providers", "frobnicate"}, gitgrant.ExitUsage, `unknown subcommand "frobnicate"`},
		{"bad output for providers check", []string{"providers", "check", "--output", "yaml"}, gitgrant.ExitUsage, "--output must be text or json"},
		{"providers check help", []string{"providers", "check", "--help"}, gitgrant.ExitOK, "Usage: gitgrant providers check"},
		{"providers check without config", []string{"providers", "check", "--repo", t.TempDir()}, gitgrant.ExitInvalid, "gitgrant.yaml not found"},
		{"busy port", []string{"serve", "--listen", busy}, gitgrant.ExitSystem, "listen on"},
		{"unknown flag", []string{"validate", "--bogus"}, gitgrant.ExitUsage, "flag provided but not defined: -bogus"},
		{"bad output", []string{"validate", "--output", "xml"}, gitgrant.ExitUsage, `unknown output format "xml"`},
		{"bad output for status", []string{"status", "--output", "xml"}, gitgrant.ExitUsage, `status: unknown output format "xml": use text or json`},
		{"bad output for report", []string{"report", "--output", "xml"}, gitgrant.ExitUsage, `report: unknown output format "xml": use text, json, csv or html`},
		{"bad time for report", []string{"report", "--since", "yesterday"}, gitgrant.ExitUsage, `report: --since: "yesterday" is not a time`},
		{"argument to a command that takes none", []string{"trust", "extra"}, gitgrant.ExitUsage, `trust: unexpected argument "extra" (see 'gitgrant trust --help')`},
		{"argument to plan", []string{"plan", "requests/x.yaml"}, gitgrant.ExitUsage, `plan: unexpected argument "requests/x.yaml"`},
		{"argument to reconcile", []string{"reconcile", "now"}, gitgrant.ExitUsage, `reconcile: unexpected argument "now"`},
		{"argument to status", []string{"status", "alice"}, gitgrant.ExitUsage, `status: unexpected argument "alice"`},
		{"argument to version", []string{"version", "x"}, gitgrant.ExitUsage, `version: unexpected argument "x"`},
		{"missing path", []string{"validate", "--repo", "../..", "requests/nope.yaml"}, gitgrant.ExitSystem, "nope.yaml"},
		{"unreadable tree", []string{"validate", "--repo", notDir}, gitgrant.ExitSystem, "is not a directory"},
		{"schema without kind", []string{"schema"}, gitgrant.ExitUsage, "request, config or provider"},
		{"schema unknown provider", []string{"schema", "provider", "nope"}, gitgrant.ExitUsage, "unknown provider type"},
		{"version", []string{"version"}, gitgrant.ExitOK, "formats: request v1"},
		{"--version", []string{"--version"}, gitgrant.ExitOK, "gitgrant "},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := runCLI(t, nil, tc.args...)
			if r.code != tc.code {
				t.Errorf("exit %d, want %d\n%s%s", r.code, tc.code, r.stdout, r.stderr)
			}
			if !strings.Contains(r.stdout+r.stderr, tc.want) {
				t.Errorf("output lacks %q:\n%s%s", tc.want, r.stdout, r.stderr)
			}
			if strings.Contains(r.stderr, "gitgrant: gitgrant:") {
				t.Errorf("doubled prefix:\n%s", r.stderr)
			}
		})
	}
}

// Every flag's help names its value sensibly: a back-quoted word in a
// usage string becomes the value's name, which once made --help show
// "-once gitgrant serve".
func TestHelpHasNoStrayValueNames(t *testing.T) {
	t.Parallel()
	for _, c := range commands() {
		r := runCLI(t, nil, c.name, "--help")
		for _, line := range strings.Split(r.stdout, "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "-") && strings.Contains(line, "gitgrant") {
				t.Errorf("gitgrant %s --help: %q", c.name, line)
			}
		}
	}
}

func TestSchemaCommandPrintsEmbeddedSchemas(t *testing.T) {
	t.Parallel()
	for kind, want := range map[string][]byte{"request": schema.RequestSchema(), "config": schema.ConfigSchema()} {
		r := runCLI(t, nil, "schema", kind)
		if r.code != 0 || r.stdout != string(want) {
			t.Errorf("schema %s: exit %d, output differs from the embedded schema", kind, r.code)
		}
		if !json.Valid([]byte(r.stdout)) {
			t.Errorf("schema %s is not JSON", kind)
		}
	}
	r := runCLI(t, nil, "schema", "provider", "postgres")
	if r.code != 0 || !strings.Contains(r.stdout, "dsn_env") {
		t.Errorf("schema provider postgres: exit %d\n%s", r.code, r.stdout)
	}
}

func templateRepo(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	cfg, err := os.ReadFile("../../gitgrant.yaml")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "gitgrant.yaml"), cfg, 0o644)
	return dir
}

func TestRequestWritesAValidFile(t *testing.T) {
	t.Parallel()
	repo := templateRepo(t)
	r := runCLI(t, nil, "request", "--repo", repo, "--requester", "alice", "--provider", "orders-db", "--role", "readwrite",
		"--for", "2h", "--reason", "Repair stuck orders: INC-77", "--ticket", "INC-77")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	const path = "requests/orders-db/alice-readwrite-20261122.yaml"
	if !strings.Contains(r.stdout, "wrote "+path) {
		t.Errorf("stdout: %s", r.stdout)
	}
	data, err := os.ReadFile(filepath.Join(repo, path))
	if err != nil {
		t.Fatal(err)
	}
	golden.CheckString(t, filepath.Join("testdata", "golden", "request-written.yaml"), string(data))
	if v := runCLI(t, nil, "validate", "--repo", repo); v.code != 0 {
		t.Errorf("the written file does not validate:\n%s", v.stdout)
	}
	// the same request again gets a new name, never overwrites
	r = runCLI(t, nil, "request", "--repo", repo, "--requester", "alice", "--provider", "orders-db", "--role", "readwrite",
		"--for", "1h", "--reason", "Second look", "--ticket", "INC-78")
	if r.code != 0 || !strings.Contains(r.stdout, "alice-readwrite-20261122-2.yaml") {
		t.Errorf("second request: exit %d, %s%s", r.code, r.stdout, r.stderr)
	}
}

func TestRequestRejectedWritesNothing(t *testing.T) {
	t.Parallel()
	cases := []cliCase{
		{"over max", []string{"--role", "readwrite", "--for", "5h", "--ticket", "INC-1"}, gitgrant.ExitInvalid, "duration 5h exceeds the 4h maximum"},
		{"unknown role", []string{"--role", "admin", "--for", "1h", "--ticket", "INC-1"}, gitgrant.ExitInvalid, `role "admin" is not declared`},
		{"missing ticket", []string{"--role", "readonly", "--for", "1h"}, gitgrant.ExitInvalid, "a ticket is required"},
		{"both for and until", []string{"--role", "readonly", "--for", "1h", "--until", "2026-11-23T00:00:00Z"}, gitgrant.ExitUsage, "exactly one of --for"},
		{"no role", []string{"--for", "1h"}, gitgrant.ExitUsage, "--role is required"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			repo := templateRepo(t)
			args := append([]string{"request", "--repo", repo, "--requester", "bob", "--provider", "orders-db", "--reason", "Need it now"}, tc.args...)
			r := runCLI(t, nil, args...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("exit %d, want %d with %q:\n%s", r.code, tc.code, tc.want, r.stderr)
			}
			if _, err := os.Stat(filepath.Join(repo, "requests")); err == nil {
				t.Errorf("a rejected request left files behind")
			}
		})
	}
}

func TestRequestNeedsToKnowWhoYouAre(t *testing.T) {
	t.Parallel()
	repo := templateRepo(t)
	r := runCLI(t, nil, "request", "--repo", repo, "--provider", "orders-db", "--role", "readonly", "--for", "1h", "--reason", "Look around")
	if r.code != gitgrant.ExitUsage || !strings.Contains(r.stderr, "--requester") {
		t.Errorf("exit %d: %s", r.code, r.stderr)
	}
}

// From a subfolder of the access repository, the default --repo finds
// the folder with gitgrant.yaml, and paths typed relative to where the
// person stands still name their files.
func TestRepoFromASubfolder(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	sub := filepath.Join(root, "requests", "db")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(root, "gitgrant.yaml"), []byte("version: 1\n"), 0o644)
	os.Mkdir(filepath.Join(root, ".git"), 0o755)
	got, paths, err := localRepoFrom(sub, ".", []string{"alice.yaml"})
	if err != nil || got != root || len(paths) != 1 || paths[0] != "requests/db/alice.yaml" {
		t.Errorf("from %s: repo %q, paths %q, err %v; want %q and requests/db/alice.yaml", sub, got, paths, err, root)
	}
	// An explicit --repo is taken as given.
	if got, _, err := localRepoFrom(sub, sub, nil); err != nil || got != sub {
		t.Errorf("explicit --repo: %q %v", got, err)
	}
	// Outside any access repository, "." stays "." (validate then says
	// gitgrant.yaml is missing).
	lone := t.TempDir()
	os.Mkdir(filepath.Join(lone, ".git"), 0o755)
	if got, _, err := localRepoFrom(lone, ".", nil); err != nil || got != lone {
		t.Errorf("outside an access repository: %q %v", got, err)
	}
}

// testEnv reads vars; the trust root defaults to the first policy commit,
// as `gitgrant trust --root first` would record it (docs/trust.md).
func testEnv(vars map[string]string) func(string) string {
	return func(k string) string {
		if v, ok := vars[k]; ok {
			return v
		}
		if k == "GITGRANT_TRUST_ROOT" {
			return "first"
		}
		return ""
	}
}

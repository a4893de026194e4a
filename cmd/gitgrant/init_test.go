package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitgrant/gitgrant/internal/testing/golden"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/testing/testenv"
	"github.com/gitgrant/gitgrant/internal/workflowcheck"
	"github.com/gitgrant/gitgrant/providers/all"
)

const releaseCommit = "0f3c5b1e9d2a47c6b8e1f0a9d3c2b1a0e9f8d7c6"

// initInto runs gitgrant init into a new folder and returns it.
func initInto(t *testing.T, args ...string) (string, result) {
	t.Helper()
	dir := t.TempDir()
	r := runCLI(t, nil, append([]string{"init", "--dir", dir}, args...)...)
	if r.code != gitgrant.ExitOK {
		t.Fatalf("init %s: exit %d\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return dir, r
}

// What init writes is a working access repository: it validates, its
// CODEOWNERS covers the policy and every provider's requests, and a
// request written with `gitgrant request` into it validates too.
func TestInitWritesAValidRepository(t *testing.T) {
	t.Parallel()
	var provs []string
	for _, typ := range all.Registry().Types() {
		provs = append(provs, "--provider", "p-"+typ+"="+typ)
	}
	dir, r := initInto(t, append(provs, "--owners", "@acme/security", "--request-owners", "p-postgres=@acme/dba", "--version", "v1.2.3")...)
	golden.CheckString(t, filepath.Join("testdata", "golden", "init-all-types.txt"), strings.ReplaceAll(r.stdout, dir, "DIR"))

	v := runCLI(t, nil, "validate", "--repo", dir)
	if v.code != gitgrant.ExitOK || !strings.Contains(v.stdout, "0 errors, 0 warnings") {
		t.Fatalf("validate of init's repository: exit %d\n%s%s", v.code, v.stdout, v.stderr)
	}
	cfg := readFile(t, filepath.Join(dir, "gitgrant.yaml"))
	owners := readFile(t, filepath.Join(dir, ".github/CODEOWNERS"))
	wantContains(t, "gitgrant.yaml", cfg, "mode: pull-request", "dsn_env: P_POSTGRES_DSN")
	wantContains(t, "CODEOWNERS", owners, "/gitgrant.yaml      @acme/security", "/.github/           @acme/security", "/requests/p-postgres/", "@acme/dba")
	for _, typ := range all.Registry().Types() {
		if !strings.Contains(owners, "/requests/p-"+typ+"/") {
			t.Errorf("CODEOWNERS does not cover requests/p-%s/", typ)
		}
	}

	// A first request, as the README tells requesters to write it.
	os.WriteFile(filepath.Join(dir, "gitgrant.yaml"), []byte(strings.Replace(cfg, "identities: {}", "identities:\n  alice: {principals: {p-postgres: alice}}", 1)), 0o644)
	req := runCLI(t, nil, "request", "--repo", dir, "--provider", "p-postgres", "--role", "readonly", "--for", "2h", "--reason", "Look into INC-1234", "--requester", "alice")
	if req.code != gitgrant.ExitOK {
		t.Fatalf("request: exit %d\n%s%s", req.code, req.stdout, req.stderr)
	}
	if v := runCLI(t, nil, "validate", "--repo", dir); v.code != gitgrant.ExitOK {
		t.Errorf("validate with a request: exit %d\n%s%s", v.code, v.stdout, v.stderr)
	}
}

// The workflows init writes follow the rules gitgrant's own do (pinned
// actions, least privilege, no pull request code with a write token) and
// pass actionlint, with the action pinned to a release's commit and with
// go install.
func TestInitWorkflows(t *testing.T) {
	t.Parallel()
	actionlint, lintErr := exec.LookPath("actionlint")
	for _, tt := range []struct {
		name string
		args []string
		want []string
	}{
		{"action", []string{"--action-commit", releaseCommit}, []string{"uses: gitgrant/gitgrant@" + releaseCommit + " # v1.2.3", "version: v1.2.3"}},
		{"go install", nil, []string{`go install "github.com/gitgrant/gitgrant/cmd/gitgrant@$VERSION"`, "VERSION: v1.2.3"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir, _ := initInto(t, append([]string{"--provider", "orders-db=postgres", "--provider", "directory=ldap", "--owners", "@acme/security", "--version", "v1.2.3"}, tt.args...)...)
			files, _ := filepath.Glob(filepath.Join(dir, ".github/workflows/*.yml"))
			if len(files) != 3 {
				t.Fatalf("workflows: %v, want validate, review and reconcile", files)
			}
			all := ""
			for _, f := range files {
				data := []byte(readFile(t, f))
				all += string(data)
				for _, p := range workflowcheck.Check(filepath.Base(f), data) {
					t.Error(p)
				}
			}
			wantContains(t, "the workflows", all, append(tt.want, "ORDERS_DB_DSN: ${{ secrets.ORDERS_DB_DSN }}", "DIRECTORY_BIND_PASSWORD: ${{ secrets.DIRECTORY_BIND_PASSWORD }}", "environment: gitgrant")...)
			if lintErr != nil {
				testenv.Unavailable(t, "actionlint", "go install github.com/rhysd/actionlint/cmd/actionlint@v1.7.12 (.ci/run does)", lintErr)
				return
			}
			cmd := exec.Command(actionlint, files...)
			cmd.Dir = dir
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("actionlint: %v\n%s", err, out)
			}
		})
	}
}

func TestInitRefuses(t *testing.T) {
	t.Parallel()
	existing := t.TempDir()
	os.WriteFile(filepath.Join(existing, "gitgrant.yaml"), []byte("providers: {}\n"), 0o644)
	base := []string{"--provider", "orders-db=postgres", "--owners", "@acme/security", "--version", "v1.2.3"}
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"no provider", []string{"--owners", "@acme/security", "--version", "v1.2.3"}, "name at least one provider, --provider NAME=TYPE"},
		{"unknown type", []string{"--provider", "x=oracle", "--owners", "@a/b", "--version", "v1.2.3"}, `--provider x: unknown type "oracle"; types: aws,`},
		{"bad owners", []string{"--provider", "x=postgres", "--owners", "security", "--version", "v1.2.3"}, `--owners "security": a GitHub team @ORG/TEAM or a user @login`},
		{"not a release", []string{"--provider", "x=postgres", "--owners", "@a/b"}, "is not a release: name the release the workflows install with --version vX.Y.Z"},
		{"short commit", append(base, "--action-commit", "0f3c5b1"), "the full 40-character commit SHA of the tag v1.2.3"},
		{"owners of no provider", append(base, "--request-owners", "billing=@a/b"), "--request-owners billing: no --provider billing"},
		{"files exist", append(base, "--dir", existing), "gitgrant.yaml already exist(s) in " + existing + ": run init in an empty repository, or --force to overwrite"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			args := append([]string{"init"}, tt.args...)
			if !strings.Contains(strings.Join(tt.args, " "), "--dir") {
				args = append(args, "--dir", t.TempDir())
			}
			r := runCLI(t, nil, args...)
			if r.code != gitgrant.ExitUsage || !strings.Contains(r.stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", r.code, r.stderr, tt.want)
			}
		})
	}
	if got := readFile(t, filepath.Join(existing, "gitgrant.yaml")); got != "providers: {}\n" {
		t.Errorf("init overwrote an existing gitgrant.yaml: %q", got)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

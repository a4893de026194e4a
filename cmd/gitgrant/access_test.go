package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/ghfake"
	"github.com/gitgrant/gitgrant/internal/testing/fakeclock"
	"github.com/gitgrant/gitgrant/internal/testing/gitserver"
)

// appWorld is GitHub as a GitHub App sees it: the fake API mints
// installation tokens, and a git server in front of the access repository
// accepts exactly the tokens the fake says are valid now, as github.com
// checks git's basic-auth password.
type appWorld struct {
	gh   *ghfake.Server
	git  *gitserver.Server
	clk  *fakeclock.Clock
	vars map[string]string
}

func newAppWorld(t *testing.T, files map[string]string) *appWorld {
	t.Helper()
	clk := fakeclock.NewAuto(testNow)
	gh := ghfake.New(clk.Now)
	t.Cleanup(gh.Close)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	gh.AddApp(42, &key.PublicKey, 7, time.Hour)
	gh.AddRepo("acme", "access", "main")
	gh.AddToken("setup-token") // the developer who pushes the first commit
	srv := gitserver.StartAuth(t, "x-access-token", func(_, password string) bool { return gh.ValidToken(password) })
	srv.Password = "setup-token"
	srv.NewBare(t, "acme/access")
	work := gitserver.NewWork(t, srv.AuthURL("acme/access"), testNow.Add(-48*time.Hour))
	for p, c := range files {
		work.Write(p, c)
	}
	work.Commit("Set up the access repository")
	work.Git("push", "-q", "origin", "main")

	keyFile := filepath.Join(t.TempDir(), "app.pem")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600); err != nil {
		t.Fatal(err)
	}
	return &appWorld{gh: gh, git: srv, clk: clk, vars: map[string]string{
		"GITGRANT_GITHUB_APP_ID":               "42",
		"GITGRANT_GITHUB_APP_INSTALLATION_ID":  "7",
		"GITGRANT_GITHUB_APP_PRIVATE_KEY_FILE": keyFile,
		"GITHUB_API_URL":                       gh.BaseURL(),
		"XDG_CACHE_HOME":                       t.TempDir(),
	}}
}

func (w *appWorld) run(t *testing.T, extra map[string]string, args ...string) result {
	t.Helper()
	vars := map[string]string{}
	for k, v := range w.vars {
		vars[k] = v
	}
	for k, v := range extra {
		vars[k] = v
	}
	var stdout, stderr strings.Builder
	e := &env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr, getenv: testEnv(vars), clk: w.clk}
	code := run(context.Background(), args, e)
	return result{code, stdout.String(), stderr.String()}
}

// emptyProviderConfig has one provider, whose role has no members.
const emptyProviderConfig = "providers:\n  db:\n    type: exec\n    command: [echo, '{\"ok\":true,\"members\":[]}']\n    roles:\n      ro: {approvals: 1}\n"

const appConfig = "identities:\n  alice: {principals: {db: alice}}\nproviders:\n  db:\n    type: exec\n    command: [unused]\n    roles:\n      ro: {approvals: 1}\n"

// With only the GitHub App's variables, every command that reads the
// access repository over HTTPS clones and fetches with the App's
// installation token: the git server refuses anything else.
func TestGitHubAppTokenReachesGit(t *testing.T) {
	t.Parallel()
	w := newAppWorld(t, map[string]string{"gitgrant.yaml": emptyProviderConfig, ".github/CODEOWNERS": "* @owner\n"})
	url := w.git.URL("acme/access")

	// GITHUB_REPOSITORY is not set: the origin is on the GitHub whose API
	// is GITHUB_API_URL, so the repository comes from its URL.
	for _, args := range [][]string{
		{"status", "--repo", url},
		{"plan", "--repo", url},
		{"trust", "--repo", url},
		{"audit", "--repo", url, "--cache-dir", t.TempDir()},
	} {
		r := w.run(t, nil, args...)
		if r.code != gitgrant.ExitOK || strings.Contains(r.stderr, "authentication required") {
			t.Errorf("%s: exit %d\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
		}
	}
	if w.gh.MintedTokens() == 0 {
		t.Errorf("no installation token was minted: git was not authenticated by the App")
	}

	// Without the App, the same server refuses.
	r := runCLI(t, map[string]string{"XDG_CACHE_HOME": t.TempDir()}, "status", "--repo", url)
	if r.code != gitgrant.ExitSystem || !strings.Contains(r.stderr, "authentication required") {
		t.Errorf("status without credentials: exit %d, stderr %q; want exit 3, authentication required", r.code, r.stderr)
	}
	// GITGRANT_GIT_TOKEN is for git alone and wins over the App's token.
	r = w.run(t, map[string]string{"GITGRANT_GIT_TOKEN": "not-a-token"}, "status", "--repo", url)
	if r.code != gitgrant.ExitSystem || !strings.Contains(r.stderr, "authentication required") {
		t.Errorf("status with a wrong GITGRANT_GIT_TOKEN: exit %d, stderr %q; want it used, and refused", r.code, r.stderr)
	}
	w.gh.AddToken("git-only")
	if r = w.run(t, map[string]string{"GITGRANT_GIT_TOKEN": "git-only"}, "status", "--repo", url); r.code != gitgrant.ExitOK {
		t.Errorf("status with GITGRANT_GIT_TOKEN: exit %d\n%s", r.code, r.stderr)
	}
}

// A long-running process fetches with a fresh installation token after
// the one it started with lapsed.
func TestGitHubAppTokenRefreshedForGit(t *testing.T) {
	t.Parallel()
	w := newAppWorld(t, map[string]string{"gitgrant.yaml": appConfig})
	e := &env{stdout: &strings.Builder{}, stderr: &strings.Builder{}, getenv: testEnv(w.vars), clk: w.clk}
	eng, err := newEngine(context.Background(), e, engineOptions{Source: w.git.URL("acme/access"), Branch: "main"})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Repo.Close()
	if got := w.gh.MintedTokens(); got != 1 {
		t.Fatalf("%d tokens minted for the clone, want 1", got)
	}
	for i, advance := range []time.Duration{30 * time.Minute, 45 * time.Minute, 2 * time.Hour} {
		w.clk.Advance(advance)
		if err := eng.Repo.Fetch(context.Background()); err != nil {
			t.Fatalf("fetch %d, %s later: %v", i+1, advance, err)
		}
	}
	// 0 and 30 min: the first token; 75 min: a second; 195 min: a third.
	if got := w.gh.MintedTokens(); got != 3 {
		t.Errorf("%d tokens minted, want 3 (one per lapse)", got)
	}
}

func TestGitHubRepositoryFromOrigin(t *testing.T) {
	t.Parallel()
	tests := []struct {
		remote, server, api string
		want                string
	}{
		{"https://github.com/acme/access.git", "", "", "acme/access"},
		{"https://x-access-token:tok@github.com/acme/access", "", "", "acme/access"},
		{"git@github.com:acme/access.git", "", "", "acme/access"},
		{"ssh://git@github.com/acme/access.git", "", "", "acme/access"},
		{"https://ghe.example.com/acme/access.git", "https://ghe.example.com", "", "acme/access"},
		{"https://ghe.example.com/acme/access.git", "", "https://ghe.example.com/api/v3", "acme/access"},
		{"https://ghe.example.com/acme/access.git", "", "", ""}, // not github.com and no server named
		{"https://gitlab.com/acme/access.git", "", "", ""},
		{"https://github.com/acme", "", "", ""},
		{"https://github.com/acme/access/extra.git", "", "", ""},
		{"", "", "", ""},
	}
	for _, tt := range tests {
		got, ok := githubRepository(tt.remote, tt.server, tt.api)
		if got != tt.want || ok != (tt.want != "") {
			t.Errorf("githubRepository(%q, %q, %q) = %q, %v; want %q", tt.remote, tt.server, tt.api, got, ok, tt.want)
		}
	}
}

// A token without a repository to verify against is a usage error that
// says what to set, never a silent offline pass; one the origin names is
// used.
func TestTokenWithoutRepository(t *testing.T) {
	t.Parallel()
	repo := gitRepo(t, map[string]string{"gitgrant.yaml": appConfig}, testNow.Add(-time.Hour))
	for _, cmd := range []string{"plan", "reconcile", "status", "trust"} {
		r := runCLI(t, map[string]string{"GITHUB_TOKEN": "tok"}, cmd, "--repo", repo)
		if r.code != gitgrant.ExitUsage || !strings.Contains(r.stderr, "GITHUB_REPOSITORY is not, and the repository has no origin remote: set GITHUB_REPOSITORY=owner/name") {
			t.Errorf("%s: exit %d, stderr %q", cmd, r.code, r.stderr)
		}
	}
	gitserver.Run(t, repo, "remote", "add", "origin", "https://gitlab.example.com/acme/access.git")
	r := runCLI(t, map[string]string{"GITHUB_TOKEN": "tok"}, "plan", "--repo", repo)
	if r.code != gitgrant.ExitUsage || !strings.Contains(r.stderr, "the origin remote https://gitlab.example.com/acme/access.git is not an owner/name repository on github.com") {
		t.Errorf("plan with a non-GitHub origin: exit %d, stderr %q", r.code, r.stderr)
	}

	gitserver.Run(t, repo, "remote", "set-url", "origin", "https://github.com/acme/access.git")
	e := &env{stdout: &strings.Builder{}, stderr: &strings.Builder{}, getenv: testEnv(map[string]string{"GITHUB_TOKEN": "tok"}), clk: fakeclock.New(testNow)}
	acc, err := resolveAccess(e, repo, true, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"acme/access", "the origin remote https://github.com/acme/access.git"}, []string{acc.GitHub.Repository, acc.Derived}); diff != "" {
		t.Errorf("repository from the origin (-want +got):\n%s", diff)
	}
	if acc.Client == nil || acc.Client.Owner+"/"+acc.Client.Repo != "acme/access" {
		t.Errorf("no GitHub client for acme/access: %+v", acc.Client)
	}
	if got := strconv.Quote(acc.Git.Token); got != `"tok"` {
		t.Errorf("git token = %s, want GITHUB_TOKEN's", got)
	}
}

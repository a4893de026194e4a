package gitrepo

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gitgrant/gitgrant/internal/testing/gitserver"
)

const (
	testUser  = "x-access-token"
	testToken = "s3cr3t-t0ken-value"
)

// world is a smart-HTTP server with one bare repository and a developer's
// clone of it, driven with the git CLI.
type world struct {
	t      *testing.T
	server *gitserver.Server
	bare   string
	work   string
	clock  time.Time
}

func newWorld(t *testing.T) *world {
	t.Helper()
	s := gitserver.Start(t, testUser, testToken)
	w := &world{t: t, server: s, bare: s.NewBare(t, "access"), work: t.TempDir(), clock: time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)}
	w.git("init", "--initial-branch=main", ".")
	w.git("remote", "add", "origin", s.AuthURL("access"))
	w.write("gitgrant.yaml", "version: 1\nproviders:\n  orders-db:\n    type: postgres\n    roles:\n      readonly: {approvals: 1}\n      readwrite: {approvals: 1}\n")
	w.write(".github/CODEOWNERS", "/requests/orders-db/ @acme/dba\n")
	w.commit("Initial access repository")
	w.git("push", "-q", "origin", "main")
	return w
}

// git runs the CLI in the work tree with a committer date that moves
// forward one minute per call, so history has distinct, ordered times.
func (w *world) git(args ...string) string {
	w.t.Helper()
	w.clock = w.clock.Add(time.Minute)
	date := w.clock.Format(time.RFC3339)
	out, err := gitserver.RunEnv(w.work, []string{"GIT_AUTHOR_DATE=" + date, "GIT_COMMITTER_DATE=" + date}, args...)
	if err != nil {
		w.t.Fatalf("git %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func (w *world) write(path, content string) {
	w.t.Helper()
	p := filepath.Join(w.work, path)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		w.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) commit(msg string) string {
	w.t.Helper()
	w.git("add", "-A")
	w.git("commit", "-q", "-m", msg)
	return w.git("rev-parse", "HEAD")
}

func requestYAML(requester, role, duration string) string {
	return fmt.Sprintf("requester: %s\ngrants:\n  - provider: orders-db\n    role: %s\nduration: %s\nreason: Repair stuck orders after INC-1234\n", requester, role, duration)
}

// mergePR merges a branch that adds path the way GitHub's "Create a merge
// commit" does, and returns the merge commit.
func (w *world) mergePR(n int, user, path, content string) string {
	w.t.Helper()
	branch := fmt.Sprintf("%s/pr-%d", user, n)
	w.git("checkout", "-q", "-b", branch, "main")
	w.write(path, content)
	w.commit("Request access")
	w.git("checkout", "-q", "main")
	w.git("merge", "-q", "--no-ff", "-m", fmt.Sprintf("Merge pull request #%d from %s\n\nRequest access", n, branch), branch)
	return w.git("rev-parse", "HEAD")
}

// squashPR lands a change as GitHub's "Squash and merge" does.
func (w *world) squashPR(n int, path, content string) string {
	w.t.Helper()
	w.write(path, content)
	return w.commit(fmt.Sprintf("Request access (#%d)", n))
}

func (w *world) push() {
	w.t.Helper()
	w.git("push", "-q", "origin", "main")
}

// open opens the server's repository through gitrepo, as a cached clone.
func (w *world) open(t *testing.T) *Repo {
	t.Helper()
	r, err := Open(context.Background(), Options{Source: w.server.URL("access"), Token: testToken, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

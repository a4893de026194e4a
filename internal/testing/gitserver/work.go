package gitserver

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// Work is a developer's clone driven with the git CLI: it writes files,
// commits with a clock that moves one minute per git call (so history has
// distinct, ordered times), and lands pull requests the ways GitHub does.
// It is the one work-tree builder of the tests: internal/testing/accesstest
// mirrors one on the fake GitHub.
type Work struct {
	t     testing.TB
	Dir   string
	Clock time.Time
}

// NewWork starts an empty repository on main whose origin is url (none
// when url is empty).
func NewWork(t testing.TB, url string, clock time.Time) *Work {
	t.Helper()
	w := &Work{t: t, Dir: t.TempDir(), Clock: clock}
	w.Git("init", "-q", "--initial-branch=main", ".")
	if url != "" {
		w.Git("remote", "add", "origin", url)
	}
	return w
}

// NewAccess serves one access repository, "access", to x-access-token
// with password token, its main holding files committed at the next
// minute of clock and pushed; it returns the server and that clone.
func NewAccess(t testing.TB, token string, clock time.Time, files map[string]string) (*Server, *Work) {
	t.Helper()
	s := Start(t, "x-access-token", token)
	s.NewBare(t, "access")
	w := NewWork(t, s.AuthURL("access"), clock)
	for _, p := range slices.Sorted(maps.Keys(files)) {
		w.Write(p, files[p])
	}
	w.Commit("Initial access repository")
	Run(t, w.Dir, "push", "-q", "origin", "main") // off the clock: it writes no commit
	return s, w
}

// Git runs the CLI in the clone at the next minute of the clock.
func (w *Work) Git(args ...string) string {
	w.t.Helper()
	return w.run(nil, args...)
}

// GitAs runs the CLI as another author.
func (w *Work) GitAs(author string, args ...string) string {
	w.t.Helper()
	return w.run([]string{"GIT_AUTHOR_NAME=" + author, "GIT_AUTHOR_EMAIL=" + author + "@example.com"}, args...)
}

// GitAt runs the CLI as who, author and committer, at time at (zero: the
// next minute of the clock), as RunAs does.
func (w *Work) GitAt(at time.Time, who string, args ...string) string {
	w.t.Helper()
	if at.IsZero() {
		w.Clock = w.Clock.Add(time.Minute)
		at = w.Clock
	}
	return RunAs(w.t, w.Dir, at, who, args...)
}

func (w *Work) run(env []string, args ...string) string {
	w.t.Helper()
	w.Clock = w.Clock.Add(time.Minute)
	date := w.Clock.Format(time.RFC3339)
	out, err := RunEnv(w.Dir, append([]string{"GIT_AUTHOR_DATE=" + date, "GIT_COMMITTER_DATE=" + date}, env...), args...)
	if err != nil {
		w.t.Fatalf("git %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// Write writes a file of the work tree.
func (w *Work) Write(path, content string) {
	w.t.Helper()
	p := filepath.Join(w.Dir, path)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		w.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		w.t.Fatal(err)
	}
}

// WriteFiles writes files (path to content) of the work tree; an empty
// content removes the file, as a change on the fake GitHub does.
func (w *Work) WriteFiles(files map[string]string) {
	w.t.Helper()
	for p, c := range files {
		if c == "" {
			if err := os.Remove(filepath.Join(w.Dir, p)); err != nil && !os.IsNotExist(err) {
				w.t.Fatal(err)
			}
			continue
		}
		w.Write(p, c)
	}
}

// Commit commits every change and returns the new commit.
func (w *Work) Commit(msg string) string {
	w.t.Helper()
	w.Git("add", "-A")
	w.Git("commit", "-q", "-m", msg)
	return w.Git("rev-parse", "HEAD")
}

// CommitAt commits every change (or none) as who at time at, and
// returns the new commit.
func (w *Work) CommitAt(at time.Time, who, msg string) string {
	w.t.Helper()
	w.GitAt(at, who, "add", "-A")
	w.GitAt(at, who, "commit", "-q", "--allow-empty", "-m", msg)
	return w.Git("rev-parse", "HEAD")
}

// CommitTime is when commit was committed, in UTC.
func (w *Work) CommitTime(commit string) time.Time {
	w.t.Helper()
	at, err := time.Parse(time.RFC3339, w.Git("log", "-1", "--format=%cI", commit))
	if err != nil {
		w.t.Fatal(err)
	}
	return at.UTC()
}

// MergePR lands a one-commit branch by user that writes path with a merge
// commit, as GitHub's "Create a merge commit" does; it returns the merge.
func (w *Work) MergePR(n int, user, path, content string) string {
	w.t.Helper()
	branch := fmt.Sprintf("%s/pr-%d", user, n)
	w.Git("checkout", "-q", "-b", branch, "main")
	w.Write(path, content)
	w.Git("add", "-A")
	w.GitAs(user, "commit", "-q", "-m", "Request access")
	w.Git("checkout", "-q", "main")
	w.Git("merge", "-q", "--no-ff", "-m", fmt.Sprintf("Merge pull request #%d from %s\n\nRequest access", n, branch), branch)
	return w.Git("rev-parse", "HEAD")
}

// SquashPR lands a change as GitHub's "Squash and merge" does.
func (w *Work) SquashPR(n int, user, path, content string) string {
	w.t.Helper()
	w.Write(path, content)
	w.Git("add", "-A")
	w.GitAs(user, "commit", "-q", "-m", fmt.Sprintf("Request access (#%d)", n))
	return w.Git("rev-parse", "HEAD")
}

// RebasePR lands two commits by user as GitHub's "Rebase and merge" does:
// replayed onto main with no pull request marker. It returns the last.
func (w *Work) RebasePR(user, path, first, second string) string {
	w.t.Helper()
	w.Write(path, first)
	w.Git("add", "-A")
	w.GitAs(user, "commit", "-q", "-m", "Request access")
	w.Write(path, second)
	w.Git("add", "-A")
	w.GitAs(user, "commit", "-q", "-m", "Fix the reason")
	return w.Git("rev-parse", "HEAD")
}

// Push pushes main, first rebasing it (merges kept) onto the remote's
// main when that moved, so history is never rewritten needlessly.
func (w *Work) Push() {
	w.t.Helper()
	w.Git("fetch", "-q", "origin")
	if _, err := RunEnv(w.Dir, nil, "merge-base", "--is-ancestor", "origin/main", "HEAD"); err != nil {
		w.Git("rebase", "-q", "--rebase-merges", "origin/main")
	}
	w.Git("push", "-q", "origin", "main")
}

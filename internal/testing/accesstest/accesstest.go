// Package accesstest builds access repositories for tests: a work tree
// whose origin is a bare repository, made with the git CLI, mirrored on the
// fake GitHub (internal/ghfake) so that pull requests, merge commits and
// reviews agree between git and the API, as they do on github.com.
package accesstest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gitgrant/gitgrant/internal/ghfake"
)

// Token is the GitHub token the fake accepts.
const Token = "tok"

// Git runs git in dir as who (author and committer, a GitHub login) at
// time at (zero: now), and returns its trimmed output.
func Git(t testing.TB, dir string, at time.Time, who string, args ...string) string {
	t.Helper()
	if who == "" {
		who = "admin"
	}
	cmd := exec.Command("git", append([]string{"-c", "user.name=" + who, "-c", "user.email=" + who + "@example.com"}, args...)...)
	cmd.Dir = dir
	cmd.Env = os.Environ()
	if !at.IsZero() {
		d := at.Format(time.RFC3339)
		cmd.Env = append(cmd.Env, "GIT_AUTHOR_DATE="+d, "GIT_COMMITTER_DATE="+d)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// Repo is one access repository: Work is the work tree, Remote the bare
// repository it pushes to, and GH/Repo its twin on the fake GitHub
// (acme/access, default branch main).
type Repo struct {
	T            testing.TB
	Work, Remote string
	GH           *ghfake.Server
	Repo         *ghfake.Repo
}

// New makes the repository with files committed to main by admin at time
// at, pushed, and mirrored on a new fake GitHub whose clock is now.
func New(t testing.TB, now func() time.Time, files map[string]string, at time.Time) *Repo {
	t.Helper()
	root := t.TempDir()
	r := &Repo{T: t, Work: filepath.Join(root, "work"), Remote: filepath.Join(root, "remote.git")}
	Git(t, root, time.Time{}, "", "init", "-q", "--bare", "-b", "main", r.Remote)
	Git(t, root, time.Time{}, "", "init", "-q", "-b", "main", r.Work)
	Git(t, r.Work, time.Time{}, "", "remote", "add", "origin", r.Remote)
	r.GH = ghfake.New(now)
	t.Cleanup(r.GH.Close)
	r.GH.AddToken(Token)
	r.Repo = r.GH.AddRepo("acme", "access", "main")
	r.Commit(at, "admin", "Set up the access repository", files)
	return r
}

// Write writes files into the work tree.
func (r *Repo) Write(files map[string]string) {
	for p, c := range files {
		full := filepath.Join(r.Work, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			r.T.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			r.T.Fatal(err)
		}
	}
}

// Commit commits files straight to main as who (a direct push), pushes,
// and records the commit on the fake GitHub.
func (r *Repo) Commit(at time.Time, who, msg string, files map[string]string) string {
	r.T.Helper()
	r.sync()
	var parent string
	if out, err := exec.Command("git", "-C", r.Work, "rev-parse", "-q", "--verify", "HEAD").Output(); err == nil {
		parent = strings.TrimSpace(string(out)) // none before the first commit
	}
	r.Write(files)
	Git(r.T, r.Work, at, who, "add", "-A")
	Git(r.T, r.Work, at, who, "commit", "-q", "--allow-empty", "-m", msg)
	sha := Git(r.T, r.Work, time.Time{}, "", "rev-parse", "HEAD")
	Git(r.T, r.Work, time.Time{}, "", "push", "-q", "origin", "main")
	c := ghfake.Commit{SHA: sha, Author: who, Committer: who, Message: msg, Date: at}
	if parent != "" {
		c.Parents = []string{parent}
	}
	r.GH.AddCommit(r.Repo, c, files)
	return sha
}

// MergePR brings files in through pull request n opened by who: a commit on
// a branch half an hour before merged, merged into main with a merge
// commit as GitHub writes it, pushed, and mirrored on the fake with the
// pull request, its commits, and an APPROVED review on the head commit
// from each approver. It returns the head and merge commits.
func (r *Repo) MergePR(n int, who string, files map[string]string, merged time.Time, approvers ...string) (head, merge string) {
	t := r.T
	t.Helper()
	r.sync()
	base := Git(t, r.Work, time.Time{}, "", "rev-parse", "HEAD")
	branch := fmt.Sprintf("request-%d", n)
	Git(t, r.Work, time.Time{}, "", "checkout", "-q", "-b", branch)
	r.Write(files)
	Git(t, r.Work, merged.Add(-30*time.Minute), who, "add", "-A")
	Git(t, r.Work, merged.Add(-30*time.Minute), who, "commit", "-q", "-m", "Request access")
	head = Git(t, r.Work, time.Time{}, "", "rev-parse", "HEAD")
	Git(t, r.Work, time.Time{}, "", "checkout", "-q", "main")
	Git(t, r.Work, merged, "web-flow", "merge", "-q", "--no-ff", "-m", fmt.Sprintf("Merge pull request #%d from %s/%s", n, who, branch), branch)
	merge = Git(t, r.Work, time.Time{}, "", "rev-parse", "HEAD")
	Git(t, r.Work, time.Time{}, "", "push", "-q", "origin", "main")

	r.GH.AddCommit(r.Repo, ghfake.Commit{SHA: head, Parents: []string{base}, Author: who, Committer: who, Message: "Request access", Date: merged.Add(-30 * time.Minute)}, files)
	r.GH.AddCommit(r.Repo, ghfake.Commit{SHA: merge, Parents: []string{base, head}, Author: who, Committer: "web-flow", Message: "Merge", Date: merged}, nil)
	r.GH.AddPull(r.Repo, ghfake.Pull{Number: n, User: who, HeadSHA: head, BaseSHA: base, MergedAt: merged, MergeCommitSHA: merge, Commits: []string{head}})
	r.GH.Associate(r.Repo, merge, n)
	r.GH.Associate(r.Repo, head, n)
	for _, a := range approvers {
		r.GH.AddReview(r.Repo, n, ghfake.Review{User: a, State: "APPROVED", CommitID: head, SubmittedAt: merged.Add(-10 * time.Minute)})
	}
	return head, merge
}

// sync brings the work tree's main up to the remote's, which gitgrant's
// cleanup commits may have moved.
func (r *Repo) sync() {
	if Git(r.T, r.Remote, time.Time{}, "", "for-each-ref", "refs/heads/main") == "" {
		return // nothing pushed yet
	}
	Git(r.T, r.Work, time.Time{}, "", "pull", "-q", "--ff-only", "origin", "main")
}

// PR is a pull request opened from main, not merged yet: main may move on
// before it lands (a stale base).
type PR struct {
	r       *Repo
	N       int
	Who     string
	Base    string
	Head    string
	files   map[string]string
	branch  string
	opened  time.Time
	commits []string
}

// OpenPR opens pull request n by who, writing files in one commit on a
// branch from main's current head at time at.
func (r *Repo) OpenPR(n int, who string, files map[string]string, at time.Time) *PR {
	t := r.T
	t.Helper()
	r.sync()
	p := &PR{r: r, N: n, Who: who, files: files, branch: fmt.Sprintf("request-%d", n), opened: at}
	p.Base = Git(t, r.Work, time.Time{}, "", "rev-parse", "HEAD")
	Git(t, r.Work, time.Time{}, "", "checkout", "-q", "-b", p.branch)
	r.Write(files)
	Git(t, r.Work, at, who, "add", "-A")
	Git(t, r.Work, at, who, "commit", "-q", "-m", "Request access")
	p.Head = Git(t, r.Work, time.Time{}, "", "rev-parse", "HEAD")
	p.commits = []string{p.Head}
	Git(t, r.Work, time.Time{}, "", "checkout", "-q", "main")
	r.GH.AddCommit(r.Repo, ghfake.Commit{SHA: p.Head, Parents: []string{p.Base}, Author: who, Committer: who, Message: "Request access", Date: at}, files)
	return p
}

// Squash lands the pull request as GitHub's "Squash and merge" does, with
// the commit title the merger typed (GitHub proposes "<title> (#n)"; a
// merger may edit it): one commit on main's current head, which may have
// moved since the pull request was opened. It returns the commit.
func (p *PR) Squash(merged time.Time, title string, approvers ...string) string {
	r, t := p.r, p.r.T
	t.Helper()
	r.sync()
	onto := Git(t, r.Work, time.Time{}, "", "rev-parse", "HEAD")
	Git(t, r.Work, time.Time{}, "", "merge", "-q", "--squash", p.branch)
	Git(t, r.Work, merged, "web-flow", "commit", "-q", "-m", title)
	sha := Git(t, r.Work, time.Time{}, "", "rev-parse", "HEAD")
	Git(t, r.Work, time.Time{}, "", "push", "-q", "origin", "main")
	r.GH.AddCommit(r.Repo, ghfake.Commit{SHA: sha, Parents: []string{onto}, Author: p.Who, Committer: "web-flow", Message: title, Date: merged}, p.files)
	p.land(merged, sha, approvers)
	return sha
}

// Merge lands the pull request with a merge commit on main's current head.
func (p *PR) Merge(merged time.Time, approvers ...string) string {
	r, t := p.r, p.r.T
	t.Helper()
	r.sync()
	onto := Git(t, r.Work, time.Time{}, "", "rev-parse", "HEAD")
	Git(t, r.Work, merged, "web-flow", "merge", "-q", "--no-ff", "-m", fmt.Sprintf("Merge pull request #%d from %s/%s", p.N, p.Who, p.branch), p.branch)
	sha := Git(t, r.Work, time.Time{}, "", "rev-parse", "HEAD")
	Git(t, r.Work, time.Time{}, "", "push", "-q", "origin", "main")
	r.GH.AddCommit(r.Repo, ghfake.Commit{SHA: sha, Parents: []string{onto, p.Head}, Author: p.Who, Committer: "web-flow", Message: "Merge", Date: merged}, nil)
	p.land(merged, sha, approvers)
	return sha
}

func (p *PR) land(merged time.Time, sha string, approvers []string) {
	r := p.r
	r.GH.AddPull(r.Repo, ghfake.Pull{Number: p.N, User: p.Who, HeadSHA: p.Head, BaseSHA: p.Base, MergedAt: merged, MergeCommitSHA: sha, Commits: p.commits})
	r.GH.Associate(r.Repo, sha, p.N)
	for _, c := range p.commits {
		r.GH.Associate(r.Repo, c, p.N)
	}
	for _, a := range approvers {
		r.GH.AddReview(r.Repo, p.N, ghfake.Review{User: a, State: "APPROVED", CommitID: p.Head, SubmittedAt: merged.Add(-10 * time.Minute)})
	}
}

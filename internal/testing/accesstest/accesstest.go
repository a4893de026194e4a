// Package accesstest builds access repositories for tests: a work tree
// whose origin is a bare repository, made with the git CLI, mirrored on the
// fake GitHub (internal/ghfake) so that pull requests, merge commits and
// reviews agree between git and the API, as they do on github.com.
package accesstest

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/gitgrant/gitgrant/internal/ghfake"
	"github.com/gitgrant/gitgrant/internal/testing/gitserver"
)

// Token is the GitHub token the fake accepts.
const Token = "tok"

// Git runs git in dir as who (author and committer, a GitHub login; ""
// is admin) at time at (zero: now), and returns its trimmed output.
func Git(t testing.TB, dir string, at time.Time, who string, args ...string) string {
	t.Helper()
	return gitserver.RunAs(t, dir, at, who, args...)
}

// Repo is one access repository: Work is the work tree, Remote the bare
// repository it pushes to, and GH/Repo its twin on the fake GitHub
// (acme/access, default branch main).
type Repo struct {
	T            testing.TB
	Work, Remote string
	GH           *ghfake.Server
	Repo         *ghfake.Repo
	tree         *gitserver.Work
}

// New makes the repository with files committed to main by admin at time
// at, pushed, and mirrored on a new fake GitHub whose clock is now.
func New(t testing.TB, now func() time.Time, files map[string]string, at time.Time) *Repo {
	t.Helper()
	gh := ghfake.New(now)
	t.Cleanup(gh.Close)
	gh.AddToken(Token)
	return On(t, gh, gh.AddRepo("acme", "access", "main"), files, at)
}

// On is New on a fake GitHub the test set up itself (its tokens, its
// clock), the repository mirrored as repo.
func On(t testing.TB, gh *ghfake.Server, repo *ghfake.Repo, files map[string]string, at time.Time) *Repo {
	t.Helper()
	remote := filepath.Join(t.TempDir(), "remote.git")
	gitserver.Run(t, "", "init", "-q", "--bare", "-b", "main", remote)
	tree := gitserver.NewWork(t, remote, at)
	r := &Repo{T: t, Work: tree.Dir, Remote: remote, GH: gh, Repo: repo, tree: tree}
	r.Commit(at, "admin", "Set up the access repository", files)
	return r
}

// Local is On with no twin on GitHub, for gitgrant run without GitHub
// credentials: commits are pushed to the bare remote only.
func Local(t testing.TB, files map[string]string, at time.Time) *Repo {
	t.Helper()
	return On(t, nil, nil, files, at)
}

// Git runs git in the work tree as who at time at (zero: the next minute
// of the work tree's clock).
func (r *Repo) Git(at time.Time, who string, args ...string) string {
	r.T.Helper()
	return r.tree.GitAt(at, who, args...)
}

// Write writes files into the work tree ("" removes one).
func (r *Repo) Write(files map[string]string) { r.tree.WriteFiles(files) }

// Commit commits files ("" removes one) straight to main as who (a
// direct push), pushes, and records the commit on the fake GitHub.
func (r *Repo) Commit(at time.Time, who, msg string, files map[string]string) string {
	r.T.Helper()
	r.sync()
	var parent string
	if out, err := gitserver.RunEnv(r.Work, nil, "rev-parse", "-q", "--verify", "HEAD"); err == nil {
		parent = out // none before the first commit
	}
	r.Write(files)
	sha := r.tree.CommitAt(at, who, msg)
	r.tree.Git("push", "-q", "origin", "main")
	if r.GH == nil {
		return sha
	}
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
	r.T.Helper()
	r.sync()
	base := r.tree.Git("rev-parse", "HEAD")
	branch := fmt.Sprintf("request-%d", n)
	r.tree.Git("checkout", "-q", "-b", branch)
	r.Write(files)
	head = r.tree.CommitAt(merged.Add(-30*time.Minute), who, "Request access")
	r.tree.Git("checkout", "-q", "main")
	r.Git(merged, "web-flow", "merge", "-q", "--no-ff", "-m", fmt.Sprintf("Merge pull request #%d from %s/%s", n, who, branch), branch)
	merge = r.tree.Git("rev-parse", "HEAD")
	r.tree.Git("push", "-q", "origin", "main")

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
	if gitserver.Run(r.T, r.Remote, "for-each-ref", "refs/heads/main") == "" {
		return // nothing pushed yet
	}
	r.tree.Git("pull", "-q", "--ff-only", "origin", "main")
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
	r.T.Helper()
	r.sync()
	p := &PR{r: r, N: n, Who: who, files: files, branch: fmt.Sprintf("request-%d", n), opened: at}
	p.Base = r.tree.Git("rev-parse", "HEAD")
	r.tree.Git("checkout", "-q", "-b", p.branch)
	r.Write(files)
	p.Head = r.tree.CommitAt(at, who, "Request access")
	p.commits = []string{p.Head}
	r.tree.Git("checkout", "-q", "main")
	r.GH.AddCommit(r.Repo, ghfake.Commit{SHA: p.Head, Parents: []string{p.Base}, Author: who, Committer: who, Message: "Request access", Date: at}, files)
	return p
}

// Squash lands the pull request as GitHub's "Squash and merge" does, with
// the commit title the merger typed (GitHub proposes "<title> (#n)"; a
// merger may edit it): one commit on main's current head, which may have
// moved since the pull request was opened. It returns the commit.
func (p *PR) Squash(merged time.Time, title string, approvers ...string) string {
	r := p.r
	r.T.Helper()
	r.sync()
	onto := r.tree.Git("rev-parse", "HEAD")
	r.tree.Git("merge", "-q", "--squash", p.branch)
	r.Git(merged, "web-flow", "commit", "-q", "-m", title)
	sha := r.tree.Git("rev-parse", "HEAD")
	r.tree.Git("push", "-q", "origin", "main")
	r.GH.AddCommit(r.Repo, ghfake.Commit{SHA: sha, Parents: []string{onto}, Author: p.Who, Committer: "web-flow", Message: title, Date: merged}, p.files)
	p.land(merged, sha, approvers)
	return sha
}

// Merge lands the pull request with a merge commit on main's current head.
func (p *PR) Merge(merged time.Time, approvers ...string) string {
	r := p.r
	r.T.Helper()
	r.sync()
	onto := r.tree.Git("rev-parse", "HEAD")
	r.Git(merged, "web-flow", "merge", "-q", "--no-ff", "-m", fmt.Sprintf("Merge pull request #%d from %s/%s", p.N, p.Who, p.branch), p.branch)
	sha := r.tree.Git("rev-parse", "HEAD")
	r.tree.Git("push", "-q", "origin", "main")
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

package sim

import (
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gitgrant/gitgrant/internal/ghfake"
	"github.com/gitgrant/gitgrant/internal/gitrepo"
)

// token is the GitHub token the fake accepts, for the API and for git.
const token = "sim-token"

// hub is the simulated GitHub: the access repository stored as GitHub
// stores it (a bare repository served over smart HTTP, written in process
// as GitHub writes merges, with no git program) and its twin in the fake
// API, so that pull requests, commits and reviews agree between the two.
type hub struct {
	t    testing.TB
	gh   *ghfake.Server
	api  *ghfake.Repo
	bare *gitrepo.BareRepo
	dir  string
}

func newHub(t testing.TB, now func() time.Time, files map[string]string, at time.Time) *hub {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "access.git")
	bare, err := gitrepo.InitBare(dir, "main")
	if err != nil {
		t.Fatal(err)
	}
	h := &hub{t: t, gh: ghfake.New(now), bare: bare, dir: dir}
	t.Cleanup(h.gh.Close)
	h.gh.AddToken(token)
	h.api = h.gh.AddRepo("acme", "access", "main")
	h.gh.ServeGit("acme", "access", dir)
	h.push(at, "admin", "Set up the access repository", files)
	return h
}

func (h *hub) url() string { return h.gh.GitURL("acme", "access") }

// main is main's head and files. A commit the API does not know yet (one
// gitgrant pushed) is mirrored there.
func (h *hub) main() (string, map[string]string) {
	sha, files, err := h.bare.Branch("main")
	if err != nil {
		h.t.Fatal(err)
	}
	if sha != "" && h.gh.Commit(h.api, sha) == nil {
		c, err := h.bare.CommitAt(sha)
		if err != nil {
			h.t.Fatal(err)
		}
		h.gh.AddCommit(h.api, ghfake.Commit{SHA: sha, Parents: c.Parents, Author: c.Author, Committer: c.Committer, Message: c.Message, Date: c.When, Files: maps.Clone(files)}, nil)
	}
	return sha, files
}

// commit stores a commit on the given parents with the tree of files plus
// changes ("" deletes) and mirrors it in the API.
func (h *hub) commit(parents []string, files, changes map[string]string, author, committer, msg string, at time.Time) (string, map[string]string) {
	sha, all, err := h.bare.Commit(parents, files, changes, author, committer, msg, at)
	if err != nil {
		h.t.Fatal(err)
	}
	h.gh.AddCommit(h.api, ghfake.Commit{SHA: sha, Parents: parents, Author: author, Committer: committer, Message: msg, Date: at, Files: maps.Clone(all)}, nil)
	return sha, all
}

func (h *hub) setMain(sha string) {
	if err := h.bare.SetBranch("main", sha); err != nil {
		h.t.Fatal(err)
	}
}

// push commits changes straight to main as who, dated at (a direct push;
// the pusher chooses the date).
func (h *hub) push(at time.Time, who, msg string, changes map[string]string) string {
	head, files := h.main()
	var parents []string
	if head != "" {
		parents = []string{head}
	}
	sha, _ := h.commit(parents, files, changes, who, who, msg, at)
	h.setMain(sha)
	return sha
}

// pull is a pull request under way: its base and its commits.
type pull struct {
	h       *hub
	n       int
	who     string
	base    string
	head    string
	commits []string
	changes map[string]string // what it changes, cumulatively
	tree    map[string]string // the head's files
}

// open opens pull request n by who from main's head.
func (h *hub) open(n int, who string, changes map[string]string, at time.Time) *pull {
	base, files := h.main()
	p := &pull{h: h, n: n, who: who, base: base, changes: maps.Clone(changes)}
	p.head, p.tree = h.commit([]string{base}, files, changes, who, who, "Request access", at)
	p.commits = []string{p.head}
	for _, c := range p.commits {
		h.gh.Associate(h.api, c, n)
	}
	return p
}

// pushTo adds a commit to the pull request.
func (p *pull) pushTo(at time.Time, who string, changes map[string]string) {
	h := p.h
	p.head, p.tree = h.commit([]string{p.head}, p.tree, changes, who, who, "Update the request", at)
	p.commits = append(p.commits, p.head)
	maps.Copy(p.changes, changes)
	h.gh.Associate(h.api, p.head, p.n)
}

// review adds a review of the pull request's head as it is now.
func (p *pull) review(who, state string, at time.Time) {
	p.h.gh.AddReview(p.h.api, p.n, ghfake.Review{User: who, State: state, CommitID: p.head, SubmittedAt: at})
}

// Merge methods, as GitHub's merge button offers them.
const (
	byMerge       = "merge"
	bySquash      = "squash"
	bySquashTitle = "squash, title edited"
	byRebase      = "rebase"
)

// land merges the pull request onto main's current head at time at.
func (p *pull) land(at time.Time, how string) string {
	h := p.h
	onto, files := h.main()
	var sha string
	switch how {
	case byMerge:
		sha, _ = h.commit([]string{onto, p.head}, files, p.changes, p.who, "web-flow", fmt.Sprintf("Merge pull request #%d from %s/request-%d", p.n, p.who, p.n), at)
	case bySquash, bySquashTitle:
		title := fmt.Sprintf("Request access (#%d)", p.n)
		if how == bySquashTitle {
			title = "Request access"
		}
		sha, _ = h.commit([]string{onto}, files, p.changes, p.who, "web-flow", title, at)
	case byRebase:
		// Each commit replayed; the pull request's changes are small enough
		// that every replayed commit carries them all.
		sha = onto
		for range p.commits {
			sha, files = h.commit([]string{sha}, files, p.changes, p.who, "web-flow", "Request access", at)
			h.gh.Associate(h.api, sha, p.n)
		}
	default:
		h.t.Fatalf("unknown merge method %q", how)
	}
	h.setMain(sha)
	h.gh.AddPull(h.api, ghfake.Pull{Number: p.n, Title: "Request access", User: p.who, HeadSHA: p.head, BaseSHA: p.base, MergedAt: at, MergeCommitSHA: sha, Commits: p.commits})
	h.gh.Associate(h.api, sha, p.n)
	return sha
}

// refs are the repository's refs, "sha name" lines, sorted; "" while it
// is away.
func (h *hub) refs() string {
	if _, err := os.Stat(h.dir); err != nil {
		return ""
	}
	refs, err := h.bare.Refs()
	if err != nil {
		h.t.Fatal(err)
	}
	var lines []string
	for name, sha := range refs {
		lines = append(lines, sha+" "+name)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// descends reports whether commit next descends from (or is) prev.
func (h *hub) descends(prev, next string) bool {
	ok, err := h.bare.Descends(prev, next)
	return err == nil && ok
}

// repack packs a repository's objects into one pack, as git gc does on
// any server now and then: go-git reads every pack's index afresh for
// each storage it opens, so many small packs cost more than the work.
func repack(t testing.TB, dir string) {
	for _, args := range [][]string{{"repack", "-a", "-d", "-q"}, {"prune-packed", "-q"}} {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v in %s: %v\n%s", args, dir, err, out)
		}
	}
}

// repackCache repacks the clones in a gitrepo cache directory.
func repackCache(t testing.TB, cache string) {
	clones, _ := filepath.Glob(filepath.Join(cache, "*", "HEAD"))
	for _, head := range clones {
		repack(t, filepath.Dir(head))
	}
}

// away takes the repository off the network (or brings it back).
func (h *hub) away(gone bool) {
	from, to := h.dir, h.dir+".away"
	if !gone {
		from, to = to, from
	}
	if err := os.Rename(from, to); err != nil {
		h.t.Fatal(err)
	}
}

package approval_test

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gitgrant/gitgrant/internal/testing/fakeclock"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/approval"
	"github.com/gitgrant/gitgrant/internal/ghapi"
	"github.com/gitgrant/gitgrant/internal/ghfake"
	"github.com/gitgrant/gitgrant/schema"
)

var t0 = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)

// world is one access repository on a fake GitHub, with a main branch that
// holds testdata/gitgrant.yaml and testdata/CODEOWNERS, teams acme/dba
// (dave, frank), acme/oncall (grace), acme/platform (paul), acme/security
// (sam, sue).
type world struct {
	t    *testing.T
	gh   *ghfake.Server
	repo *ghfake.Repo
	cl   *ghapi.Client
	clk  *fakeclock.Clock // the GitHub client's: its waits pass at once
	root string           // the first commit
	main string
	tick time.Duration
}

func newWorld(t *testing.T, configEdits ...func(string) string) *world {
	t.Helper()
	cfg := readTestdata(t, "gitgrant.yaml")
	for _, e := range configEdits {
		cfg = e(cfg)
	}
	gh := ghfake.New(func() time.Time { return t0 })
	t.Cleanup(gh.Close)
	repo := gh.AddRepo("acme", "access", "main")
	root := gh.AddCommit(repo, ghfake.Commit{Author: "admin", Committer: "admin", Message: "init", Date: t0},
		map[string]string{"gitgrant.yaml": cfg, ".github/CODEOWNERS": readTestdata(t, "CODEOWNERS")})
	gh.AddTeamMember("acme", "dba", "dave")
	gh.AddTeamMember("acme", "dba", "frank")
	gh.AddTeamMember("acme", "oncall", "grace")
	gh.AddTeamMember("acme", "platform", "paul")
	gh.AddTeamMember("acme", "security", "sam")
	gh.AddTeamMember("acme", "security", "sue")
	clk := fakeclock.NewAuto(t0)
	cl, err := ghapi.New(ghapi.Config{APIURL: gh.BaseURL(), Repository: "acme/access"}, ghapi.Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	return &world{t: t, gh: gh, repo: repo, cl: cl, clk: clk, root: root.SHA, main: root.SHA}
}

func readTestdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func (w *world) now() time.Time {
	w.tick += time.Minute
	return t0.Add(w.tick)
}

func (w *world) verifier(cache approval.Cache) *approval.Verifier {
	return &approval.Verifier{GitHub: w.cl, Cache: cache, Org: "acme", RepoURL: "https://github.example/acme/access",
		Clock: fakeclock.New(t0.Add(48 * time.Hour))}
}

// trustingVerifier is a verifier that takes the policy in force from
// trusted, as the trust package would give it.
func (w *world) trustingVerifier() *approval.Verifier {
	v := w.verifier(nil)
	v.Policy = &trusted{w: w}
	return v
}

// request renders a request file.
func request(requester, role string, extra ...string) string {
	s := fmt.Sprintf("requester: %s\ngrants:\n  - provider: orders-db\n    role: %s\nduration: 1h\nreason: repair stuck orders\n", requester, role)
	return s + strings.Join(extra, "")
}

// A builder builds a history on the world and returns the input to judge;
// the ones below are the common histories of the scenario tables.
type builder = func(w *world) approval.Input

// approvedMerge is world.approvedMerge as a builder.
func approvedMerge(author, content, approver string) builder {
	return func(w *world) approval.Input { return w.approvedMerge(author, content, approver) }
}

// pushedToMain is author's push of content straight to main.
func pushedToMain(author, content string) builder {
	return func(w *world) approval.Input { return w.input(path, w.pushMain(author, file(content))) }
}

// merged is author's proposal of content, given these reviews in this
// order on its only commit, merged with a merge commit.
func merged(author, content string, reviews ...review) builder {
	return func(w *world) approval.Input {
		p := w.proposal(author, content)
		for _, r := range reviews {
			p.review(r.user, r.state)
		}
		return w.input(path, p.merge("merge", path))
	}
}

// afterPush is then's history after pusher pushed files to main.
func afterPush(pusher string, files map[string]string, then builder) builder {
	return func(w *world) approval.Input {
		w.pushMain(pusher, files)
		return then(w)
	}
}

// mainChangedUnder is alice's proposal of a readwrite request, approved by
// bob; then admin pushes files to main, and the proposal is merged onto
// that with a merge commit.
func mainChangedUnder(files map[string]string) builder {
	return func(w *world) approval.Input {
		p := w.proposal("alice", request("alice", "readwrite")).review("bob", gitgrant.ReviewApproved)
		w.pushMain("admin", files)
		return w.input(path, p.merge("merge", path))
	}
}

type review struct{ user, state string }

func approves(user string) review        { return review{user, gitgrant.ReviewApproved} }
func requestsChanges(user string) review { return review{user, gitgrant.ReviewChangesRequested} }
func comments(user string) review        { return review{user, gitgrant.ReviewCommented} }

// pr is a pull request being built on a branch from main.
type pr struct {
	w       *world
	author  string
	base    string
	head    string
	commits []string
	changed map[string][]string // commit -> paths it changed
	reviews []ghfake.Review
	number  int
}

func (w *world) openPR(author string) *pr {
	return &pr{w: w, author: author, base: w.main, head: w.main, changed: map[string][]string{}}
}

// proposal opens author's pull request whose first commit, authored and
// committed by author, writes content at path.
func (w *world) proposal(author, content string) *pr {
	return w.openPR(author).push(author, author, file(content))
}

// approvedMerge is the plain history: author's proposal of content,
// approved by approver on its only commit, merged with a merge commit. It
// returns the input for path on main.
func (w *world) approvedMerge(author, content, approver string) approval.Input {
	return w.input(path, w.proposal(author, content).review(approver, gitgrant.ReviewApproved).merge("merge", path))
}

// push adds a commit to the branch.
func (p *pr) push(author, committer string, changes map[string]string) *pr {
	c := p.w.gh.AddCommit(p.w.repo, ghfake.Commit{Parents: []string{p.head}, Author: author, Committer: committer,
		Message: fmt.Sprintf("commit %d", len(p.commits)+1), Date: p.w.now()}, changes)
	p.head = c.SHA
	p.commits = append(p.commits, c.SHA)
	for k := range changes {
		p.changed[c.SHA] = append(p.changed[c.SHA], k)
	}
	return p
}

// review submits a review of the branch's current head.
func (p *pr) review(user, state string) *pr {
	p.reviews = append(p.reviews, ghfake.Review{User: user, State: state, CommitID: p.head, SubmittedAt: p.w.now()})
	return p
}

func (p *pr) register(merged time.Time, mergeSHA, baseRef string) int {
	w := p.w
	pull := w.gh.AddPull(w.repo, ghfake.Pull{User: p.author, HeadSHA: p.head, BaseSHA: p.base, BaseRef: baseRef,
		MergedAt: merged, MergeCommitSHA: mergeSHA, Commits: p.commits})
	p.number = pull.Number
	for _, c := range p.commits {
		w.gh.Associate(w.repo, c, pull.Number)
	}
	for _, rv := range p.reviews {
		w.gh.AddReview(w.repo, pull.Number, rv)
	}
	return pull.Number
}

// merge merges the pull request into main the way kind says ("merge",
// "squash" or "rebase") and returns the main commit that last changed
// path. The merged tree is main's with the pull request's changes on top,
// as on GitHub.
func (p *pr) merge(kind, path string) string {
	return p.mergeWith(kind, path, kind+" #PR")
}

// mergeWith merges with a chosen message (a squash title people edit).
func (p *pr) mergeWith(kind, path, message string) string {
	w := p.w
	at := t0.Add(24 * time.Hour)
	switch kind {
	case "merge", "squash":
		parents := []string{w.main}
		if kind == "merge" {
			parents = append(parents, p.head)
		}
		c := w.gh.AddCommit(w.repo, ghfake.Commit{Parents: parents, Author: p.author, Committer: "web-flow", Message: message, Date: at}, p.diff())
		n := p.register(at, c.SHA, "main")
		w.gh.Associate(w.repo, c.SHA, n)
		w.main = c.SHA
		return c.SHA
	case "rebase":
		var introduced string
		var rebased []string
		for _, orig := range p.commits {
			src := w.gh.Commit(w.repo, orig)
			changes := map[string]string{}
			for _, ch := range p.changed[orig] {
				changes[ch] = src.Files[ch] // "" deletes
			}
			c := w.gh.AddCommit(w.repo, ghfake.Commit{Parents: []string{w.main}, Author: src.Author, Committer: "web-flow", Message: src.Message + " (rebased)", Date: at}, changes)
			rebased = append(rebased, c.SHA)
			w.main = c.SHA
			if _, ok := changes[path]; ok {
				introduced = c.SHA
			}
		}
		n := p.register(at, w.main, "main")
		for _, r := range rebased {
			w.gh.Associate(w.repo, r, n)
		}
		return introduced
	}
	p.w.t.Fatalf("unknown merge kind %q", kind)
	return ""
}

// diff is what the pull request changes: head against base ("" deletes).
func (p *pr) diff() map[string]string {
	base, head := p.w.gh.Commit(p.w.repo, p.base).Files, p.w.gh.Commit(p.w.repo, p.head).Files
	out := map[string]string{}
	for k, v := range head {
		if base[k] != v {
			out[k] = v
		}
	}
	for k := range base {
		if _, ok := head[k]; !ok {
			out[k] = ""
		}
	}
	return out
}

// mergeInto merges into another branch (not main): nothing reaches main
// through it, yet the test then pushes the same tree to main.
func (p *pr) mergeInto(branch string) int {
	return p.register(t0.Add(24*time.Hour), p.head, branch)
}

// landedAs registers the pull request as merged into main a day after t0
// with the merge commit sha, which GitHub links to it; for a merge commit
// the test built itself.
func (p *pr) landedAs(sha string) {
	n := p.register(t0.Add(24*time.Hour), sha, "main")
	p.w.gh.Associate(p.w.repo, sha, n)
}

// leaveOpen registers the pull request without merging it.
func (p *pr) leaveOpen() int { return p.register(time.Time{}, "", "main") }

func copyFiles(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// pushMain commits straight to main.
func (w *world) pushMain(author string, changes map[string]string) string {
	c := w.gh.AddCommit(w.repo, ghfake.Commit{Parents: []string{w.main}, Author: author, Committer: author, Message: "direct", Date: t0.Add(30 * time.Hour)}, changes)
	w.main = c.SHA
	return c.SHA
}

// input describes path as it is at commit.
func (w *world) input(path, commit string) approval.Input {
	w.t.Helper()
	content, ok := w.gh.Commit(w.repo, commit).Files[path]
	if !ok {
		w.t.Fatalf("%s not in %s", path, commit)
	}
	req, diags := schema.LoadRequest(path, []byte(content))
	if req == nil {
		w.t.Fatalf("request %s: %v", path, diags)
	}
	parents := append([]string{}, w.gh.Commit(w.repo, commit).Parents...)
	return approval.Input{Path: path, Blob: ghfake.BlobSHA([]byte(content)), Commit: commit, Parents: parents, Request: req}
}

// gitReader reads files as the reconciler's git side would: from the
// repository itself, without API calls.
type gitReader struct{ w *world }

func (g gitReader) ReadFile(_ context.Context, rev, path string) ([]byte, error) {
	c := g.w.gh.Commit(g.w.repo, rev)
	if c == nil {
		return nil, fmt.Errorf("revision %s not in the local clone", rev)
	}
	s, ok := c.Files[path]
	if !ok {
		return nil, fmt.Errorf("%s: %w", path, fs.ErrNotExist)
	}
	return []byte(s), nil
}

// policyOf is the Policy the files of commit hold.
func (w *world) policyOf(commit string) approval.Policy {
	w.t.Helper()
	c := w.gh.Commit(w.repo, commit)
	if c == nil {
		w.t.Fatalf("no commit %s", commit)
	}
	files := map[string][]byte{}
	for _, p := range gitgrant.PolicyFiles {
		if s, ok := c.Files[p]; ok {
			files[p] = []byte(s)
		}
	}
	return approval.ParsePolicy(commit, files)
}

// trusted is a PolicySource as the trust package would be: the policy in
// force at a commit is the files of the commit it maps to (by default the
// root commit: nothing since was verified).
type trusted struct {
	w  *world
	mu sync.Mutex
	at map[string]string
}

func (t *trusted) set(commit, policy string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.at == nil {
		t.at = map[string]string{}
	}
	t.at[commit] = policy
}

func (t *trusted) PolicyAt(_ context.Context, commit string) (approval.Policy, error) {
	t.mu.Lock()
	p, ok := t.at[commit]
	t.mu.Unlock()
	if !ok {
		p = t.w.root
	}
	return t.w.policyOf(p), nil
}

// policyChange describes what commit changed in the policy files, as the
// trust package reads it from git.
func (w *world) policyChange(commit string) approval.PolicyChangeInput {
	w.t.Helper()
	c := w.gh.Commit(w.repo, commit)
	in := approval.PolicyChangeInput{Commit: commit, Parents: append([]string{}, c.Parents...)}
	parent := w.gh.Commit(w.repo, c.Parents[0])
	blob := func(files map[string]string, p string) string {
		if s, ok := files[p]; ok {
			return ghfake.BlobSHA([]byte(s))
		}
		return ""
	}
	for _, p := range gitgrant.PolicyFiles {
		if b, pb := blob(c.Files, p), blob(parent.Files, p); b != pb {
			in.Changes = append(in.Changes, approval.PolicyFileChange{Path: p, Blob: b, ParentBlob: pb})
		}
	}
	if len(in.Changes) == 0 {
		w.t.Fatalf("commit %s changes no policy file", commit)
	}
	return in
}

var shaRE = regexp.MustCompile(`\b[0-9a-f]{12}\b`)

// verdict is the part of the evidence the scenarios assert, with commit
// hashes replaced by <sha> so that the wanted reasons read as prose.
type verdict struct {
	Approved  bool
	Emergency bool
	Approvers []string
	Reasons   []string
}

func approved(approvers ...string) verdict {
	return verdict{Approved: true, Approvers: approvers}
}

func rejected(reasons ...string) verdict { return verdict{Reasons: reasons} }

// counting is v with the approvals that counted towards it, for a request
// refused for another reason.
func (v verdict) counting(approvers ...string) verdict {
	v.Approvers = approvers
	return v
}

// noApprovalRW is the reason a readwrite request without a code owner's
// approval on its final head is refused.
const noApprovalRW = "grants.0: orders-db/readwrite needs 1 code-owner approval(s) on the final head commit, has 0"

// judge verifies in with v and fails unless the verdict is want; it returns
// the evidence for further checks.
func judge(t *testing.T, v *approval.Verifier, in approval.Input, want verdict) gitgrant.Evidence {
	t.Helper()
	ev, err := v.Verify(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, verdictOf(ev)); diff != "" {
		t.Errorf("verdict (-want +got):\n%s", diff)
	}
	return ev
}

func verdictOf(ev gitgrant.Evidence) verdict {
	v := verdict{Approved: ev.Approved, Emergency: ev.Emergency}
	for _, a := range ev.Approvers {
		v.Approvers = append(v.Approvers, a.Login+" via "+a.Via)
	}
	for _, r := range ev.Reasons {
		v.Reasons = append(v.Reasons, shaRE.ReplaceAllString(r, "<sha>"))
	}
	return v
}

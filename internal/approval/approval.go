// Package approval owns deciding whether the current content of one
// request file was approved the way the brief's rules demand (rules 1-6):
// it finds the merged pull request that brought the content to the main
// branch and re-checks its reviews itself, judged by the CODEOWNERS file
// and gitgrant.yaml at the pull request's base commit. The result is a
// gitgrant.Evidence, cached by (path, blob, commit) so that a steady state
// costs no API calls.
package approval

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/gitgrant/gitgrant"
)

// FileReader reads one file of the repository at a revision (a commit
// SHA). A missing file is an error wrapping fs.ErrNotExist. The reconciler
// passes its git reader, so that base-commit files cost no API calls.
type FileReader interface {
	ReadFile(ctx context.Context, rev, path string) ([]byte, error)
}

// MaxPullCommits is how many commits GitHub lists for a pull request; a
// longer pull request cannot have all its committers checked.
const MaxPullCommits = 250

// GitHub is what verification needs from GitHub's API; *ghapi.Client
// implements it.
type GitHub interface {
	FileReader
	DefaultBranch(ctx context.Context) (string, error)
	PullRequestsWithCommit(ctx context.Context, sha string) ([]gitgrant.PullRequest, error)
	PullRequest(ctx context.Context, number int) (gitgrant.PullRequest, error)
	PullRequestCommits(ctx context.Context, number int) ([]gitgrant.Commit, error)
	Reviews(ctx context.Context, number int) ([]gitgrant.Review, error)
	Commit(ctx context.Context, sha string) (gitgrant.Commit, error)
	// IsTeamMember reports active membership of org/slug.
	IsTeamMember(ctx context.Context, org, slug, login string) (bool, error)
	// FollowUp returns the number of the open or closed issue gitgrant
	// wrote whose body holds marker, creating it when there is none.
	FollowUp(ctx context.Context, marker, title, body string) (int, error)
}

// Repository is GitHub for the repository whose requests are verified.
type Repository interface {
	GitHub
	// Org is the repository's owner: CODEOWNERS teams of another org are
	// not honoured.
	Org() string
	// RepoURL is the repository's web address, for links.
	RepoURL() string
}

// New is a Verifier for repo. files may be nil (base commits are then
// read through the contents API); cache may be nil (no steady state:
// every pass asks GitHub again).
func New(repo Repository, files FileReader, cache Cache) *Verifier {
	return &Verifier{GitHub: repo, Files: files, Cache: cache, Org: repo.Org(), RepoURL: repo.RepoURL()}
}

// Input is one request file as it is on the main branch.
type Input struct {
	Path string
	// Blob is the file's git blob hash on main.
	Blob string
	// Commit is the first-parent commit of main that last changed the file
	// (a merge, squash or rebased commit, or a direct push).
	Commit string
	// Parents are Commit's parents from git, first parent first; nil: asked
	// from GitHub when needed. The verifier decides from them and from
	// GitHub's account of the pull request (never from a commit message)
	// which main commit the pull request was merged onto, and judges a
	// direct push by its first parent's policy.
	Parents []string
	// FirstSeen is when gitgrant first saw Commit on main, from its own
	// durable record (the earliest recorded; later than now only after
	// the clock stepped back, by MaxClockStepBack at most); zero means
	// now. The window of content that came without a merged pull
	// request starts there, or at an earlier commit date (rule 6).
	FirstSeen time.Time
	Request   *gitgrant.Request
}

// Verifier verifies request files and policy changes. One Verifier may
// serve many passes; it memoises the default branch, the raw policy files
// of commits, team memberships (for MemoTTL) and policy-change verdicts.
type Verifier struct {
	GitHub GitHub
	// Files reads base and head commits from git; nil or failing reads fall
	// back to GitHub's contents API. When it also implements ParentReader,
	// walking back a rebase costs no API calls.
	Files FileReader
	Cache Cache
	// Policy tells the policy in force at a commit (the trusted policy,
	// rule 13). Nil: the raw gitgrant.yaml and CODEOWNERS at that commit.
	Policy PolicySource
	// Org is the repository owner: CODEOWNERS teams of another org are
	// not honoured (GitHub ignores them too).
	Org string
	// RepoURL, such as https://github.com/o/r, is used for links in
	// follow-up issues.
	RepoURL string
	// Clock is the time verification is judged at; nil is the wall clock.
	Clock  gitgrant.Clock
	Logger *slog.Logger
	// MemoTTL bounds how long team memberships are reused (default 5m).
	MemoTTL time.Duration

	mu      sync.Mutex
	branch  string
	teams   map[string]memo
	raw     map[string]*Policy
	changes map[string]policyMemo
	// files are reads from git by commit hash and path: content at a
	// commit never changes, and every pass reads each request at its
	// pull request's head and base again.
	files map[fileKey]fileMemo
}

type fileKey struct{ rev, path string }

type fileMemo struct {
	data    []byte
	missing bool
}

// maxFileMemo bounds the remembered reads (a few MB of request files);
// past it the memo starts again.
const maxFileMemo = 50_000

type memo struct {
	member bool
	at     time.Time
}

// ParentReader is what a FileReader may also offer: a commit's parents,
// first parent first.
type ParentReader interface {
	Parents(ctx context.Context, rev string) ([]string, error)
}

func (v *Verifier) now() time.Time { return gitgrant.ClockOr(v.Clock).Now().UTC() }

func (v *Verifier) logger() *slog.Logger {
	if v.Logger != nil {
		return v.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// Verify returns the evidence for one request file. An error means GitHub
// or git could not be asked (fail closed: no grant, try again later);
// a rejection is evidence with Approved false and its reasons. Verify only
// reads: an emergency's follow-up issue is opened by EnsureFollowUp.
func (v *Verifier) Verify(ctx context.Context, in Input) (gitgrant.Evidence, error) {
	if in.Path == "" || in.Blob == "" || in.Commit == "" || in.Request == nil {
		return gitgrant.Evidence{}, errors.New("approval: input needs path, blob, commit and the decoded request")
	}
	key := Key{Path: in.Path, Blob: in.Blob, Commit: in.Commit}
	var first time.Time
	if v.Cache != nil {
		e, ok, err := v.Cache.Get(ctx, key)
		if err != nil {
			return gitgrant.Evidence{}, fmt.Errorf("approval: evidence cache: %w", err)
		}
		if ok {
			reuse, err := v.reusable(ctx, verdictMemo{firstChecked: e.FirstChecked, recheckAt: e.RecheckAt, deps: e.Policies})
			if err != nil {
				return gitgrant.Evidence{}, err
			}
			if reuse {
				return e.Evidence, nil
			}
		}
		first = e.FirstChecked
	}
	ev, recheck, err := v.verify(ctx, in)
	if err != nil {
		return gitgrant.Evidence{}, err
	}
	if v.Cache != nil {
		m, err := v.memoFor(ctx, first, ev.CheckedAt, recheck, ev.BaseCommit, ev.MergedOnto)
		if err != nil {
			return gitgrant.Evidence{}, err
		}
		entry := CacheEntry{Evidence: ev, FirstChecked: m.firstChecked, RecheckAt: m.recheckAt, Policies: m.deps}
		if err := v.Cache.Put(ctx, key, entry); err != nil {
			return gitgrant.Evidence{}, fmt.Errorf("approval: evidence cache: %w", err)
		}
	}
	return ev, nil
}

// policyDeps records, for a PolicySource, the policy state each commit a
// verdict was judged at had: a verdict judged by a state that changed
// since (a policy change verified late) is judged again. The raw files
// of a commit never change, so without a PolicySource nothing is kept.
func (v *Verifier) policyDeps(ctx context.Context, commits ...string) (map[string]string, error) {
	if v.Policy == nil {
		return nil, nil
	}
	deps := map[string]string{}
	for _, c := range commits {
		if c == "" {
			continue
		}
		p, err := v.policyAt(ctx, c)
		if err != nil {
			return nil, err
		}
		deps[c] = p.fingerprint()
	}
	return deps, nil
}

// verdictMemo is what is kept beside a verdict (a request's evidence in
// the Cache, a policy change's in the Verifier): when the same input was
// first checked, when to gather it again (zero: only once the policy it
// was judged by changes) and that policy (policyDeps).
type verdictMemo struct {
	firstChecked time.Time
	recheckAt    time.Time
	deps         map[string]string
}

// memoFor is the memo of a verdict checked at checked; first is when the
// same input was first checked (zero: this is the first time). A verdict
// that asks for a recheck is gathered again RecheckInterval after checked,
// as long as RecheckWindow since the first check has not passed.
func (v *Verifier) memoFor(ctx context.Context, first, checked time.Time, recheck bool, base, mergedOnto string) (verdictMemo, error) {
	m := verdictMemo{firstChecked: first}
	if m.firstChecked.IsZero() {
		m.firstChecked = checked
	}
	if recheck && checked.Sub(m.firstChecked) < RecheckWindow {
		m.recheckAt = checked.Add(RecheckInterval)
	}
	var err error
	m.deps, err = v.policyDeps(ctx, base, mergedOnto)
	return m, err
}

// reusable reports whether the verdict kept with m may be returned again
// now: its recheck time has not come and the policies it was judged by are
// still those in force.
func (v *Verifier) reusable(ctx context.Context, m verdictMemo) (bool, error) {
	if !m.recheckAt.IsZero() && !v.now().Before(m.recheckAt) {
		return false, nil
	}
	return v.samePolicies(ctx, m.deps)
}

// samePolicies reports whether the policies a cached verdict was judged by
// are still those in force.
func (v *Verifier) samePolicies(ctx context.Context, deps map[string]string) (bool, error) {
	if v.Policy == nil {
		return true, nil
	}
	if deps == nil {
		return false, nil // judged before a PolicySource was used
	}
	for c, fp := range deps {
		p, err := v.policyAt(ctx, c)
		if err != nil {
			return false, err
		}
		if p.fingerprint() != fp {
			return false, nil
		}
	}
	return true, nil
}

// GitHub links a merged commit to its pull request a little after the
// merge; a "no pull request" verdict is therefore re-checked every
// RecheckInterval for RecheckWindow before it becomes final.
const (
	RecheckInterval = time.Minute
	RecheckWindow   = 15 * time.Minute
)

func (v *Verifier) verify(ctx context.Context, in Input) (ev gitgrant.Evidence, recheck bool, err error) {
	ev = gitgrant.Evidence{Path: in.Path, Blob: in.Blob, MergeCommit: in.Commit, CheckedAt: v.now()}
	pr, branch, ok, err := v.mergedPullRequest(ctx, in.Commit)
	if err != nil {
		return ev, false, err
	}
	if !ok {
		ev, err = v.direct(ctx, in, ev, branch)
		return ev, true, err
	}
	ev, err = v.viaPullRequest(ctx, in, ev, pr)
	return ev, false, err
}

// mergedPullRequest is the merged pull request that brought commit to the
// default branch (named too), by GitHub's account; ok is false for a
// direct push or a bypass, or while GitHub has not linked the merge yet.
func (v *Verifier) mergedPullRequest(ctx context.Context, commit string) (pr gitgrant.PullRequest, branch string, ok bool, err error) {
	if branch, err = v.defaultBranch(ctx); err != nil {
		return pr, "", false, err
	}
	prs, err := v.GitHub.PullRequestsWithCommit(ctx, commit)
	if err != nil {
		return pr, branch, false, err
	}
	pr, ok = pickPullRequest(prs, commit, branch)
	return pr, branch, ok, nil
}

// pickPullRequest chooses the merged pull request into branch whose merge
// (or squash) commit is sha; failing that, a merged one GitHub associates
// with sha (a rebase merge, whose rebased commits are not the
// merge_commit_sha). Open and unmerged pull requests never count.
func pickPullRequest(prs []gitgrant.PullRequest, sha, branch string) (gitgrant.PullRequest, bool) {
	var rebased []gitgrant.PullRequest
	for _, p := range prs {
		if !p.Merged || p.MergedAt.IsZero() || p.BaseRef != branch {
			continue
		}
		if p.MergeCommitSHA == sha {
			return p, true
		}
		rebased = append(rebased, p)
	}
	if len(rebased) == 0 {
		return gitgrant.PullRequest{}, false
	}
	best := rebased[0]
	for _, p := range rebased[1:] {
		if p.MergedAt.After(best.MergedAt) {
			best = p
		}
	}
	return best, true
}

func (v *Verifier) defaultBranch(ctx context.Context) (string, error) {
	v.mu.Lock()
	b := v.branch
	v.mu.Unlock()
	if b != "" {
		return b, nil
	}
	b, err := v.GitHub.DefaultBranch(ctx)
	if err != nil {
		return "", err
	}
	v.mu.Lock()
	v.branch = b
	v.mu.Unlock()
	return b, nil
}

// read reads a file at rev from git, falling back to GitHub when git does
// not have the revision. A file git says is missing is missing.
func (v *Verifier) read(ctx context.Context, rev, path string) ([]byte, error) {
	if v.Files != nil {
		key := fileKey{rev, path}
		v.mu.Lock()
		m, ok := v.files[key]
		v.mu.Unlock()
		if ok {
			if m.missing {
				return nil, fmt.Errorf("%s at %s: %w", path, rev, fs.ErrNotExist)
			}
			return m.data, nil
		}
		data, err := v.Files.ReadFile(ctx, rev, path)
		if err == nil || errors.Is(err, fs.ErrNotExist) {
			if isCommitHash(rev) {
				v.mu.Lock()
				if v.files == nil || len(v.files) >= maxFileMemo {
					v.files = map[fileKey]fileMemo{}
				}
				v.files[key] = fileMemo{data: data, missing: err != nil}
				v.mu.Unlock()
			}
			return data, err
		}
		v.logger().Debug("git read failed, asking GitHub", "rev", rev, "path", path, "err", err)
	}
	return v.GitHub.ReadFile(ctx, rev, path)
}

// member reports whether login matches a principal reference: a login
// (case-insensitive, as GitHub logins are) or an active member of
// "@org/team".
func (v *Verifier) member(ctx context.Context, ref, login string) (bool, error) {
	ref = strings.TrimPrefix(ref, "@")
	org, slug, isTeam := strings.Cut(ref, "/")
	if !isTeam {
		return strings.EqualFold(ref, login), nil
	}
	key := strings.ToLower(org + "/" + slug + "/" + login)
	ttl := v.MemoTTL
	if ttl <= 0 {
		ttl = 5 * time.Minute
	}
	v.mu.Lock()
	m, ok := v.teams[key]
	v.mu.Unlock()
	if ok && v.now().Sub(m.at) < ttl {
		return m.member, nil
	}
	yes, err := v.GitHub.IsTeamMember(ctx, org, slug, login)
	if err != nil {
		return false, err
	}
	v.mu.Lock()
	if v.teams == nil {
		v.teams = map[string]memo{}
	}
	v.teams[key] = memo{member: yes, at: v.now()}
	v.mu.Unlock()
	return yes, nil
}

// memberOfAny reports whether login matches one of refs. A team whose
// members cannot be read (*gitgrant.TeamAccessError) decides nothing: its error is
// returned only when no other reference matches.
func (v *Verifier) memberOfAny(ctx context.Context, refs []string, login string) (bool, error) {
	var unreadable error
	for _, ref := range refs {
		ok, err := v.member(ctx, ref, login)
		switch {
		case teamAccess(err):
			unreadable = cmp.Or(unreadable, err)
		case err != nil:
			return false, err
		case ok:
			return true, nil
		}
	}
	return false, unreadable
}

func teamAccess(err error) bool {
	var denied *gitgrant.TeamAccessError
	return errors.As(err, &denied)
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}

// isCommitHash reports whether rev names one commit for good: a full
// SHA-1 or SHA-256 hash, not a branch or an abbreviation.
func isCommitHash(rev string) bool {
	if len(rev) != 40 && len(rev) != 64 {
		return false
	}
	for _, c := range rev {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

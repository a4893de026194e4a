package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"

	"github.com/gitgrant/gitgrant"
)

// Trailer keys of cleanup commits. One commit removes several requests;
// each request's trailers start with Gitgrant-Request (docs/audit.md).
const (
	TrailerRequest     = "Gitgrant-Request"
	TrailerRequester   = "Gitgrant-Requester"
	TrailerGrant       = "Gitgrant-Grant"
	TrailerApprovedBy  = "Gitgrant-Approved-By"
	TrailerGrantedAt   = "Gitgrant-Granted-At"
	TrailerExpiredAt   = "Gitgrant-Expired-At"
	TrailerRevokedAt   = "Gitgrant-Revoked-At"
	TrailerPullRequest = "Gitgrant-Pull-Request"
)

// Removal is one request file a cleanup commit removes, with what the
// trailers record about it.
type Removal struct {
	Path        string
	Requester   string
	Grants      []gitgrant.GrantRef
	ApprovedBy  []string
	PullRequest int
	GrantedAt   time.Time
	ExpiredAt   time.Time // when the request ran out; zero when revoked for another reason
	RevokedAt   time.Time // when the access was taken away
}

// Committer is the identity cleanup commits and notes are written as.
type Committer struct {
	Name  string
	Email string
}

// DefaultCommitter is used when none is configured.
var DefaultCommitter = Committer{Name: "gitgrant", Email: "gitgrant@users.noreply.github.com"}

// CommitOptions configure gitgrant's own commits.
type CommitOptions struct {
	Committer Committer
	// Signer signs commits when set (OpenPGPSigner or SSHSigner).
	Signer Signer
	// Clock dates commits and notes; nil is the wall clock.
	Clock gitgrant.Clock
	// Branch, when set, receives the cleanup commit (for a pull request)
	// instead of the main branch. It must be new or gitgrant's own: it is
	// replaced (force-pushed) when main or the removals changed.
	Branch string
	// Attempts bounds fetch-rederive-push rounds on a non-fast-forward;
	// zero means 5.
	Attempts int
	// Notes are grant-time records Cleanup pushes with its commit
	// (after it, and even when there is nothing to remove).
	Notes []Note
}

func (o CommitOptions) now() time.Time { return gitgrant.ClockOr(o.Clock).Now().UTC() }

func (o CommitOptions) signature() object.Signature {
	c := o.Committer
	if c.Name == "" {
		c = DefaultCommitter
	}
	return object.Signature{Name: c.Name, Email: c.Email, When: o.now().Truncate(time.Second)}
}

// CleanupResult says what a cleanup run did.
type CleanupResult struct {
	Commit   plumbing.Hash // zero when nothing needed removing
	Removed  []string
	Attempts int
}

// Derive decides, from the main branch as it is now, which files to
// remove. It is called again after every fetch, so a removal that someone
// else already made, or a request extended meanwhile, is re-judged.
type Derive func(*Snapshot) ([]Removal, error)

// Cleanup removes the files derive returns in one commit on top of the
// remote main branch and pushes it, never forcing: when the push is
// rejected as a non-fast-forward it fetches, derives again and retries.
// Files already gone are skipped; nothing to remove makes no commit.
// Local branches and the work tree are never touched. An error returned
// with a non-zero Commit means the commit landed but o.Notes did not; they
// are kept in the local notes ref and go out with the next push.
func (r *Repo) Cleanup(ctx context.Context, derive Derive, o CommitOptions) (CleanupResult, error) {
	attempts := o.Attempts
	if attempts <= 0 {
		attempts = 5
	}
	var res CleanupResult
	var lastErr error
	for res.Attempts < attempts {
		res.Attempts++
		if err := r.Fetch(ctx); err != nil {
			return res, err
		}
		base, err := r.remoteMain()
		if err != nil {
			return res, err
		}
		snap, err := r.ReadRevision(base.String())
		if err != nil {
			return res, err
		}
		removals, err := derive(snap)
		if err != nil {
			return res, err
		}
		removals = present(snap, removals)
		if len(removals) == 0 {
			res.Commit, res.Removed = plumbing.ZeroHash, nil
			return res, r.addNotes(ctx, o)
		}
		commit, err := r.writeCleanupCommit(base, removals, o)
		if err != nil {
			return res, err
		}
		target, force := r.branch, false
		if o.Branch != "" {
			target = o.Branch
			// gitgrant's own branch is rebuilt on main by every pass. The
			// same removals on the same main leave it as it is (its pull
			// request is not touched); anything else replaces it, which a
			// branch only gitgrant writes allows.
			if tip, same := r.sameCleanup(target, base, commit); same {
				commit = tip
			} else {
				force = true
			}
		}
		lastErr = r.pushRef(ctx, commit, plumbing.NewBranchReferenceName(target), force)
		if lastErr == nil {
			res.Commit = commit
			res.Removed = res.Removed[:0]
			for _, rm := range removals {
				res.Removed = append(res.Removed, rm.Path)
			}
			return res, r.addNotes(ctx, o)
		}
		if !isNonFastForward(lastErr) {
			return res, r.fail("push to "+target, lastErr, false)
		}
	}
	return res, r.fail("push", fmt.Errorf("still rejected as non-fast-forward after %d attempts: %w", res.Attempts, lastErr), true)
}

func (r *Repo) addNotes(ctx context.Context, o CommitOptions) error {
	if len(o.Notes) == 0 {
		return nil
	}
	return r.AddNotes(ctx, o.Notes, o)
}

// present keeps the removals whose files still exist, once each, sorted.
func present(s *Snapshot, rs []Removal) []Removal {
	have := map[string]bool{}
	for _, f := range s.Requests {
		have[f.Path] = true
	}
	var out []Removal
	for _, rm := range rs {
		if have[rm.Path] {
			out = append(out, rm)
			delete(have, rm.Path)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// remoteMain is the remote's main branch as last fetched.
func (r *Repo) remoteMain() (plumbing.Hash, error) {
	ref, err := r.git.Reference(plumbing.NewRemoteReferenceName(remoteName, r.branch), true)
	if err != nil {
		return plumbing.ZeroHash, r.fail("resolve branch", fmt.Errorf("branch %q not found on the remote %s: %w", r.branch, r.source, err), false)
	}
	return ref.Hash(), nil
}

// CleanupMessage is the message of a cleanup commit: a subject, one line
// per request for people, and one trailer block per request for tools.
func CleanupMessage(removals []Removal) string {
	var b strings.Builder
	noun := "requests"
	if len(removals) == 1 {
		noun = "request"
	}
	fmt.Fprintf(&b, "gitgrant: remove %d expired or revoked %s\n\n", len(removals), noun)
	for _, rm := range removals {
		fmt.Fprintf(&b, "- %s (%s, %s)\n", trailerValue(rm.Path), trailerValue(rm.Requester), trailerValue(grantList(rm.Grants)))
	}
	b.WriteString("\n")
	for _, rm := range removals {
		fmt.Fprintf(&b, "%s: %s\n", TrailerRequest, trailerValue(rm.Path))
		fmt.Fprintf(&b, "%s: %s\n", TrailerRequester, trailerValue(rm.Requester))
		for _, g := range rm.Grants {
			fmt.Fprintf(&b, "%s: %s\n", TrailerGrant, trailerValue(g.Provider+"/"+g.Role))
		}
		for _, a := range rm.ApprovedBy {
			fmt.Fprintf(&b, "%s: %s\n", TrailerApprovedBy, trailerValue(a))
		}
		for _, t := range []struct {
			key string
			at  time.Time
		}{{TrailerGrantedAt, rm.GrantedAt}, {TrailerExpiredAt, rm.ExpiredAt}, {TrailerRevokedAt, rm.RevokedAt}} {
			if !t.at.IsZero() {
				fmt.Fprintf(&b, "%s: %s\n", t.key, t.at.UTC().Format(time.RFC3339))
			}
		}
		if rm.PullRequest > 0 {
			fmt.Fprintf(&b, "%s: %d\n", TrailerPullRequest, rm.PullRequest)
		}
	}
	return b.String()
}

// trailerValue writes a value that came from a request file (its path
// above all: git allows newlines in file names) so that it stays one
// trailer: as it is when it is plain, else as a Go-quoted string, which
// ParseCleanupTrailers unquotes. Without quoting, a file named
// "x.yaml\nGitgrant-Approved-By: mallory" would write a trailer of its own.
func trailerValue(s string) string {
	if s != strings.TrimSpace(s) || strings.HasPrefix(s, `"`) || !utf8.ValidString(s) {
		return strconv.Quote(s)
	}
	for _, r := range s {
		if !strconv.IsPrint(r) {
			return strconv.Quote(s)
		}
	}
	return s
}

// readTrailerValue is the inverse of trailerValue. A value that starts
// with a quote but does not unquote was written unquoted, by a gitgrant
// that did not quote yet.
func readTrailerValue(s string) string {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, `"`) {
		if u, err := strconv.Unquote(s); err == nil {
			return u
		}
	}
	return s
}

func grantList(gs []gitgrant.GrantRef) string {
	parts := make([]string, len(gs))
	for i, g := range gs {
		parts[i] = g.Provider + "/" + g.Role
	}
	return strings.Join(parts, ", ")
}

func (r *Repo) writeCleanupCommit(base plumbing.Hash, removals []Removal, o CommitOptions) (plumbing.Hash, error) {
	parent, err := object.GetCommit(r.git.Storer, base)
	if err != nil {
		return plumbing.ZeroHash, r.fail("read commit "+base.String(), err, false)
	}
	paths := make([]string, len(removals))
	for i, rm := range removals {
		paths[i] = rm.Path
	}
	tree, err := r.removePaths(parent.TreeHash, paths)
	if err != nil {
		return plumbing.ZeroHash, r.fail("write tree", err, false)
	}
	sig := o.signature()
	c := &object.Commit{Author: sig, Committer: sig, Message: CleanupMessage(removals), TreeHash: tree, ParentHashes: []plumbing.Hash{base}}
	return r.storeCommit(c, o.Signer)
}

// storeCommit signs (when asked) and stores a commit.
func (r *Repo) storeCommit(c *object.Commit, s Signer) (plumbing.Hash, error) {
	if s != nil {
		unsigned := r.git.Storer.NewEncodedObject()
		if err := c.EncodeWithoutSignature(unsigned); err != nil {
			return plumbing.ZeroHash, err
		}
		rd, err := unsigned.Reader()
		if err != nil {
			return plumbing.ZeroHash, err
		}
		sig, err := s.Sign(rd)
		rd.Close()
		if err != nil {
			return plumbing.ZeroHash, r.fail("sign commit", err, false)
		}
		c.PGPSignature = string(sig)
	}
	obj := r.git.Storer.NewEncodedObject()
	if err := c.Encode(obj); err != nil {
		return plumbing.ZeroHash, err
	}
	h, err := r.git.Storer.SetEncodedObject(obj)
	if err != nil {
		return plumbing.ZeroHash, r.fail("store commit", err, false)
	}
	return h, nil
}

// removePaths returns the tree h without the given files, rebuilding only
// the trees on their paths and dropping trees that become empty.
func (r *Repo) removePaths(h plumbing.Hash, paths []string) (plumbing.Hash, error) {
	t, err := object.GetTree(r.git.Storer, h)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	here := map[string]bool{}
	below := map[string][]string{}
	for _, p := range paths {
		first, rest, nested := strings.Cut(p, "/")
		if nested {
			below[first] = append(below[first], rest)
		} else {
			here[first] = true
		}
	}
	var entries []object.TreeEntry
	for _, e := range t.Entries {
		switch {
		case here[e.Name]:
			continue
		case below[e.Name] != nil && e.Mode == filemode.Dir:
			sub, err := r.removePaths(e.Hash, below[e.Name])
			if err != nil {
				return plumbing.ZeroHash, err
			}
			if sub.IsZero() {
				continue
			}
			e.Hash = sub
		}
		entries = append(entries, e)
	}
	if len(entries) == 0 {
		return plumbing.ZeroHash, nil
	}
	return r.storeTree(entries)
}

func (r *Repo) storeTree(entries []object.TreeEntry) (plumbing.Hash, error) {
	sort.Sort(object.TreeEntrySorter(entries))
	obj := r.git.Storer.NewEncodedObject()
	if err := (&object.Tree{Entries: entries}).Encode(obj); err != nil {
		return plumbing.ZeroHash, err
	}
	return r.git.Storer.SetEncodedObject(obj)
}

// pushRef is the local reference a commit is pushed from; go-git pushes
// references, not bare hashes, and no branch of the user's is touched.
const pushRef = plumbing.ReferenceName("refs/gitgrant/push")

// sameCleanup reports whether the remote branch (as last fetched) already
// holds a cleanup commit with commit's tree on top of base, and returns it.
func (r *Repo) sameCleanup(branch string, base, commit plumbing.Hash) (plumbing.Hash, bool) {
	ref, err := r.git.Reference(plumbing.NewRemoteReferenceName(remoteName, branch), true)
	if err != nil {
		return plumbing.ZeroHash, false
	}
	tip, err := object.GetCommit(r.git.Storer, ref.Hash())
	if err != nil {
		return plumbing.ZeroHash, false
	}
	mine, err := object.GetCommit(r.git.Storer, commit)
	if err != nil || len(tip.ParentHashes) != 1 || tip.ParentHashes[0] != base || tip.TreeHash != mine.TreeHash {
		return plumbing.ZeroHash, false
	}
	return tip.Hash, true
}

// push sends commit to the remote's ref without forcing, then records it
// as the remote tracking branch.
func (r *Repo) push(ctx context.Context, commit plumbing.Hash, dst plumbing.ReferenceName) error {
	return r.pushRef(ctx, commit, dst, false)
}

// pushRef is push, forcing when asked: only ever for gitgrant's own
// cleanup branch, never for main or the notes.
func (r *Repo) pushRef(ctx context.Context, commit plumbing.Hash, dst plumbing.ReferenceName, force bool) error {
	if err := r.git.Storer.SetReference(plumbing.NewHashReference(pushRef, commit)); err != nil {
		return err
	}
	spec := config.RefSpec(pushRef.String() + ":" + dst.String())
	if force {
		spec = "+" + spec
	}
	auth, err := r.credentials()
	if err != nil {
		return err
	}
	err = r.git.PushContext(ctx, &git.PushOptions{RemoteName: remoteName, RefSpecs: []config.RefSpec{spec}, Auth: auth})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		if isNonFastForward(err) {
			return err
		}
		return fmt.Errorf("%w: %s", err, r.refusalAdvice(dst, err))
	}
	if dst.IsBranch() {
		tracking := plumbing.NewRemoteReferenceName(remoteName, dst.Short())
		return r.git.Storer.SetReference(plumbing.NewHashReference(tracking, commit))
	}
	return nil
}

// refusalAdvice says what to change when the remote refused a push for a
// reason other than a lost race, which retrying never fixes: a protected
// branch's hook ("pre-receive hook declined", GitHub's GH006), or a token
// without the right to push.
func (r *Repo) refusalAdvice(dst plumbing.ReferenceName, err error) string {
	s := strings.ToLower(err.Error())
	switch {
	case errors.Is(err, transport.ErrAuthorizationFailed), errors.Is(err, transport.ErrAuthenticationRequired),
		strings.Contains(s, "permission") || strings.Contains(s, "403"):
		return fmt.Sprintf("the credentials cannot push to %s: give gitgrant's token or GitHub App contents: write on the access repository", dst.Short())
	case dst == plumbing.NewBranchReferenceName(r.branch):
		return fmt.Sprintf("the remote refused gitgrant's cleanup commit on %s, which is how a protected branch answers a direct push: "+
			"set `cleanup.mode: pull-request` in gitgrant.yaml (gitgrant then opens a pull request that removes the expired files), "+
			"or let gitgrant's GitHub App bypass the protection of %s", r.branch, r.branch)
	case dst == NotesRef:
		return fmt.Sprintf("the remote refused %s, where gitgrant keeps its ledger: exempt that ref from the rules (rulesets) that cover it, for gitgrant's token or GitHub App", NotesRef)
	}
	return fmt.Sprintf("the remote refused the push to %s: let gitgrant's token or GitHub App push there", dst)
}

// isNonFastForward tells a lost race (someone pushed first) from other
// rejections such as a protected branch or a hook, which retrying will not fix.
func isNonFastForward(err error) bool {
	s := err.Error()
	for _, m := range []string{"non-fast-forward", "fetch first", "stale info", "failed to lock", "cannot lock ref", "failed to update ref"} {
		if strings.Contains(s, m) {
			return true
		}
	}
	return false
}

// ParseCleanupTrailers reads the per-request trailer blocks of a cleanup
// commit message, the inverse of CleanupMessage. Messages without
// Gitgrant-Request trailers yield nothing; unknown keys are ignored.
func ParseCleanupTrailers(message string) []Removal {
	paragraphs := strings.Split(strings.TrimRight(message, "\n"), "\n\n")
	last := paragraphs[len(paragraphs)-1]
	var out []Removal
	var cur *Removal
	for _, line := range strings.Split(last, "\n") {
		key, value, ok := strings.Cut(line, ": ")
		if !ok {
			continue
		}
		value = readTrailerValue(value)
		if key == TrailerRequest {
			out = append(out, Removal{Path: value})
			cur = &out[len(out)-1]
			continue
		}
		if cur == nil {
			continue
		}
		switch key {
		case TrailerRequester:
			cur.Requester = value
		case TrailerGrant:
			p, role, _ := strings.Cut(value, "/")
			cur.Grants = append(cur.Grants, gitgrant.GrantRef{Provider: p, Role: role})
		case TrailerApprovedBy:
			cur.ApprovedBy = append(cur.ApprovedBy, value)
		case TrailerGrantedAt:
			cur.GrantedAt, _ = time.Parse(time.RFC3339, value)
		case TrailerExpiredAt:
			cur.ExpiredAt, _ = time.Parse(time.RFC3339, value)
		case TrailerRevokedAt:
			cur.RevokedAt, _ = time.Parse(time.RFC3339, value)
		case TrailerPullRequest:
			fmt.Sscan(value, &cur.PullRequest)
		}
	}
	return out
}

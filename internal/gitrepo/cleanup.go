package gitrepo

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/gitgrant/gitgrant"
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

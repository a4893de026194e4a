package gitrepo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/gitgrant/gitgrant"
)

// PolicyChange is a first-parent commit of the main branch that changed a
// policy file (gitgrant.PolicyFiles): a policy candidate (rule 13).
type PolicyChange struct {
	Commit      plumbing.Hash
	Parents     []plumbing.Hash
	CommittedAt time.Time // the committer time, which the committer sets
	// State and ParentState are the policy states (PolicyState) at Commit
	// and at its first parent; a root commit's ParentState is all "".
	State, ParentState map[string]string
}

// policyCache is the last PolicyChanges answer and the head it is for.
type policyCache struct {
	head    plumbing.Hash
	changes []PolicyChange
}

// PolicyChanges returns the first-parent commits of the main branch that
// change any policy file, oldest first. Like Provenances, the Repo
// remembers the answer: a later call walks only the commits since, and
// the whole history again only after a force-push. The walk reads one
// commit and its root tree per commit, and a subtree holding a policy file
// (.github/, docs/) only when its hash is new; it never diffs trees.
func (r *Repo) PolicyChanges(ctx context.Context) ([]PolicyChange, error) {
	head, err := r.MainRef()
	if err != nil {
		return nil, err
	}
	r.policyMu.Lock()
	defer r.policyMu.Unlock()
	since, known := plumbing.ZeroHash, []PolicyChange(nil)
	if c := r.policy; c != nil {
		if c.head == head {
			return clonePolicyChanges(c.changes), nil
		}
		since, known = c.head, c.changes
	}
	newer, err := r.policyWalk(ctx, head, since)
	if errors.Is(err, ErrRewritten) {
		known = nil
		newer, err = r.policyWalk(ctx, head, plumbing.ZeroHash)
	}
	if err != nil {
		return nil, err
	}
	changes := append(slices.Clip(known), newer...)
	r.policy = &policyCache{head: head, changes: changes}
	return clonePolicyChanges(changes), nil
}

// policyWalk returns the policy changes after since (zero: from the root)
// up to head, oldest first; ErrRewritten when since is not on head's
// first-parent chain.
func (r *Repo) policyWalk(ctx context.Context, head, since plumbing.Hash) ([]PolicyChange, error) {
	st := newPolicyStates(r)
	var out []PolicyChange // newest first
	var newer *object.Commit
	var newerState map[string]string
	found, n := false, 0
	for h := head; !h.IsZero(); n++ {
		if h == since {
			found = true
			break
		}
		if n%1024 == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		c, err := object.GetCommit(r.git.Storer, h)
		if err != nil {
			return nil, r.fail("read commit "+h.String(), fmt.Errorf("%w (is the repository corrupt or shallow?)", err), false)
		}
		state, err := st.at(c.TreeHash)
		if err != nil {
			return nil, err
		}
		if newer != nil && !maps.Equal(newerState, state) {
			out = append(out, policyChange(newer, newerState, state))
		}
		newer, newerState = c, state
		h = plumbing.ZeroHash
		if len(c.ParentHashes) > 0 {
			h = c.ParentHashes[0]
		}
	}
	if !since.IsZero() && !found {
		return nil, ErrRewritten
	}
	if newer != nil {
		base := emptyPolicyState()
		if !since.IsZero() {
			c, err := object.GetCommit(r.git.Storer, since)
			if err != nil {
				return nil, r.fail("read commit "+since.String(), err, false)
			}
			if base, err = st.at(c.TreeHash); err != nil {
				return nil, err
			}
		}
		if !maps.Equal(newerState, base) {
			out = append(out, policyChange(newer, newerState, base))
		}
	}
	slices.Reverse(out)
	return out, nil
}

func policyChange(c *object.Commit, state, parent map[string]string) PolicyChange {
	return PolicyChange{Commit: c.Hash, Parents: slices.Clone(c.ParentHashes), CommittedAt: c.Committer.When.UTC(), State: state, ParentState: parent}
}

func clonePolicyChanges(cs []PolicyChange) []PolicyChange {
	out := make([]PolicyChange, len(cs))
	for i, c := range cs {
		c.Parents, c.State, c.ParentState = slices.Clone(c.Parents), maps.Clone(c.State), maps.Clone(c.ParentState)
		out[i] = c
	}
	return out
}

func emptyPolicyState() map[string]string {
	m := make(map[string]string, len(gitgrant.PolicyFiles))
	for _, p := range gitgrant.PolicyFiles {
		m[p] = ""
	}
	return m
}

// PolicyState returns the policy state at a commit: the blob of every
// policy file, "" when it is absent or not a regular file (a symbolic
// link, a directory, a submodule: none of them is read as policy).
func (r *Repo) PolicyState(commit plumbing.Hash) (map[string]string, error) {
	c, err := object.GetCommit(r.git.Storer, commit)
	if err != nil {
		return nil, r.fail("read commit "+commit.String(), err, false)
	}
	return newPolicyStates(r).at(c.TreeHash)
}

// policyStates reads policy states, remembering what a subtree holds by
// its hash: consecutive commits mostly share .github/ and docs/.
type policyStates struct {
	r    *Repo
	memo map[string]string // "<tree hash>/<path below it>" -> blob, "" when absent
}

func newPolicyStates(r *Repo) *policyStates {
	return &policyStates{r: r, memo: map[string]string{}}
}

func (s *policyStates) at(root plumbing.Hash) (map[string]string, error) {
	if len(s.memo) > 1<<14 { // a bound, not a cache policy: the next trees refill it
		clear(s.memo)
	}
	t, err := object.GetTree(s.r.git.Storer, root)
	if err != nil {
		return nil, s.r.fail("read tree "+root.String(), fmt.Errorf("%w (is the repository corrupt?)", err), false)
	}
	state := make(map[string]string, len(gitgrant.PolicyFiles))
	for _, p := range gitgrant.PolicyFiles {
		if state[p], err = s.find(t, p); err != nil {
			return nil, err
		}
	}
	return state, nil
}

// find looks p up in the tree t, descending into subtrees by their hash.
func (s *policyStates) find(t *object.Tree, p string) (string, error) {
	first, rest, nested := strings.Cut(p, "/")
	for _, e := range t.Entries {
		if e.Name != first {
			continue
		}
		if !nested {
			if e.Mode == filemode.Regular || e.Mode == filemode.Executable || e.Mode == filemode.Deprecated {
				return e.Hash.String(), nil
			}
			return "", nil
		}
		if e.Mode != filemode.Dir {
			return "", nil
		}
		key := e.Hash.String() + "/" + rest
		if blob, ok := s.memo[key]; ok {
			return blob, nil
		}
		sub, err := object.GetTree(s.r.git.Storer, e.Hash)
		if err != nil {
			return "", s.r.fail("read tree "+first, err, false)
		}
		blob, err := s.find(sub, rest)
		if err != nil {
			return "", err
		}
		s.memo[key] = blob
		return blob, nil
	}
	return "", nil
}

// ReadBlob reads a blob, at most gitgrant.MaxFileSize+1 bytes of it:
// enough for a parser (schema.LoadConfig) to say it is too large.
func (r *Repo) ReadBlob(h plumbing.Hash) ([]byte, error) {
	var data []byte
	err := r.withReader(func(or *objectReader) error {
		if b, ok := or.blobs[h]; ok {
			data = b
			return nil
		}
		b, err := or.readType(h, plumbing.BlobObject)
		if err != nil {
			return err
		}
		data = b[:min(len(b), gitgrant.MaxFileSize+1)]
		or.rememberBlob(h, data)
		return nil
	})
	if err != nil {
		return nil, r.fail("read blob "+h.String(), err, false)
	}
	return bytes.Clone(data), nil
}

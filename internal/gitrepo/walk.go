package gitrepo

import (
	"context"
	"fmt"
	"path"
	"sort"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"

	"github.com/gitgrant/gitgrant"
)

// WalkRequests calls fn, oldest first, for every first-parent commit after
// since (zero: from the root) up to head that changed requests/. Commits
// whose requests/ tree hash equals their parent's are skipped without
// looking inside, and so are unchanged provider folders: the walk costs one
// commit and one small tree read per commit plus the changed folders. It
// returns ErrRewritten when since is not on head's first-parent chain.
//
// Reading commits and reading trees overlap: one goroutine follows the
// first parents while another, with its own handle on the object store
// (go-git's pack reader is not safe for concurrent use), diffs the trees.
func (r *Repo) WalkRequests(ctx context.Context, head, since plumbing.Hash, fn func(Step) error) error {
	trees, chain, closeTrees, err := r.treeReader(ctx, head, since)
	if err != nil {
		return err
	}
	defer closeTrees()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	commits := make(chan walked, 4096)
	type result struct {
		found bool
		err   error
	}
	done := make(chan result, 1)
	go func() {
		found, err := r.sendFirstParents(ctx, head, since, chain, commits)
		close(commits)
		done <- result{found, err}
	}()
	d := &differ{r: r, s: trees, old: map[plumbing.Hash]map[string]object.TreeEntry{}, cur: map[plumbing.Hash]map[string]object.TreeEntry{}}
	for w := range commits {
		if err := d.next(w); err != nil {
			cancel()
			for range commits { // let the walker finish
			}
			<-done
			return err
		}
	}
	res := <-done
	switch {
	case res.err != nil:
		return res.err
	case !res.found && !since.IsZero():
		return ErrRewritten
	}
	if err := d.last(since); err != nil {
		return err
	}
	for i := len(d.steps) - 1; i >= 0; i-- {
		if err := fn(d.steps[i]); err != nil {
			return err
		}
	}
	return nil
}

// treeReader returns the object store trees are read from: a second
// handle on the repository, so that trees are read while another
// goroutine reads commits. Without one (a linked work tree) it reads the
// first-parent chain up front and returns it, and trees come from the
// one handle after that.
func (r *Repo) treeReader(ctx context.Context, head, since plumbing.Hash) (storer.EncodedObjectStorer, []*object.Commit, func(), error) {
	if second, err := r.secondHandle(); err == nil && second != nil {
		closeIt := func() {
			if c, ok := second.Storer.(interface{ Close() error }); ok {
				c.Close()
			}
		}
		return second.Storer, nil, closeIt, nil
	}
	chain, found, err := r.firstParents(ctx, head, since)
	if err != nil {
		return nil, nil, nil, err
	}
	if !found {
		return nil, nil, nil, ErrRewritten
	}
	if chain == nil {
		chain = []*object.Commit{}
	}
	return r.git.Storer, chain, func() {}, nil
}

// walked is a commit of the chain with the hash of its requests/ tree.
type walked struct {
	commit   *object.Commit
	requests plumbing.Hash
}

// sendFirstParents sends head's first-parent chain, newest first, down to
// since (exclusive), or the chain read up front, each commit with its
// requests/ tree hash. found reports whether since was met.
func (r *Repo) sendFirstParents(ctx context.Context, head, since plumbing.Hash, chain []*object.Commit, out chan<- walked) (bool, error) {
	send := func(c *object.Commit) error {
		t, err := requestsTreeOf(r, r.git.Storer, c.TreeHash)
		if err != nil {
			return err
		}
		select {
		case out <- walked{c, t}:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if chain != nil {
		for _, c := range chain {
			if err := send(c); err != nil {
				return false, err
			}
		}
		return true, nil
	}
	for h := head; !h.IsZero(); {
		if h == since {
			return true, nil
		}
		c, err := object.GetCommit(r.git.Storer, h)
		if err != nil {
			return false, r.fail("read commit "+h.String(), fmt.Errorf("%w (is the repository corrupt or shallow?)", err), false)
		}
		if err := send(c); err != nil {
			return false, err
		}
		h = plumbing.ZeroHash
		if len(c.ParentHashes) > 0 {
			h = c.ParentHashes[0]
		}
	}
	return false, nil
}

// secondHandle opens the repository again, for reading in parallel.
func (r *Repo) secondHandle() (*git.Repository, error) {
	if r.gitDir == "" {
		return nil, nil
	}
	g, _, err := openLocal(r.gitDir)
	return g, err
}

// differ compares trees, keeping the trees it read for one more step: the
// older side of one diff is the newer side of the next.
type differ struct {
	r        *Repo
	s        storer.EncodedObjectStorer
	old, cur map[plumbing.Hash]map[string]object.TreeEntry

	// Commits arrive newest first; a commit's changes are known once its
	// parent's requests/ tree is.
	newer     *object.Commit
	newerTree plumbing.Hash
	steps     []Step // newest first
}

// next takes the next older commit of the chain.
func (d *differ) next(w walked) error {
	if err := d.step(w.requests); err != nil {
		return err
	}
	d.newer, d.newerTree = w.commit, w.requests
	return nil
}

// last diffs the oldest commit walked against since (zero: nothing).
func (d *differ) last(since plumbing.Hash) error {
	base := plumbing.ZeroHash
	if !since.IsZero() {
		c, err := object.GetCommit(d.s, since)
		if err != nil {
			return d.r.fail("read commit "+since.String(), err, false)
		}
		if base, err = requestsTreeOf(d.r, d.s, c.TreeHash); err != nil {
			return err
		}
	}
	return d.step(base)
}

// step records what d.newer changed, given its parent's requests/ tree.
func (d *differ) step(olderTree plumbing.Hash) error {
	if d.newer == nil || olderTree == d.newerTree {
		return nil
	}
	var changes []Change
	if err := d.diff(olderTree, d.newerTree, gitgrant.RequestsDir, &changes); err != nil {
		return err
	}
	d.rotate()
	if len(changes) > 0 {
		sort.SliceStable(changes, func(i, j int) bool { return changes[i].Path < changes[j].Path })
		d.steps = append(d.steps, Step{Commit: commitOf(d.newer), Changes: changes})
	}
	return nil
}

func (d *differ) rotate() {
	d.old, d.cur = d.cur, make(map[plumbing.Hash]map[string]object.TreeEntry, len(d.cur))
}

// requestsTreeOf returns the hash of requests/ in a root tree, zero when
// absent or not a directory.
func requestsTreeOf(r *Repo, s storer.EncodedObjectStorer, root plumbing.Hash) (plumbing.Hash, error) {
	t, err := object.GetTree(s, root)
	if err != nil {
		return plumbing.ZeroHash, r.fail("read tree "+root.String(), fmt.Errorf("%w (is the repository corrupt?)", err), false)
	}
	i := sort.Search(len(t.Entries), func(i int) bool { return t.Entries[i].Name >= gitgrant.RequestsDir })
	if i < len(t.Entries) && t.Entries[i].Name == gitgrant.RequestsDir && t.Entries[i].Mode == filemode.Dir {
		return t.Entries[i].Hash, nil
	}
	return plumbing.ZeroHash, nil
}

func (d *differ) entries(h plumbing.Hash, dir string) (map[string]object.TreeEntry, error) {
	if h.IsZero() {
		return nil, nil
	}
	if m, ok := d.cur[h]; ok {
		return m, nil
	}
	m, ok := d.old[h]
	if !ok {
		t, err := object.GetTree(d.s, h)
		if err != nil {
			return nil, d.r.fail("read tree "+dir, err, false)
		}
		m = make(map[string]object.TreeEntry, len(t.Entries))
		for _, e := range t.Entries {
			m[e.Name] = e
		}
	}
	d.cur[h] = m
	return m, nil
}

// diff appends the file changes between trees a and b (either may be
// zero: empty), descending only into subtrees whose hashes differ.
func (d *differ) diff(a, b plumbing.Hash, dir string, out *[]Change) error {
	if a == b {
		return nil
	}
	ea, err := d.entries(a, dir)
	if err != nil {
		return err
	}
	eb, err := d.entries(b, dir)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(ea)+len(eb))
	for n := range ea {
		names = append(names, n)
	}
	for n := range eb {
		if _, ok := ea[n]; !ok {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		x, inA := ea[n]
		y, inB := eb[n]
		if inA && inB && x.Hash == y.Hash && x.Mode == y.Mode {
			continue
		}
		p := path.Join(dir, n)
		aDir, bDir := inA && x.Mode == filemode.Dir, inB && y.Mode == filemode.Dir
		if aDir || bDir {
			ah, bh := plumbing.ZeroHash, plumbing.ZeroHash
			if aDir {
				ah, inA = x.Hash, false
			}
			if bDir {
				bh, inB = y.Hash, false
			}
			if err := d.diff(ah, bh, p, out); err != nil {
				return err
			}
		}
		switch {
		case inA && inB:
			*out = append(*out, Change{Path: p, Kind: Modified, From: x.Hash, To: y.Hash, FromMode: x.Mode, ToMode: y.Mode})
		case inA:
			*out = append(*out, Change{Path: p, Kind: Deleted, From: x.Hash, FromMode: x.Mode})
		case inB:
			*out = append(*out, Change{Path: p, Kind: Added, To: y.Hash, ToMode: y.Mode})
		}
	}
	return nil
}

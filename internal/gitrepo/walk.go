package gitrepo

import (
	"context"
	"fmt"
	"slices"
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
// Objects are read with objectReader, straight from the memory-mapped
// packs. Reading commits and reading trees overlap: one goroutine follows
// the first parents, another finds each commit's requests/ tree and a
// third, each with its own reader (and its own handle on go-git's storage
// for objects in no mapped pack), diffs the trees.
func (r *Repo) WalkRequests(ctx context.Context, head, since plumbing.Hash, fn func(Step) error) error {
	steps, err := r.RequestSteps(ctx, head, since)
	if err != nil {
		return err
	}
	for _, s := range steps {
		if err := fn(s); err != nil {
			return err
		}
	}
	return nil
}

// RequestSteps is WalkRequests' steps as one slice, oldest first, for a
// caller that keeps them all (the audit): no step is copied.
func (r *Repo) RequestSteps(ctx context.Context, head, since plumbing.Hash) ([]Step, error) {
	trees, chain, closeTrees, err := r.treeReader(ctx, head, since)
	if err != nil {
		return nil, err
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
	d := &differ{r: r, s: r.objects(trees), old: map[plumbing.Hash][]byte{}, cur: map[plumbing.Hash][]byte{}}
	for w := range commits {
		if err := d.next(w); err != nil {
			cancel()
			for range commits { // let the walker finish
			}
			<-done
			return nil, err
		}
	}
	res := <-done
	switch {
	case res.err != nil:
		return nil, res.err
	case !res.found && !since.IsZero():
		return nil, ErrRewritten
	}
	if err := d.last(since); err != nil {
		return nil, err
	}
	slices.Reverse(d.steps)
	return d.steps, nil
}

// treeReader returns the object store objects missing from the mapped
// packs are read from by the tree goroutine: a second handle on the
// repository, so that trees are read while another goroutine reads
// commits. Without one (a linked work tree) it reads the first-parent
// chain up front and returns it, and trees come from the one handle after
// that.
func (r *Repo) treeReader(ctx context.Context, head, since plumbing.Hash) (storer.EncodedObjectStorer, []rawCommit, func(), error) {
	if second, err := r.secondHandle(); err == nil && second != nil {
		return second.Storer, nil, func() { closeHandle(second) }, nil
	}
	cs, found, err := r.firstParents(ctx, head, since)
	if err != nil {
		return nil, nil, nil, err
	}
	if !found {
		return nil, nil, nil, ErrRewritten
	}
	chain := make([]rawCommit, len(cs))
	for i, c := range cs {
		chain[i] = rawCommit{hash: c.Hash, tree: c.TreeHash, full: c}
	}
	return r.git.Storer, chain, func() {}, nil
}

// rawCommit is a commit as read from the pack: its hash, tree and
// encoding, decoded in full (commitOf) only when it changed requests/.
type rawCommit struct {
	hash, tree plumbing.Hash
	data       []byte
	full       *object.Commit // when read through go-git
}

func (c rawCommit) decode() (Commit, error) {
	if c.full != nil {
		return commitOf(c.full), nil
	}
	return parseCommit(c.hash, c.data)
}

// walked is a commit of the chain with the hash of its requests/ tree.
type walked struct {
	commit   rawCommit
	requests plumbing.Hash
}

// sendFirstParents sends head's first-parent chain, newest first, down to
// since (exclusive), or the chain read up front, each commit with its
// requests/ tree hash. found reports whether since was met. On a walk from
// the root with a handle of its own on the repository (chain is nil),
// finding each commit's requests/ tree in its root tree is a stage of its
// own, in a goroutine beside the one that reads the commits: on a long
// history the two cost about the same.
func (r *Repo) sendFirstParents(ctx context.Context, head, since plumbing.Hash, chain []rawCommit, out chan<- walked) (bool, error) {
	resolve := func(or *objectReader, c rawCommit) error {
		t, err := requestsTreeOf(r, or, c.tree)
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
	or := r.objects(r.git.Storer)
	if chain != nil {
		for _, c := range chain {
			if err := resolve(or, c); err != nil {
				return false, err
			}
		}
		return true, nil
	}
	var roots *git.Repository
	if since.IsZero() { // from the root; a pass's incremental walk is a few commits, not worth a third handle
		roots, _ = r.secondHandle()
	}
	if roots == nil {
		return r.readFirstParents(ctx, head, since, func(c rawCommit) error { return resolve(or, c) })
	}
	defer closeHandle(roots)
	stageCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	raw := make(chan rawCommit, 4096)
	rootsDone := make(chan error, 1)
	go func() {
		ror := r.objects(roots.Storer)
		var err error
		for c := range raw {
			if err == nil {
				if err = resolve(ror, c); err != nil {
					cancel() // stop reading commits
				}
			}
		}
		rootsDone <- err
	}()
	send := func(c rawCommit) error {
		select {
		case raw <- c:
			return nil
		case <-stageCtx.Done():
			return stageCtx.Err()
		}
	}
	found, err := r.readFirstParents(stageCtx, head, since, send)
	close(raw)
	if rerr := <-rootsDone; rerr != nil {
		return false, rerr
	}
	return found, err
}

// readFirstParents reads the chain from head down to since and passes
// each commit to send, newest first.
func (r *Repo) readFirstParents(ctx context.Context, head, since plumbing.Hash, send func(rawCommit) error) (bool, error) {
	or := r.objects(r.git.Storer)
	for h := head; !h.IsZero(); {
		if h == since {
			return true, nil
		}
		if err := ctx.Err(); err != nil {
			return false, err
		}
		data, err := or.readType(h, plumbing.CommitObject)
		if err != nil {
			return false, r.fail("read commit "+h.String(), fmt.Errorf("%w (is the repository corrupt or shallow?)", err), false)
		}
		tree, parent, err := commitTreeAndParent(data)
		if err != nil {
			return false, r.fail("read commit "+h.String(), err, false)
		}
		if err := send(rawCommit{hash: h, tree: tree, data: data}); err != nil {
			return false, err
		}
		h = parent
	}
	return false, nil
}

func closeHandle(g *git.Repository) {
	if c, ok := g.Storer.(interface{ Close() error }); ok {
		c.Close()
	}
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
	s        *objectReader
	old, cur map[plumbing.Hash][]byte

	// Commits arrive newest first; a commit's changes are known once its
	// parent's requests/ tree is.
	newer     *rawCommit
	newerTree plumbing.Hash
	steps     []Step // newest first
}

// next takes the next older commit of the chain.
func (d *differ) next(w walked) error {
	if err := d.step(w.requests); err != nil {
		return err
	}
	d.newer, d.newerTree = &w.commit, w.requests
	return nil
}

// last diffs the oldest commit walked against since (zero: nothing).
func (d *differ) last(since plumbing.Hash) error {
	base := plumbing.ZeroHash
	if !since.IsZero() {
		data, err := d.s.readType(since, plumbing.CommitObject)
		if err != nil {
			return d.r.fail("read commit "+since.String(), err, false)
		}
		tree, _, err := commitTreeAndParent(data)
		if err != nil {
			return d.r.fail("read commit "+since.String(), err, false)
		}
		if base, err = requestsTreeOf(d.r, d.s, tree); err != nil {
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
		c, err := d.newer.decode()
		if err != nil {
			return d.r.fail("read commit "+d.newer.hash.String(), err, false)
		}
		sort.SliceStable(changes, func(i, j int) bool { return changes[i].Path < changes[j].Path })
		d.steps = append(d.steps, Step{Commit: c, Changes: changes})
	}
	return nil
}

func (d *differ) rotate() {
	d.old, d.cur = d.cur, make(map[plumbing.Hash][]byte, len(d.cur))
}

// requestsTreeOf returns the hash of requests/ in a root tree, zero when
// absent or not a directory.
func requestsTreeOf(r *Repo, or *objectReader, root plumbing.Hash) (plumbing.Hash, error) {
	data, err := or.readType(root, plumbing.TreeObject)
	if err != nil {
		return plumbing.ZeroHash, r.fail("read tree "+root.String(), fmt.Errorf("%w (is the repository corrupt?)", err), false)
	}
	var found plumbing.Hash
	for len(data) > 0 { // every entry: in a malformed tree the last one counts, as in go-git
		var e rawEntry
		if e, data, err = nextRawEntry(data); err != nil {
			return plumbing.ZeroHash, r.fail("read tree "+root.String(), err, false)
		}
		if string(e.name) == gitgrant.RequestsDir {
			found = plumbing.ZeroHash
			if e.mode == filemode.Dir {
				found = e.id()
			}
		}
	}
	return found, nil
}

// tree returns the content of tree h (nil for zero), kept for this step
// and the next.
func (d *differ) tree(h plumbing.Hash, dir string) ([]byte, error) {
	if h.IsZero() {
		return nil, nil
	}
	if data, ok := d.cur[h]; ok {
		return data, nil
	}
	data, ok := d.old[h]
	if !ok {
		var err error
		if data, err = d.s.readType(h, plumbing.TreeObject); err != nil {
			return nil, d.r.fail("read tree "+dir, err, false)
		}
	}
	d.cur[h] = data
	return data, nil
}

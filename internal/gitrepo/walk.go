package gitrepo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path"
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

// diff appends the file changes between trees a and b (either may be
// zero: empty), descending only into subtrees whose hashes differ. It
// walks the two trees' encodings side by side in git's own order, as git
// does, and makes a string only of what changed: a folder of thousands of
// requests is read, not copied. A tree git would not write (out of order,
// a name twice) is compared by diffParsed instead.
func (d *differ) diff(a, b plumbing.Hash, dir string, out *[]Change) error {
	if a == b {
		return nil
	}
	ta, err := d.tree(a, dir)
	if err != nil {
		return err
	}
	tb, err := d.tree(b, dir)
	if err != nil {
		return err
	}
	mark := len(*out)
	err = d.diffRaw(ta, tb, dir, out)
	if errors.Is(err, errUnordered) {
		*out = (*out)[:mark]
		return d.diffParsed(ta, tb, dir, out)
	}
	return err
}

var errUnordered = errors.New("tree entries out of order")

// treeCursor walks one tree's encoding, an entry at a time, checking
// that the entries come in git's order.
type treeCursor struct {
	rest      []byte
	cur, prev rawEntry
	held      bool // cur is read and not yet compared
	// files are the names of files a folder read later could still
	// repeat ("x" before "x-a" before "x/"), each a prefix of the next.
	files [][]byte
}

// fill reads the next entry into cur unless one is held or none is left.
func (c *treeCursor) fill() error {
	if c.held || len(c.rest) == 0 {
		return nil
	}
	e, rest, err := nextRawEntry(c.rest)
	if err != nil {
		return err
	}
	if c.prev.name != nil && gitCompare(c.prev, e) >= 0 {
		return errUnordered
	}
	for n := len(c.files); n > 0 && !mayRepeat(c.files[n-1], e.name); n-- {
		c.files = c.files[:n-1]
	}
	if e.mode == filemode.Dir && len(c.files) > 0 && bytes.Equal(c.files[len(c.files)-1], e.name) {
		return errUnordered // a file and a folder of one name: a name twice
	}
	if e.mode != filemode.Dir {
		c.files = append(c.files, e.name)
	}
	c.rest, c.cur, c.prev, c.held = rest, e, e, true
	return nil
}

// mayRepeat reports whether a folder named like file could still follow
// name in git's order: name is file, or file and then a character that
// sorts before "/".
func mayRepeat(file, name []byte) bool {
	return bytes.HasPrefix(name, file) && (len(name) == len(file) || name[len(file)] < '/')
}

func (d *differ) diffRaw(ta, tb []byte, dir string, out *[]Change) error {
	a, b := treeCursor{rest: ta}, treeCursor{rest: tb}
	for {
		err := a.fill()
		if err == nil {
			err = b.fill()
		}
		if errors.Is(err, errUnordered) {
			return err
		} else if err != nil {
			return d.r.fail("read tree "+dir, err, false)
		}
		x, y, inA, inB := a.cur, b.cur, a.held, b.held
		if !inA && !inB {
			return nil
		}
		c := 0
		switch {
		case !inB:
			c = -1
		case !inA:
			c = 1
		default:
			c = gitCompare(x, y)
		}
		switch {
		case c == 0: // the same name, both folders or both not
			a.held, b.held = false, false
			if x.mode == y.mode && bytes.Equal(x.hash, y.hash) {
				continue
			}
			p := path.Join(dir, string(x.name))
			if x.mode == filemode.Dir {
				if err := d.diff(x.id(), y.id(), p, out); err != nil {
					return err
				}
				continue
			}
			*out = append(*out, Change{Path: p, Kind: Modified, From: x.id(), To: y.id(), FromMode: x.mode, ToMode: y.mode})
		case c < 0:
			a.held = false
			if err := d.oneSided(x, dir, true, out); err != nil {
				return err
			}
		default:
			b.held = false
			if err := d.oneSided(y, dir, false, out); err != nil {
				return err
			}
		}
	}
}

// oneSided records an entry only one tree has: deleted from a, or added
// in b; a folder, file by file.
func (d *differ) oneSided(e rawEntry, dir string, deleted bool, out *[]Change) error {
	p := path.Join(dir, string(e.name))
	switch {
	case e.mode == filemode.Dir && deleted:
		return d.diff(e.id(), plumbing.ZeroHash, p, out)
	case e.mode == filemode.Dir:
		return d.diff(plumbing.ZeroHash, e.id(), p, out)
	case deleted:
		*out = append(*out, Change{Path: p, Kind: Deleted, From: e.id(), FromMode: e.mode})
	default:
		*out = append(*out, Change{Path: p, Kind: Added, To: e.id(), ToMode: e.mode})
	}
	return nil
}

// diffParsed compares two trees entry by entry after sorting them by name
// (parseTree): the way for trees git would not write.
func (d *differ) diffParsed(ta, tb []byte, dir string, out *[]Change) error {
	ea, err := parseTree(ta)
	if err != nil {
		return d.r.fail("read tree "+dir, err, false)
	}
	eb, err := parseTree(tb)
	if err != nil {
		return d.r.fail("read tree "+dir, err, false)
	}
	for i, j := 0, 0; i < len(ea) || j < len(eb); {
		var x, y treeEntry
		inA, inB := false, false
		switch {
		case j >= len(eb) || i < len(ea) && ea[i].name < eb[j].name:
			x, inA = ea[i], true
			i++
		case i >= len(ea) || eb[j].name < ea[i].name:
			y, inB = eb[j], true
			j++
		default:
			x, y, inA, inB = ea[i], eb[j], true, true
			i, j = i+1, j+1
		}
		if inA && inB && x.hash == y.hash && x.mode == y.mode {
			continue
		}
		n := x.name
		if !inA {
			n = y.name
		}
		p := path.Join(dir, n)
		aDir, bDir := inA && x.mode == filemode.Dir, inB && y.mode == filemode.Dir
		if aDir || bDir {
			ah, bh := plumbing.ZeroHash, plumbing.ZeroHash
			if aDir {
				ah, inA = x.hash, false
			}
			if bDir {
				bh, inB = y.hash, false
			}
			if err := d.diff(ah, bh, p, out); err != nil {
				return err
			}
		}
		switch {
		case inA && inB:
			*out = append(*out, Change{Path: p, Kind: Modified, From: x.hash, To: y.hash, FromMode: x.mode, ToMode: y.mode})
		case inA:
			*out = append(*out, Change{Path: p, Kind: Deleted, From: x.hash, FromMode: x.mode})
		case inB:
			*out = append(*out, Change{Path: p, Kind: Added, To: y.hash, ToMode: y.mode})
		}
	}
	return nil
}

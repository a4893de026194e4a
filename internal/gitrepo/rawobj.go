package gitrepo

import (
	"bytes"
	"cmp"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// treeEntry is one entry of a tree object.
type treeEntry struct {
	name string
	mode filemode.FileMode
	hash plumbing.Hash
}

var errBadTree = errors.New("malformed tree object")

// scanTree calls fn for every entry of a tree object's content, in the
// order stored, until fn returns false. It allocates only the names.
func scanTree(data []byte, fn func(treeEntry) bool) error {
	for len(data) > 0 {
		var e rawEntry
		var err error
		if e, data, err = nextRawEntry(data); err != nil {
			return err
		}
		if !fn(treeEntry{name: string(e.name), mode: e.mode, hash: e.id()}) {
			return nil
		}
	}
	return nil
}

// rawEntry is a tree entry as encoded: name and hash point into the
// tree's content.
type rawEntry struct {
	name []byte
	mode filemode.FileMode
	hash []byte
}

func (e rawEntry) id() (h plumbing.Hash) {
	copy(h[:], e.hash)
	return h
}

// nextRawEntry decodes the first entry of a tree's content: a mode of
// octal digits, a space, a name, a NUL and 20 bytes of hash.
func nextRawEntry(data []byte) (rawEntry, []byte, error) {
	sp := bytes.IndexByte(data, ' ')
	if sp <= 0 || sp > 7 {
		return rawEntry{}, nil, errBadTree
	}
	var mode uint32
	for _, c := range data[:sp] {
		if c < '0' || c > '7' {
			return rawEntry{}, nil, errBadTree
		}
		mode = mode<<3 | uint32(c-'0')
	}
	data = data[sp+1:]
	nul := bytes.IndexByte(data, 0)
	if nul <= 0 || nul+21 > len(data) {
		return rawEntry{}, nil, errBadTree
	}
	return rawEntry{name: data[:nul:nul], mode: filemode.FileMode(mode), hash: data[nul+1 : nul+21 : nul+21]}, data[nul+21:], nil
}

// gitCompare orders entries as git sorts a tree: by name, a folder's name
// as if it ended in "/" (git's base_name_compare).
func gitCompare(a, b rawEntry) int {
	n := min(len(a.name), len(b.name))
	if c := bytes.Compare(a.name[:n], b.name[:n]); c != 0 {
		return c
	}
	next := func(e rawEntry) byte {
		switch {
		case len(e.name) > n:
			return e.name[n]
		case e.mode == filemode.Dir:
			return '/'
		}
		return 0
	}
	return cmp.Compare(next(a), next(b))
}

// parseTree returns a tree's entries sorted by name. git stores them in
// its own order (a folder sorts as if its name ended in "/"); a malformed
// tree may hold a name twice, and the last one counts, as when go-git's
// entries are read into a map.
func parseTree(data []byte) ([]treeEntry, error) {
	es := make([]treeEntry, 0, bytes.Count(data, []byte{0}))
	sorted := true
	err := scanTree(data, func(e treeEntry) bool {
		if n := len(es); n > 0 && es[n-1].name >= e.name {
			sorted = false
		}
		es = append(es, e)
		return true
	})
	if err != nil || sorted {
		return es, err
	}
	sort.SliceStable(es, func(i, j int) bool { return es[i].name < es[j].name })
	out := es[:0]
	for i, e := range es {
		if i+1 < len(es) && es[i+1].name == e.name {
			continue
		}
		out = append(out, e)
	}
	return out, nil
}

// commitTreeAndParent reads a commit's tree and first parent (zero for a
// root commit) from the headers go-git reads them from: the first "tree"
// line and the first "parent" line. Anything unusual goes through go-git.
func commitTreeAndParent(raw []byte) (tree, parent plumbing.Hash, err error) {
	data := raw
	hexLine := func(prefix string) (plumbing.Hash, bool) {
		var h plumbing.Hash
		if len(data) < len(prefix)+41 || string(data[:len(prefix)]) != prefix || data[len(prefix)+40] != '\n' {
			return h, false
		}
		if _, err := hex.Decode(h[:], data[len(prefix):len(prefix)+40]); err != nil {
			return h, false
		}
		data = data[len(prefix)+41:]
		return h, true
	}
	var ok bool
	if tree, ok = hexLine("tree "); ok {
		if bytes.HasPrefix(data, []byte("parent ")) {
			parent, ok = hexLine("parent ")
		}
		if ok {
			return tree, parent, nil
		}
	}
	c, err := decodeCommit(plumbing.ZeroHash, raw)
	if err != nil {
		return plumbing.ZeroHash, plumbing.ZeroHash, err
	}
	if len(c.ParentHashes) > 0 {
		parent = c.ParentHashes[0]
	}
	return c.TreeHash, parent, nil
}

// parseCommit decodes a commit's content: git's usual layout directly
// (parseCanonicalCommit), anything else with go-git.
func parseCommit(h plumbing.Hash, data []byte) (Commit, error) {
	if c, ok := parseCanonicalCommit(h, data); ok {
		return c, nil
	}
	c, err := decodeCommit(h, data)
	if err != nil {
		return Commit{}, err
	}
	return commitOf(c), nil
}

func decodeCommit(h plumbing.Hash, data []byte) (*object.Commit, error) {
	o := &plumbing.MemoryObject{}
	o.SetType(plumbing.CommitObject)
	if _, err := o.Write(data); err != nil {
		return nil, err
	}
	c := &object.Commit{}
	if err := c.Decode(hashedObject{o, h}); err != nil {
		return nil, fmt.Errorf("decoding commit %s: %w", h, err)
	}
	return c, nil
}

// hashedObject is an object whose hash is known: go-git need not compute it.
type hashedObject struct {
	*plumbing.MemoryObject
	h plumbing.Hash
}

func (o hashedObject) Hash() plumbing.Hash { return o.h }

// parseCanonicalCommit decodes a commit laid out as git writes one: a tree
// line, parent lines, an author and a committer line, then only headers
// gitgrant does not read (gpgsig, mergetag, encoding, each with its
// continuation lines), a blank line and the message. It gives what go-git
// gives for the same bytes (FuzzParseCommit holds it to that) without
// go-git's copy, reader and buffer per commit, which were a fifth of a cold
// audit's walk. ok is false for anything else.
func parseCanonicalCommit(h plumbing.Hash, data []byte) (c Commit, ok bool) {
	line := func() ([]byte, bool) {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			return nil, false
		}
		l := data[:i]
		data = data[i+1:]
		return l, true
	}
	hexOf := func(l []byte, prefix string) (plumbing.Hash, bool) {
		var x plumbing.Hash
		if len(l) != len(prefix)+40 || string(l[:len(prefix)]) != prefix {
			return x, false
		}
		_, err := hex.Decode(x[:], l[len(prefix):])
		return x, err == nil
	}
	l, ok := line()
	if _, isTree := hexOf(l, "tree "); !ok || !isTree {
		return Commit{}, false
	}
	c.Hash = h
	for bytes.HasPrefix(data, []byte("parent ")) {
		l, _ = line()
		p, ok := hexOf(l, "parent ")
		if !ok {
			return Commit{}, false
		}
		c.Parents = append(c.Parents, p)
	}
	var author, committer object.Signature
	if l, ok = line(); !ok || !bytes.HasPrefix(l, []byte("author ")) {
		return Commit{}, false
	}
	author.Decode(l[len("author "):])
	if l, ok = line(); !ok || !bytes.HasPrefix(l, []byte("committer ")) {
		return Commit{}, false
	}
	committer.Decode(l[len("committer "):])
	for {
		if l, ok = line(); !ok {
			return Commit{}, false
		}
		if len(l) == 0 {
			break
		}
		if l[0] == ' ' { // a continuation line
			continue
		}
		key, _, _ := bytes.Cut(l, []byte(" "))
		switch string(key) {
		case "tree", "parent", "author", "committer": // out of place: go-git's rules decide
			return Commit{}, false
		}
	}
	c.Author, c.AuthorEmail, c.AuthorTime = author.Name, author.Email, author.When
	c.Committer, c.CommitterEmail, c.CommitTime = committer.Name, committer.Email, committer.When
	c.Message = string(data)
	return c, true
}

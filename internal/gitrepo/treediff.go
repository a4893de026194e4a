package gitrepo

import (
	"bytes"
	"errors"
	"path"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
)

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

package gitrepo

import (
	"bytes"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/go-git/go-git/v5/plumbing"
)

// refCache makes MainRef cheap: a pass asks for main once per request it
// verifies, and go-git resolves a reference by following every path
// component and reading the file, dozens of system calls. A loose ref
// file holding a hash is read directly (its content is the truth, however
// it was written); a ref only in packed-refs is remembered with the stat
// of packed-refs, which git and go-git replace by renaming a new file into
// place. Anything else (a symbolic ref, an unknown git directory) goes
// through go-git.
type refCache struct {
	mu     sync.Mutex
	names  []plumbing.ReferenceName // the candidates, in order
	index  int                      // the one that resolved, from packed-refs
	packed fileStamp
	hash   plumbing.Hash
}

// fileStamp is what stat says of a file; the zero value means absent.
type fileStamp struct {
	size  int64
	mtime int64
	ino   uint64
	ok    bool
}

func stampOf(path string) fileStamp {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}
	}
	return fileStamp{size: fi.Size(), mtime: fi.ModTime().UnixNano(), ino: inode(fi), ok: true}
}

// readLoose reads a loose ref file holding a hash. absent reports that
// there is no such file (the ref may be packed).
func readLoose(gitDir string, name plumbing.ReferenceName) (h plumbing.Hash, ok, absent bool) {
	data, err := os.ReadFile(filepath.Join(gitDir, filepath.FromSlash(name.String())))
	if os.IsNotExist(err) {
		return h, false, true
	}
	data = bytes.TrimRight(data, "\n")
	if err != nil || len(data) != 40 {
		return h, false, false
	}
	if _, err := hex.Decode(h[:], data); err != nil {
		return h, false, false
	}
	return h, true, false
}

// lookup resolves the first of names that exists, as go-git would, when
// it can do so without go-git.
func (c *refCache) lookup(gitDir string, names []plumbing.ReferenceName) (plumbing.Hash, bool) {
	if gitDir == "" {
		return plumbing.ZeroHash, false
	}
	packed := stampOf(filepath.Join(gitDir, "packed-refs"))
	c.mu.Lock()
	known := packed.ok && c.packed == packed && slices.Equal(c.names, names)
	index, cached := c.index, c.hash
	c.mu.Unlock()
	for i, n := range names {
		h, ok, absent := readLoose(gitDir, n)
		switch {
		case ok:
			return h, true
		case !absent:
			return plumbing.ZeroHash, false
		case !packed.ok:
			continue // no loose file, no packed-refs: no such ref
		case !known:
			return plumbing.ZeroHash, false // n may be packed
		case i == index:
			return cached, true
		}
		// i < index: go-git found n in neither place with this packed-refs.
	}
	return plumbing.ZeroHash, false
}

// remember records that names[index], with no loose file, resolved to h
// from packed-refs as stamped before it was read.
func (c *refCache) remember(gitDir string, names []plumbing.ReferenceName, index int, packed fileStamp, h plumbing.Hash) {
	if gitDir == "" || !packed.ok {
		return
	}
	if _, _, absent := readLoose(gitDir, names[index]); !absent {
		return
	}
	c.mu.Lock()
	c.names, c.index, c.packed, c.hash = slices.Clone(names), index, packed, h
	c.mu.Unlock()
}

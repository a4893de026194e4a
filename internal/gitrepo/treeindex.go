package gitrepo

import (
	"sync"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// treeIndexes remembers the entries of recently read trees by hash: a
// pass reads every request at its pull request's head and base, and
// without it each read decoded the whole requests folder again, so
// verifying n requests merged together cost n² entries. A tree's content
// never changes under its hash.
type treeIndexes struct {
	mu    sync.Mutex
	m     map[plumbing.Hash]map[string]object.TreeEntry
	order []plumbing.Hash // oldest first
}

// maxTreeIndexes bounds the trees kept: the folders of a few commits.
const maxTreeIndexes = 64

// treeEntries returns the entries of tree h by name. The map is shared:
// read it, never change it.
func (r *Repo) treeEntries(h plumbing.Hash) (map[string]object.TreeEntry, error) {
	c := &r.trees
	c.mu.Lock()
	m, ok := c.m[h]
	c.mu.Unlock()
	if ok {
		return m, nil
	}
	t, err := object.GetTree(r.git.Storer, h)
	if err != nil {
		return nil, err
	}
	m = make(map[string]object.TreeEntry, len(t.Entries))
	for _, e := range t.Entries {
		m[e.Name] = e
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[plumbing.Hash]map[string]object.TreeEntry{}
	}
	if _, ok := c.m[h]; !ok {
		if len(c.order) >= maxTreeIndexes {
			delete(c.m, c.order[0])
			c.order = c.order[1:]
		}
		c.m[h] = m
		c.order = append(c.order, h)
	}
	return m, nil
}

package approval

import (
	"context"
	"sync"
	"time"

	"github.com/gitgrant/gitgrant"
)

// Key identifies the content evidence is about. The commit is part of it:
// the same blob brought back to main later by a direct push is a new
// event and must not inherit the old approval.
type Key struct {
	Path   string `json:"path"`
	Blob   string `json:"blob"`
	Commit string `json:"commit"`
}

// CacheEntry is cached evidence. RecheckAt, when set, is when a verdict that may
// still change (GitHub had not yet linked the commit to a pull request)
// should be gathered again. Policies, with a PolicySource, names the
// policy state (commit and blobs) each commit the verdict was judged at
// had; when one has changed since, the verdict is gathered again.
type CacheEntry struct {
	Evidence     gitgrant.Evidence `json:"evidence"`
	FirstChecked time.Time         `json:"first_checked"`
	RecheckAt    time.Time         `json:"recheck_at,omitzero"`
	Policies     map[string]string `json:"policies"`
}

// Cache stores evidence; the reconciler may persist it (git notes, a
// file). Get's ok is false when nothing is stored.
type Cache interface {
	Get(ctx context.Context, k Key) (CacheEntry, bool, error)
	Put(ctx context.Context, k Key, e CacheEntry) error
}

// MemoryCache is a Cache in memory.
type MemoryCache struct {
	mu sync.Mutex
	m  map[Key]CacheEntry
}

var _ Cache = (*MemoryCache)(nil)

// Get implements Cache.
func (c *MemoryCache) Get(_ context.Context, k Key) (CacheEntry, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k]
	return e, ok, nil
}

// Put implements Cache.
func (c *MemoryCache) Put(_ context.Context, k Key, e CacheEntry) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[Key]CacheEntry{}
	}
	c.m[k] = e
	return nil
}

// Len is the number of entries.
func (c *MemoryCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

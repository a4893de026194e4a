package gitrepo

import (
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// storageCache keeps a bare repository's go-git storage open between
// uses, one use at a time. Opening a storage reads every pack index again
// (in small reads), which was most of the simulated GitHub's time; and
// go-git lists the packs once per storage, so it is opened again when the
// pack folder changed (a push wrote a pack). Loose objects and refs are
// read from disk on every use, so what another writer adds shows.
type storageCache struct {
	mu    sync.Mutex
	st    *filesystem.Storage
	packs string // the pack folder's listing when st was opened
}

// open locks the cache and returns dir's storage; release unlocks it.
func (c *storageCache) open(dir string) (st *filesystem.Storage, release func()) {
	c.mu.Lock()
	packs := packListing(dir)
	if c.st == nil || packs != c.packs {
		if c.st != nil {
			c.st.Close()
		}
		c.st = filesystem.NewStorage(osfs.New(dir), cache.NewObjectLRUDefault())
		c.packs = packs
	}
	return c.st, c.mu.Unlock
}

// packListing names the files in dir's pack folder, one a line (pack
// names hold their checksum, so a new pack is a new name).
func packListing(dir string) string {
	entries, _ := os.ReadDir(filepath.Join(dir, "objects", "pack"))
	var b strings.Builder
	for _, e := range entries {
		b.WriteString(e.Name())
		b.WriteByte('\n')
	}
	return b.String()
}

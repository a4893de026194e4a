package gitrepo

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/go-git/go-billy/v5"
	"github.com/go-git/go-billy/v5/osfs"
)

// maxPackInMemory bounds the pack files packFS holds in memory; larger
// ones are read from disk as go-git does.
const maxPackInMemory = 1 << 30

// packFS serves pack files from memory maps. go-git seeks and reads a
// pack file for every object, two or more system calls each; walking
// 100,000 commits spends more time in those calls than in decoding. Pack
// files never change once written (their name is their checksum), so
// mapping each once, read-only, for the life of the process is safe; the
// kernel pages in only what is read.
type packFS struct {
	billy.Filesystem
	root  string // the directory Filesystem is rooted at
	mu    sync.Mutex
	packs map[string][]byte
}

func newPackFS(root string) *packFS {
	return &packFS{Filesystem: osfs.New(root), root: root, packs: map[string][]byte{}}
}

func (p *packFS) Open(name string) (billy.File, error) {
	return p.OpenFile(name, os.O_RDONLY, 0)
}

func (p *packFS) OpenFile(name string, flag int, perm os.FileMode) (billy.File, error) {
	f, err := p.Filesystem.OpenFile(name, flag, perm)
	if err != nil || flag != os.O_RDONLY || !strings.HasSuffix(name, ".pack") {
		return f, err
	}
	p.mu.Lock()
	data, ok := p.packs[name]
	p.mu.Unlock()
	if !ok {
		info, err := p.Filesystem.Stat(name)
		if err != nil || info.Size() > maxPackInMemory || info.Size() == 0 {
			return f, nil
		}
		if data, err = mapFile(filepath.Join(p.root, filepath.FromSlash(name)), info.Size()); err != nil || data == nil {
			return f, nil
		}
		p.mu.Lock()
		p.packs[name] = data
		p.mu.Unlock()
	}
	return &memFile{File: f, Reader: bytes.NewReader(data)}, nil
}

// memFile reads from memory and keeps the real file for everything else.
type memFile struct {
	billy.File
	*bytes.Reader
}

func (m *memFile) Read(b []byte) (int, error)                { return m.Reader.Read(b) }
func (m *memFile) ReadAt(b []byte, off int64) (int, error)   { return m.Reader.ReadAt(b, off) }
func (m *memFile) Seek(off int64, whence int) (int64, error) { return m.Reader.Seek(off, whence) }
func (m *memFile) Close() error                              { return m.File.Close() }
func (m *memFile) Write(b []byte) (int, error)               { return m.File.Write(b) }

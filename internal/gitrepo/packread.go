package gitrepo

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// mappedPack is one pack file and its index (version 2), both
// memory-mapped, read-only and shared by every objectReader.
type mappedPack struct {
	data []byte
	idx  []byte
	n    int // objects

	// fan16 narrows a lookup by the hash's first two bytes, as the index's
	// own fan-out table does by the first: in a pack of half a million
	// objects a search then stays within a cache line or two instead of
	// wandering the whole table. Built on first use, for large packs only.
	fan16Once sync.Once
	fan16     []uint32
}

// fan16Min is the object count from which a pack gets a fan16 table.
const fan16Min = 1 << 16

func (p *mappedPack) buildFan16() {
	names := p.idx[idxHeader : idxHeader+20*p.n]
	fan := make([]uint32, 1<<16+1)
	for i := range p.n { // names are sorted: count, then sum
		fan[int(names[20*i])<<8|int(names[20*i+1])+1]++
	}
	for i := 1; i < len(fan); i++ {
		fan[i] += fan[i-1]
	}
	p.fan16 = fan
}

const idxHeader = 8 + 256*4

// offset looks h up in the index: a binary search among the names that
// share its first byte (the fan-out table).
func (p *mappedPack) offset(h plumbing.Hash) (int64, bool) {
	return p.search(h, p.n >= fan16Min)
}

// search looks h up among the names its first byte (or, with fan16, its
// first two bytes) allows.
func (p *mappedPack) search(h plumbing.Hash, fan16 bool) (int64, bool) {
	var lo, hi int
	if fan16 {
		p.fan16Once.Do(p.buildFan16)
		k := int(h[0])<<8 | int(h[1])
		lo, hi = int(p.fan16[k]), int(p.fan16[k+1])
	} else {
		if h[0] > 0 {
			lo = int(binary.BigEndian.Uint32(p.idx[8+4*(int(h[0])-1):]))
		}
		hi = int(binary.BigEndian.Uint32(p.idx[8+4*int(h[0]):]))
	}
	names := p.idx[idxHeader : idxHeader+20*p.n]
	want := binary.BigEndian.Uint64(h[:8])
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		name := names[20*m : 20*m+20]
		c := 0
		// The first 8 bytes decide almost every comparison.
		if got := binary.BigEndian.Uint64(name); got < want {
			c = -1
		} else if got > want {
			c = 1
		} else {
			c = bytes.Compare(name[8:], h[8:])
		}
		switch {
		case c == 0:
			offs := idxHeader + 24*p.n
			o := binary.BigEndian.Uint32(p.idx[offs+4*m:])
			if o&0x80000000 == 0 {
				return int64(o), true
			}
			large := offs + 4*p.n + 8*int(o&0x7fffffff)
			if large+8 > len(p.idx)-40 {
				return 0, false
			}
			return int64(binary.BigEndian.Uint64(p.idx[large:])), true
		case c < 0:
			lo = m + 1
		default:
			hi = m
		}
	}
	return 0, false
}

// packSet is the packs of a repository, mapped when first asked for and
// again when the pack directory changed (a fetch wrote a pack) and an
// object was not found.
type packSet struct {
	mu     sync.Mutex
	loaded bool
	closed bool
	dir    fileStamp
	byName map[string]*mappedPack
	packs  []*mappedPack
}

func (ps *packSet) load(gitDir string) []*mappedPack {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if !ps.loaded {
		ps.loaded = true
		ps.scan(gitDir)
	}
	return ps.packs
}

// refresh maps the packs written since the last scan, if any.
func (ps *packSet) refresh(gitDir string) []*mappedPack {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.loaded && !ps.closed && stampOf(filepath.Join(gitDir, "objects", "pack")) != ps.dir {
		ps.scan(gitDir)
	}
	return ps.packs
}

func (ps *packSet) scan(gitDir string) {
	if gitDir == "" || ps.closed {
		return
	}
	dir := filepath.Join(gitDir, "objects", "pack")
	ps.dir = stampOf(dir)
	if ps.byName == nil {
		ps.byName = map[string]*mappedPack{}
	}
	idxs, _ := filepath.Glob(filepath.Join(dir, "pack-*.idx"))
	var packs []*mappedPack
	for _, name := range idxs {
		p, ok := ps.byName[name]
		if !ok {
			var err error
			if p, err = mapPack(name); err != nil {
				continue
			}
			ps.byName[name] = p
		}
		packs = append(packs, p)
	}
	ps.packs = packs
}

// close unmaps the packs; no objectReader may be in use.
func (ps *packSet) close() {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.loaded, ps.closed = true, true
	for _, p := range ps.byName {
		unmapFile(p.data)
		unmapFile(p.idx)
	}
	ps.packs, ps.byName = nil, nil
}

// mapPack maps a pack and its index after checking the index's layout
// (version 2, a monotonic fan-out table, the size it implies).
func mapPack(idxName string) (*mappedPack, error) {
	info, err := os.Stat(idxName)
	if err != nil || info.Size() < idxHeader+40 {
		return nil, errors.New("no index")
	}
	idx, err := mapFile(idxName, info.Size())
	if err != nil || idx == nil {
		return nil, errors.New("index not mapped")
	}
	p, err := packFor(idxName, idx)
	if err != nil {
		unmapFile(idx)
		return nil, err
	}
	return p, nil
}

func packFor(idxName string, idx []byte) (*mappedPack, error) {
	if !bytes.HasPrefix(idx, []byte{0xff, 't', 'O', 'c', 0, 0, 0, 2}) {
		return nil, errors.New("not a version 2 index")
	}
	prev := uint32(0)
	for i := range 256 {
		v := binary.BigEndian.Uint32(idx[8+4*i:])
		if v < prev {
			return nil, errors.New("corrupt index")
		}
		prev = v
	}
	n := int(prev)
	if int64(idxHeader)+28*int64(n)+40 > int64(len(idx)) {
		return nil, errors.New("corrupt index")
	}
	packName := strings.TrimSuffix(idxName, ".idx") + ".pack"
	info, err := os.Stat(packName)
	if err != nil || info.Size() > maxPackInMemory || info.Size() < 32 {
		return nil, errors.New("pack not mapped")
	}
	data, err := mapFile(packName, info.Size())
	if err != nil || data == nil {
		return nil, errors.New("pack not mapped")
	}
	if !bytes.HasPrefix(data, []byte("PACK")) || !bytes.Equal(data[len(data)-20:], idx[len(idx)-40:len(idx)-20]) {
		unmapFile(data)
		return nil, errors.New("not the index's pack")
	}
	return &mappedPack{data: data, idx: idx, n: n}, nil
}

// objectReader reads objects straight from the memory-mapped packs: one
// inflate into a buffer sized from the object's header, delta bases kept
// by offset (trees of neighbouring commits are deltas of each other, and
// go-git would resolve a chain of up to 50 for every one), and no
// intermediate objects. go-git's own reading allocates a reader, a buffer
// and an object per object and looks every delta base's hash up; on a
// long history that is most of the walk. Objects in no mapped pack (loose
// objects, a pack fetched since) come from go-git's storage. Not safe for
// concurrent use: each goroutine has its own (they share the packs).
type objectReader struct {
	set      *packSet
	gitDir   string
	packs    []*mappedPack
	fallback storer.EncodedObjectStorer
	src      bytes.Reader
	zr       io.ReadCloser
	scratch  []byte // the delta being applied

	bases     map[baseKey]packObject
	baseBytes int
	maxBases  int // bytes; zero means maxBaseCache

	// blobs are policy files ReadBlob read (CODEOWNERS, gitgrant.yaml),
	// asked for once per request a pass verifies. Content-addressed: never
	// stale.
	blobs map[plumbing.Hash][]byte
}

// maxBlobCache bounds objectReader.blobs.
const maxBlobCache = 64

func (or *objectReader) rememberBlob(h plumbing.Hash, data []byte) {
	if len(or.blobs) >= maxBlobCache {
		clear(or.blobs)
	}
	if or.blobs == nil {
		or.blobs = map[plumbing.Hash][]byte{}
	}
	or.blobs[h] = data
}

type baseKey struct {
	pack *mappedPack
	off  int64
}

type packObject struct {
	typ  plumbing.ObjectType
	data []byte
}

// maxBaseCache bounds the delta bases an objectReader keeps (git's
// core.deltaBaseCacheLimit is 96 MiB).
const maxBaseCache = 32 << 20

func (r *Repo) objects(fallback storer.EncodedObjectStorer) *objectReader {
	return &objectReader{set: &r.packs, gitDir: r.gitDir, packs: r.packs.load(r.gitDir), fallback: fallback}
}

// withReader calls fn with the repository's shared objectReader, which
// reads single objects (FileAt, CommitAt) and keeps few delta bases.
func (r *Repo) withReader(fn func(*objectReader) error) error {
	r.readMu.Lock()
	defer r.readMu.Unlock()
	if r.reader == nil {
		r.reader = r.objects(r.git.Storer)
		r.reader.maxBases = 4 << 20
	}
	return fn(r.reader)
}

// read returns the type and content of the object h. The content may be
// shared with the reader's cache: callers must not modify it.
func (or *objectReader) read(h plumbing.Hash) (plumbing.ObjectType, []byte, error) {
	if typ, data, ok, err := or.fromPacks(h); ok || err != nil {
		return typ, data, err
	}
	if or.set != nil {
		if ps := or.set.refresh(or.gitDir); !slices.Equal(ps, or.packs) {
			or.packs = ps
			if typ, data, ok, err := or.fromPacks(h); ok || err != nil {
				return typ, data, err
			}
		}
	}
	return or.readLoose(h)
}

// fromPacks reads h from the mapped packs; ok is false when none has it.
func (or *objectReader) fromPacks(h plumbing.Hash) (plumbing.ObjectType, []byte, bool, error) {
	for _, p := range or.packs {
		off, ok := p.offset(h)
		if !ok {
			continue
		}
		o, err := or.at(p, off, 0)
		if err != nil {
			return plumbing.InvalidObject, nil, false, fmt.Errorf("object %s: %w", h, err)
		}
		return o.typ, o.data, true, nil
	}
	return plumbing.InvalidObject, nil, false, nil
}

// readLoose reads through go-git: loose objects, packs not mapped.
func (or *objectReader) readLoose(h plumbing.Hash) (plumbing.ObjectType, []byte, error) {
	obj, err := or.fallback.EncodedObject(plumbing.AnyObject, h)
	if err != nil {
		return plumbing.InvalidObject, nil, err
	}
	rd, err := obj.Reader()
	if err != nil {
		return plumbing.InvalidObject, nil, err
	}
	defer rd.Close()
	data, err := io.ReadAll(rd)
	return obj.Type(), data, err
}

// readType is read, failing unless the object is of type want.
func (or *objectReader) readType(h plumbing.Hash, want plumbing.ObjectType) ([]byte, error) {
	typ, data, err := or.read(h)
	if err == nil && typ != want {
		err = fmt.Errorf("object %s is a %s, not a %s", h, typ, want)
	}
	return data, err
}

// maxObjectSize bounds the objects read (inflated) in memory.
const maxObjectSize = 1 << 30

// maxDeltaDepth bounds delta chains (git writes at most 4095 deep).
const maxDeltaDepth = 5000

var errCorruptPack = errors.New("corrupt pack entry")

// at reads the object at off in p, resolving deltas.
func (or *objectReader) at(p *mappedPack, off int64, depth int) (packObject, error) {
	if depth > maxDeltaDepth {
		return packObject{}, errors.New("delta chain too deep")
	}
	if o, ok := or.bases[baseKey{p, off}]; ok {
		return o, nil
	}
	d := p.data
	if off < 12 || off >= int64(len(d))-20 {
		return packObject{}, errCorruptPack
	}
	pos := off
	c := d[pos]
	pos++
	typ := plumbing.ObjectType((c >> 4) & 7)
	size := int64(c & 15)
	for shift := uint(4); c&0x80 != 0; shift += 7 {
		if pos >= int64(len(d)) || shift > 60 {
			return packObject{}, errCorruptPack
		}
		c = d[pos]
		pos++
		size |= int64(c&0x7f) << shift
	}
	var base packObject
	switch typ {
	case plumbing.CommitObject, plumbing.TreeObject, plumbing.BlobObject, plumbing.TagObject:
	case plumbing.OFSDeltaObject:
		if pos >= int64(len(d)) {
			return packObject{}, errCorruptPack
		}
		c = d[pos]
		pos++
		rel := int64(c & 0x7f)
		for c&0x80 != 0 {
			if pos >= int64(len(d)) || rel > 1<<55 {
				return packObject{}, errCorruptPack
			}
			c = d[pos]
			pos++
			rel = ((rel + 1) << 7) | int64(c&0x7f)
		}
		if rel <= 0 || rel > off {
			return packObject{}, errCorruptPack
		}
		var err error
		if base, err = or.at(p, off-rel, depth+1); err != nil {
			return packObject{}, err
		}
		or.keep(p, off-rel, base)
	case plumbing.REFDeltaObject:
		if pos+20 > int64(len(d)) {
			return packObject{}, errCorruptPack
		}
		var h plumbing.Hash
		copy(h[:], d[pos:pos+20])
		pos += 20
		t, data, err := or.read(h)
		if err != nil {
			return packObject{}, err
		}
		base = packObject{t, data}
	default:
		return packObject{}, errCorruptPack
	}
	if size > maxObjectSize {
		return packObject{}, fmt.Errorf("%w: an object of %d bytes", errCorruptPack, size)
	}
	if typ < plumbing.OFSDeltaObject {
		raw := make([]byte, size)
		if err := or.inflate(d[pos:], raw); err != nil {
			return packObject{}, err
		}
		return packObject{typ, raw}, nil
	}
	if base.data == nil {
		return packObject{}, errCorruptPack
	}
	// The delta itself is read into the reader's scratch buffer: only its
	// result is kept.
	var delta []byte
	switch {
	case int64(cap(or.scratch)) >= size:
		delta = or.scratch[:size]
	case size <= maxScratch:
		or.scratch = make([]byte, size)
		delta = or.scratch
	default:
		delta = make([]byte, size)
	}
	if err := or.inflate(d[pos:], delta); err != nil {
		return packObject{}, err
	}
	out, err := applyDelta(base.data, delta)
	if err != nil {
		return packObject{}, err
	}
	return packObject{base.typ, out}, nil
}

func (or *objectReader) inflate(src, dst []byte) error {
	or.src.Reset(src)
	if or.zr == nil {
		zr, err := zlib.NewReader(&or.src)
		if err != nil {
			return err
		}
		or.zr = zr
	} else if err := or.zr.(zlib.Resetter).Reset(&or.src, nil); err != nil {
		return err
	}
	if _, err := io.ReadFull(or.zr, dst); err != nil {
		return fmt.Errorf("%w: %v", errCorruptPack, err)
	}
	return nil
}

// keep remembers a delta base, forgetting them all when over the bound:
// the bases of one commit's trees are near each other in the pack.
func (or *objectReader) keep(p *mappedPack, off int64, o packObject) {
	limit := or.maxBases
	if limit == 0 {
		limit = maxBaseCache
	}
	if or.bases == nil || or.baseBytes+len(o.data) > limit {
		or.bases, or.baseBytes = map[baseKey]packObject{}, 0
	}
	k := baseKey{p, off}
	if _, ok := or.bases[k]; !ok {
		or.bases[k] = o
		or.baseBytes += len(o.data)
	}
}

package gitrepo

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// BareRepo is a repository as GitHub stores it, written the way GitHub
// itself writes: merge commits, web edits, branches. The simulated GitHub
// serves it over smart HTTP (SmartHTTP); what gitgrant pushes there lands in
// it too.
type BareRepo struct {
	dir   string
	cache storageCache
}

// InitBare creates an empty bare repository at dir whose default branch
// is branch.
func InitBare(dir, branch string) (*BareRepo, error) {
	if _, err := git.PlainInitWithOptions(dir, &git.PlainInitOptions{Bare: true, InitOptions: git.InitOptions{DefaultBranch: plumbing.NewBranchReferenceName(branch)}}); err != nil {
		return nil, fmt.Errorf("creating the repository: %w", err)
	}
	return &BareRepo{dir: dir}, nil
}

// Dir is where the repository lives.
func (b *BareRepo) Dir() string { return b.dir }

// storage returns the repository's storage, kept open between calls and
// opened again when a push through the simulated GitHub wrote a pack; it
// is the caller's until release.
func (b *BareRepo) storage() (st *filesystem.Storage, release func()) {
	return b.cache.open(b.dir)
}

// Branch is the commit branch points at ("" before the first) and its
// files.
func (b *BareRepo) Branch(branch string) (sha string, files map[string]string, err error) {
	st, release := b.storage()
	defer release()
	ref, err := st.Reference(plumbing.NewBranchReferenceName(branch))
	if err != nil {
		return "", map[string]string{}, nil
	}
	c, err := object.GetCommit(st, ref.Hash())
	if err != nil {
		return "", nil, err
	}
	files = map[string]string{}
	iter, err := c.Files()
	if err != nil {
		return "", nil, err
	}
	err = iter.ForEach(func(f *object.File) error {
		content, err := f.Contents()
		files[f.Name] = content
		return err
	})
	return ref.Hash().String(), files, err
}

// Message is a commit's message.
func (b *BareRepo) Message(sha string) (string, error) {
	st, release := b.storage()
	defer release()
	c, err := object.GetCommit(st, plumbing.NewHash(sha))
	if err != nil {
		return "", err
	}
	return c.Message, nil
}

// SetBranch points branch at sha.
func (b *BareRepo) SetBranch(branch, sha string) error {
	st, release := b.storage()
	defer release()
	return st.SetReference(plumbing.NewHashReference(plumbing.NewBranchReferenceName(branch), plumbing.NewHash(sha)))
}

// Commit stores a commit of files with changes applied ("" deletes a
// file), by author and committer (GitHub logins) at when; it returns the
// commit and its files.
func (b *BareRepo) Commit(parents []string, files, changes map[string]string, author, committer, msg string, when time.Time) (string, map[string]string, error) {
	all := make(map[string]string, len(files)+len(changes))
	for p, c := range files {
		all[p] = c
	}
	for p, c := range changes {
		if c == "" {
			delete(all, p)
		} else {
			all[p] = c
		}
	}
	st, release := b.storage()
	defer release()
	tree, err := storeBareTree(b.storer(st), all, "")
	if err != nil {
		return "", nil, err
	}
	c := &object.Commit{
		Author:    object.Signature{Name: author, Email: author + "@users.noreply.github.com", When: when},
		Committer: object.Signature{Name: committer, Email: committer + "@users.noreply.github.com", When: when},
		Message:   msg + "\n",
		TreeHash:  tree,
	}
	for _, p := range parents {
		c.ParentHashes = append(c.ParentHashes, plumbing.NewHash(p))
	}
	obj := st.NewEncodedObject()
	if err := c.Encode(obj); err != nil {
		return "", nil, err
	}
	h, err := st.SetEncodedObject(obj)
	return h.String(), all, err
}

// storer writes objects to st, but not one the repository already holds
// loose: a commit changes a few objects of its tree, and writing each of
// the others again would cost a temporary file, a directory and a rename
// (most of the simulated GitHub's time). One held only in a pack is
// written loose again, harmlessly.
func (b *BareRepo) storer(st *filesystem.Storage) func(plumbing.EncodedObject) (plumbing.Hash, error) {
	return func(obj plumbing.EncodedObject) (plumbing.Hash, error) {
		h := obj.Hash()
		hex := h.String()
		if _, err := os.Stat(filepath.Join(b.dir, "objects", hex[:2], hex[2:])); err == nil {
			return h, nil
		}
		return st.SetEncodedObject(obj)
	}
}

// storeBareTree stores the tree of the files under prefix ("" for the
// root) with store.
func storeBareTree(store func(plumbing.EncodedObject) (plumbing.Hash, error), files map[string]string, prefix string) (plumbing.Hash, error) {
	subdirs := map[string]bool{}
	var entries []object.TreeEntry
	for path, content := range files {
		rest, ok := strings.CutPrefix(path, prefix)
		if !ok {
			continue
		}
		if dir, _, nested := strings.Cut(rest, "/"); nested {
			subdirs[dir] = true
			continue
		}
		blob := &plumbing.MemoryObject{}
		blob.SetType(plumbing.BlobObject)
		bw, err := blob.Writer()
		if err != nil {
			return plumbing.ZeroHash, err
		}
		if _, err := bw.Write([]byte(content)); err != nil {
			return plumbing.ZeroHash, err
		}
		bw.Close()
		h, err := store(blob)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		entries = append(entries, object.TreeEntry{Name: rest, Mode: filemode.Regular, Hash: h})
	}
	for dir := range subdirs {
		h, err := storeBareTree(store, files, prefix+dir+"/")
		if err != nil {
			return plumbing.ZeroHash, err
		}
		entries = append(entries, object.TreeEntry{Name: dir, Mode: filemode.Dir, Hash: h})
	}
	// git orders entries by name, a directory as if its name ended in "/".
	sort.Slice(entries, func(i, j int) bool { return bareSortName(entries[i]) < bareSortName(entries[j]) })
	obj := &plumbing.MemoryObject{}
	if err := (&object.Tree{Entries: entries}).Encode(obj); err != nil {
		return plumbing.ZeroHash, err
	}
	return store(obj)
}

func bareSortName(e object.TreeEntry) string {
	if e.Mode == filemode.Dir {
		return e.Name + "/"
	}
	return e.Name
}

// CommitInfo is what a stored commit says of itself.
type CommitInfo struct {
	SHA               string
	Parents           []string
	Author, Committer string
	Message           string
	When              time.Time
}

// CommitAt reads a stored commit.
func (b *BareRepo) CommitAt(sha string) (CommitInfo, error) {
	st, release := b.storage()
	defer release()
	c, err := object.GetCommit(st, plumbing.NewHash(sha))
	if err != nil {
		return CommitInfo{}, err
	}
	info := CommitInfo{SHA: sha, Author: c.Author.Name, Committer: c.Committer.Name, Message: c.Message, When: c.Committer.When}
	for _, p := range c.ParentHashes {
		info.Parents = append(info.Parents, p.String())
	}
	return info, nil
}

// Refs maps every ref that names a commit to it.
func (b *BareRepo) Refs() (map[string]string, error) {
	st, release := b.storage()
	defer release()
	iter, err := st.IterReferences()
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	err = iter.ForEach(func(r *plumbing.Reference) error {
		if r.Type() == plumbing.HashReference {
			out[r.Name().String()] = r.Hash().String()
		}
		return nil
	})
	return out, err
}

// Descends reports whether commit next is prev or descends from it: a
// ref that moved from prev to next moved forward.
func (b *BareRepo) Descends(prev, next string) (bool, error) {
	if prev == next {
		return true, nil
	}
	st, release := b.storage()
	defer release()
	p, err := object.GetCommit(st, plumbing.NewHash(prev))
	if err != nil {
		return false, err
	}
	n, err := object.GetCommit(st, plumbing.NewHash(next))
	if err != nil {
		return false, err
	}
	return p.IsAncestor(n)
}

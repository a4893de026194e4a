package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// Proposal is one file written on a new branch for a pull request, as
// `gitgrant request --open-pr` makes it.
type Proposal struct {
	// Branch is the new branch; it must not exist on the remote.
	Branch string
	// Path is the file's slash-separated path; Data its whole content.
	Path string
	Data []byte
	// Message is the commit message; Author the person the commit is
	// for (the requester), who is also its committer: the pull request's
	// commits are theirs, never gitgrant's.
	Message string
	Author  Committer
	// New refuses a path that main already has: a new request never
	// replaces someone else's file.
	New bool
	// Replaces, when set, is the content the change starts from (an
	// extension edits an existing request): main must hold exactly it at
	// Path, or nothing is proposed, so that a stale or edited copy never
	// brings other changes back, and a file cleaned up from main is not
	// quietly made anew.
	Replaces []byte
}

// ErrNotOnMain says main's copy of a file a proposal edits is not the one
// it was made from.
var ErrNotOnMain = errors.New("main's copy differs")

// ErrBranchExists says the branch a proposal would create is already on
// the remote: gitgrant never overwrites a branch it did not make.
var ErrBranchExists = errors.New("branch already exists on the remote")

// Propose fetches the remote, writes p.Path on top of its main branch in
// one commit and pushes that commit to the new branch p.Branch, without
// forcing. Local branches and the work tree are not touched. It returns
// the commit.
func (r *Repo) Propose(ctx context.Context, p Proposal, o CommitOptions) (Hash, error) {
	if err := r.Fetch(ctx); err != nil {
		return Hash{}, err
	}
	dst := plumbing.NewBranchReferenceName(p.Branch)
	if _, err := r.git.Reference(plumbing.NewRemoteReferenceName(remoteName, p.Branch), true); err == nil {
		return Hash{}, r.fail("push to "+p.Branch, fmt.Errorf("%w: choose another name, or delete the branch if it is an old one of yours", ErrBranchExists), false)
	}
	base, err := r.remoteMain()
	if err != nil {
		return Hash{}, err
	}
	parent, err := object.GetCommit(r.git.Storer, base)
	if err != nil {
		return Hash{}, r.fail("read commit "+base.String(), err, false)
	}
	if p.New {
		if _, err := parent.File(p.Path); err == nil {
			return Hash{}, r.fail("propose "+p.Path, fmt.Errorf("%s already exists on %s", p.Path, r.branch), false)
		}
	}
	if p.Replaces != nil {
		cur, err := r.FileAtCommit(base.String(), p.Path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return Hash{}, fmt.Errorf("%w: %s is not on %s any more (it ended and was cleaned up?): ask for access anew with gitgrant request", ErrNotOnMain, p.Path, r.branch)
		case err != nil:
			return Hash{}, err
		case string(cur.Data) != string(p.Replaces):
			return Hash{}, fmt.Errorf("%w: %s on %s is not the copy you extended (pull main first, or edit the file on a branch yourself)", ErrNotOnMain, p.Path, r.branch)
		}
	}
	blob, err := r.storeBlob(p.Data)
	if err != nil {
		return Hash{}, r.fail("store file", err, false)
	}
	tree, err := r.writePath(parent.TreeHash, strings.Split(path.Clean(p.Path), "/"), blob)
	if err != nil {
		return Hash{}, r.fail("write tree", err, false)
	}
	if tree == parent.TreeHash {
		return Hash{}, r.fail("propose "+p.Path, fmt.Errorf("%s on %s already has this content: there is nothing to propose", p.Path, r.branch), false)
	}
	o.Committer = p.Author
	sig := o.signature()
	commit, err := r.storeCommit(&object.Commit{Author: sig, Committer: sig, Message: p.Message, TreeHash: tree, ParentHashes: []plumbing.Hash{base}}, o.Signer)
	if err != nil {
		return Hash{}, err
	}
	if err := r.pushRef(ctx, commit, dst, false); err != nil {
		if isNonFastForward(err) {
			err = fmt.Errorf("%w (someone created it meanwhile): %v", ErrBranchExists, err)
		}
		return Hash{}, r.fail("push to "+p.Branch, err, false)
	}
	return commit, nil
}

func (r *Repo) storeBlob(data []byte) (plumbing.Hash, error) {
	obj := r.git.Storer.NewEncodedObject()
	obj.SetType(plumbing.BlobObject)
	obj.SetSize(int64(len(data)))
	w, err := obj.Writer()
	if err != nil {
		return plumbing.ZeroHash, err
	}
	if _, err := w.Write(data); err != nil {
		w.Close()
		return plumbing.ZeroHash, err
	}
	if err := w.Close(); err != nil {
		return plumbing.ZeroHash, err
	}
	return r.git.Storer.SetEncodedObject(obj)
}

// writePath returns tree h (zero: an empty tree) with the file at parts
// set to blob, rebuilding only the trees on its path.
func (r *Repo) writePath(h plumbing.Hash, parts []string, blob plumbing.Hash) (plumbing.Hash, error) {
	var entries []object.TreeEntry
	if !h.IsZero() {
		t, err := object.GetTree(r.git.Storer, h)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		entries = append(entries, t.Entries...)
	}
	name := parts[0]
	entry := object.TreeEntry{Name: name, Mode: filemode.Regular, Hash: blob}
	found := -1
	for i, e := range entries {
		if e.Name == name {
			found = i
		}
	}
	if len(parts) > 1 {
		var sub plumbing.Hash
		if found >= 0 {
			if entries[found].Mode != filemode.Dir {
				return plumbing.ZeroHash, fmt.Errorf("%s is a file, not a folder", name)
			}
			sub = entries[found].Hash
		}
		h, err := r.writePath(sub, parts[1:], blob)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		entry = object.TreeEntry{Name: name, Mode: filemode.Dir, Hash: h}
	}
	if found >= 0 {
		if len(parts) == 1 && entries[found].Mode == filemode.Dir {
			return plumbing.ZeroHash, fmt.Errorf("%s is a folder, not a file", name)
		}
		entries[found] = entry
	} else {
		entries = append(entries, entry)
	}
	return r.storeTree(entries)
}

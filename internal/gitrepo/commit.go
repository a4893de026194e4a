package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/gitgrant/gitgrant/schema"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
)

// Hash names a git object (a commit, a blob). It is go-git's value type
// under this package's name: ids move freely between packages, while
// everything that reads or writes git stays here.
type Hash = plumbing.Hash

// FileMode is a tree entry's mode, as Change reports it.
type FileMode = filemode.FileMode

// ZeroHash is the zero Hash: no commit.
var ZeroHash = plumbing.ZeroHash

// ParseHash reads a hexadecimal object name; anything else is ZeroHash.
func ParseHash(s string) Hash { return plumbing.NewHash(s) }

// Commit is what gitgrant reads of a commit.
type Commit struct {
	Hash    Hash
	Parents []Hash
	// Author and Committer are the names git records (for commits GitHub
	// writes, the GitHub login or "GitHub"); times are as the author and
	// committer set them.
	Author, AuthorEmail       string
	AuthorTime                time.Time
	Committer, CommitterEmail string
	CommitTime                time.Time
	Message                   string
}

func commitOf(c *object.Commit) Commit {
	return Commit{Hash: c.Hash, Parents: append([]Hash(nil), c.ParentHashes...),
		Author: c.Author.Name, AuthorEmail: c.Author.Email, AuthorTime: c.Author.When,
		Committer: c.Committer.Name, CommitterEmail: c.Committer.Email, CommitTime: c.Committer.When,
		Message: c.Message}
}

// CommitAt reads one commit.
func (r *Repo) CommitAt(h Hash) (Commit, error) {
	var c Commit
	err := r.withReader(func(or *objectReader) error {
		data, err := or.readType(h, plumbing.CommitObject)
		if err == nil {
			c, err = parseCommit(h, data)
		}
		return err
	})
	if err != nil {
		return Commit{}, r.fail("read commit "+h.String(), err, false)
	}
	return c, nil
}

// ErrNoCommit says the clone lacks a commit: ask GitHub instead.
var ErrNoCommit = errors.New("commit not in the local clone")

// FileAtCommit reads p at commit rev as schema.ReadTree reads it from a
// work tree, with its kind (a symbolic link, an irregular file). A file
// that does not exist there, or a folder, is an error wrapping
// fs.ErrNotExist; a commit the clone lacks wraps ErrNoCommit.
func (r *Repo) FileAtCommit(rev, p string) (schema.File, error) {
	c, err := object.GetCommit(r.git.Storer, plumbing.NewHash(rev))
	if err != nil {
		return schema.File{}, fmt.Errorf("%s: %w", rev, ErrNoCommit)
	}
	notExist := fmt.Errorf("%s at %s: %w", p, rev, fs.ErrNotExist)
	tree, e := c.TreeHash, object.TreeEntry{Mode: filemode.Dir}
	for _, name := range strings.Split(p, "/") {
		if e.Mode != filemode.Dir {
			return schema.File{}, notExist // a file where a folder was named
		}
		entries, err := r.treeEntries(tree)
		if err != nil {
			if errors.Is(err, plumbing.ErrObjectNotFound) && tree == c.TreeHash {
				return schema.File{}, fmt.Errorf("%s: %w", rev, ErrNoCommit)
			}
			return schema.File{}, r.fail("read "+p+" at "+rev, err, false)
		}
		var ok bool
		if e, ok = entries[name]; !ok {
			return schema.File{}, notExist
		}
		tree = e.Hash
	}
	if e.Mode == filemode.Dir {
		return schema.File{}, fmt.Errorf("%s at %s is a directory: %w", p, rev, fs.ErrNotExist)
	}
	f, err := r.FileAt(p, e.Hash, e.Mode)
	if err != nil {
		return schema.File{}, fmt.Errorf("%s at %s: %w", p, rev, ErrNoCommit)
	}
	return f, nil
}

// ReadFileAt reads one regular file at a commit (a hash) of this clone. A
// file that does not exist there is an error wrapping fs.ErrNotExist; a
// commit the clone does not have wraps ErrNoCommit (callers may then ask
// GitHub). A symbolic link or a folder is not a file.
func (r *Repo) ReadFileAt(ctx context.Context, rev, path string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := r.FileAtCommit(rev, path)
	if err != nil {
		return nil, err
	}
	if f.Kind != schema.Regular {
		return nil, fmt.Errorf("%s at %s is not a regular file: %w", path, rev, fs.ErrNotExist)
	}
	return f.Data, nil
}

// RemoteHostPath splits a remote URL (https://HOST/PATH,
// ssh://git@HOST/PATH or git@HOST:PATH) into its host and path.
func RemoteHostPath(remote string) (host, path string, ok bool) {
	ep, err := transport.NewEndpoint(remote)
	if err != nil {
		return "", "", false
	}
	return ep.Host, ep.Path, true
}

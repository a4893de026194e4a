package prfeedback

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/approval"
	"github.com/gitgrant/gitgrant/schema"
)

// LocalFiles reads files at commits of the workflow's checkout, shallow or
// not, so that base and head commits cost no API calls when the checkout
// has them (actions/checkout with fetch-depth: 0).
type LocalFiles struct{ repo *git.Repository }

// OpenLocal opens the repository at or above dir; nil when there is none.
func OpenLocal(dir string) *LocalFiles {
	r, err := git.PlainOpenWithOptions(dir, &git.PlainOpenOptions{DetectDotGit: true, EnableDotGitCommonDir: true})
	if err != nil {
		return nil
	}
	return &LocalFiles{repo: r}
}

// errNoCommit says the checkout lacks a commit: ask GitHub instead.
var errNoCommit = errors.New("commit not in the local checkout")

// File reads p at commit rev with its kind. A commit the checkout lacks
// is an error that is not fs.ErrNotExist.
func (l *LocalFiles) File(rev, p string) (schema.File, error) {
	c, err := l.repo.CommitObject(plumbing.NewHash(rev))
	if err != nil {
		return schema.File{}, fmt.Errorf("%s: %w", rev, errNoCommit)
	}
	tree, err := c.Tree()
	if err != nil {
		return schema.File{}, fmt.Errorf("%s: %w", rev, errNoCommit)
	}
	e, err := tree.FindEntry(p)
	if errors.Is(err, object.ErrEntryNotFound) || errors.Is(err, object.ErrDirectoryNotFound) {
		return schema.File{}, fmt.Errorf("%s at %s: %w", p, short(rev), fs.ErrNotExist)
	}
	if err != nil {
		return schema.File{}, err
	}
	f := schema.File{Path: p}
	switch {
	case e.Mode == filemode.Symlink:
		f.Kind = schema.Symlink
		return f, nil
	case e.Mode == filemode.Dir:
		return schema.File{}, fmt.Errorf("%s at %s is a directory: %w", p, short(rev), fs.ErrNotExist)
	case !e.Mode.IsFile():
		f.Kind = schema.Irregular
		return f, nil
	}
	obj, err := l.repo.Storer.EncodedObject(plumbing.BlobObject, e.Hash)
	if err != nil {
		return schema.File{}, fmt.Errorf("%s at %s: %w", p, rev, errNoCommit)
	}
	f.Size = obj.Size()
	rd, err := obj.Reader()
	if err != nil {
		return schema.File{}, err
	}
	defer rd.Close()
	f.Data, err = io.ReadAll(io.LimitReader(rd, gitgrant.MaxFileSize+1))
	return f, err
}

// ReadFile implements approval.FileReader.
func (l *LocalFiles) ReadFile(_ context.Context, rev, p string) ([]byte, error) {
	f, err := l.File(rev, p)
	if err != nil {
		return nil, err
	}
	if f.Kind != schema.Regular {
		return nil, fmt.Errorf("%s at %s is not a regular file: %w", p, short(rev), fs.ErrNotExist)
	}
	return f.Data, nil
}

var _ approval.FileReader = (*LocalFiles)(nil)

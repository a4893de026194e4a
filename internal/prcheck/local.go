package prcheck

import (
	"context"

	"github.com/gitgrant/gitgrant/internal/approval"
	"github.com/gitgrant/gitgrant/internal/gitrepo"
	"github.com/gitgrant/gitgrant/schema"
)

// LocalFiles reads files at commits of the workflow's checkout, shallow or
// not, so that base and head commits cost no API calls when the checkout
// has them (actions/checkout with fetch-depth: 0).
type LocalFiles struct{ repo *gitrepo.Repo }

// OpenLocal opens the repository at or above dir; nil when there is none.
func OpenLocal(dir string) *LocalFiles {
	r, err := gitrepo.Open(context.Background(), gitrepo.Options{Source: dir, FilesOnly: true})
	if err != nil {
		return nil
	}
	return &LocalFiles{repo: r}
}

// File reads p at commit rev with its kind. A commit the checkout lacks
// is an error that is not fs.ErrNotExist (gitrepo.ErrNoCommit).
func (l *LocalFiles) File(rev, p string) (schema.File, error) { return l.repo.FileAtCommit(rev, p) }

// ReadFile implements approval.FileReader.
func (l *LocalFiles) ReadFile(ctx context.Context, rev, p string) ([]byte, error) {
	return l.repo.ReadFileAt(ctx, rev, p)
}

var _ approval.FileReader = (*LocalFiles)(nil)

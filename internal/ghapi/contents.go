package ghapi

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/google/go-github/v60/github"
)

// DefaultBranch is the repository's default branch.
func (c *Client) DefaultBranch(ctx context.Context) (string, error) {
	r, resp, err := c.gh.Repositories.Get(ctx, c.Owner, c.Repo)
	if err != nil {
		return "", fail("get repository "+c.Owner+"/"+c.Repo, resp, err)
	}
	if r.GetDefaultBranch() == "" {
		return "", fail("get repository", resp, errors.New("no default branch in the answer"))
	}
	return r.GetDefaultBranch(), nil
}

// Content is one path at a revision, as the contents API describes it.
type Content struct {
	// Type is "file", "symlink" or "submodule".
	Type string
	Size int64
	// Data is a file's content (nil for other types).
	Data []byte
}

// Contents reads path at rev (a commit SHA or a ref). A path that is
// missing, or a directory, is an error wrapping fs.ErrNotExist.
func (c *Client) Contents(ctx context.Context, rev, path string) (Content, error) {
	f, _, resp, err := c.gh.Repositories.GetContents(ctx, c.Owner, c.Repo, path, &github.RepositoryContentGetOptions{Ref: rev})
	if resp != nil && resp.StatusCode == 404 {
		return Content{}, fmt.Errorf("%s at %s: %w", path, rev, fs.ErrNotExist)
	}
	if err != nil {
		return Content{}, fail(fmt.Sprintf("read %s at %s", path, rev), resp, err)
	}
	if f == nil {
		return Content{}, fmt.Errorf("%s at %s is a directory: %w", path, rev, fs.ErrNotExist)
	}
	out := Content{Type: f.GetType(), Size: int64(f.GetSize())}
	if out.Type == "file" {
		s, err := f.GetContent()
		if err != nil {
			return Content{}, fail(fmt.Sprintf("decode %s at %s", path, rev), resp, err)
		}
		out.Data = []byte(s)
	}
	return out, nil
}

// ReadFile reads a regular file at rev; anything else at path is an error
// wrapping fs.ErrNotExist. It implements approval.FileReader.
func (c *Client) ReadFile(ctx context.Context, rev, path string) ([]byte, error) {
	f, err := c.Contents(ctx, rev, path)
	if err != nil {
		return nil, err
	}
	if f.Type != "file" {
		return nil, fmt.Errorf("%s at %s is not a file: %w", path, rev, fs.ErrNotExist)
	}
	return f.Data, nil
}

package gitrepo

import (
	"bytes"
	"errors"
	"fmt"
	"path"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/schema"
)

// CodeOwnersPaths are where GitHub looks for CODEOWNERS, in its order.
var CodeOwnersPaths = []string{".github/CODEOWNERS", "CODEOWNERS", "docs/CODEOWNERS"}

// Snapshot is what gitgrant reads of one revision: the same files that
// schema.ReadTree reads from a work tree, so that schema.Validate judges a
// revision exactly as it judges a checkout.
type Snapshot struct {
	Commit     plumbing.Hash
	Config     *schema.File // nil when gitgrant.yaml is absent
	CodeOwners *schema.File // nil when no CODEOWNERS file exists
	Requests   []schema.File
}

// Resolve turns a revision (a hash, branch, tag or expression such as
// main~2) into a commit; "" means the main branch.
func (r *Repo) Resolve(rev string) (plumbing.Hash, error) {
	if rev == "" {
		return r.MainRef()
	}
	h, err := r.git.ResolveRevision(plumbing.Revision(rev))
	if err != nil {
		return plumbing.ZeroHash, r.fail("resolve "+rev, err, false)
	}
	return *h, nil
}

// ReadRevision reads gitgrant.yaml, CODEOWNERS and every file under
// requests/ at rev without a work tree. A failure to read is an error,
// never an empty result.
func (r *Repo) ReadRevision(rev string) (*Snapshot, error) {
	h, err := r.Resolve(rev)
	if err != nil {
		return nil, err
	}
	c, err := r.git.CommitObject(h)
	if err != nil {
		return nil, r.fail("read commit "+h.String(), err, false)
	}
	root, err := c.Tree()
	if err != nil {
		return nil, r.fail("read tree of "+h.String(), err, false)
	}
	s := &Snapshot{Commit: h}
	if s.Config, err = r.optionalFile(root, gitgrant.ConfigPath); err != nil {
		return nil, err
	}
	for _, p := range CodeOwnersPaths {
		if s.CodeOwners, err = r.optionalFile(root, p); err != nil || s.CodeOwners != nil {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	reqs, err := root.FindEntry(gitgrant.RequestsDir)
	switch {
	case errors.Is(err, object.ErrEntryNotFound) || errors.Is(err, object.ErrDirectoryNotFound):
		return s, nil
	case err != nil:
		return nil, r.fail("read "+gitgrant.RequestsDir, err, false)
	case reqs.Mode != filemode.Dir:
		s.Requests = append(s.Requests, schema.File{Path: gitgrant.RequestsDir, Kind: kindOf(reqs.Mode)})
		return s, nil
	}
	err = r.walkTree(reqs.Hash, gitgrant.RequestsDir, func(p string, e object.TreeEntry) error {
		f, err := r.FileAt(p, e.Hash, e.Mode)
		if err == nil {
			s.Requests = append(s.Requests, f)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

func (r *Repo) optionalFile(root *object.Tree, p string) (*schema.File, error) {
	e, err := root.FindEntry(p)
	if errors.Is(err, object.ErrEntryNotFound) || errors.Is(err, object.ErrDirectoryNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, r.fail("read "+p, err, false)
	}
	f, err := r.FileAt(p, e.Hash, e.Mode)
	if err != nil {
		return nil, err
	}
	return &f, nil
}

// walkTree calls fn for every non-tree entry below the tree h, in path order.
func (r *Repo) walkTree(h plumbing.Hash, dir string, fn func(string, object.TreeEntry) error) error {
	t, err := object.GetTree(r.git.Storer, h)
	if err != nil {
		return r.fail("read tree "+dir, err, false)
	}
	for _, e := range t.Entries {
		p := path.Join(dir, e.Name)
		if e.Mode == filemode.Dir {
			if err := r.walkTree(e.Hash, p, fn); err != nil {
				return err
			}
			continue
		}
		if err := fn(p, e); err != nil {
			return err
		}
	}
	return nil
}

// kindOf maps a git file mode to what schema may parse: 120000 is a
// symbolic link, 160000 a submodule, and neither is ever read as YAML.
func kindOf(m filemode.FileMode) schema.FileKind {
	switch m {
	case filemode.Regular, filemode.Executable, filemode.Deprecated:
		return schema.Regular
	case filemode.Symlink:
		return schema.Symlink
	}
	return schema.Irregular
}

// FileAt reads the blob h as the file p with mode m, at most
// MaxFileSize+1 bytes of it, as schema.ReadTree does from disk.
func (r *Repo) FileAt(p string, h plumbing.Hash, m filemode.FileMode) (schema.File, error) {
	f := schema.File{Path: p, Kind: kindOf(m)}
	if f.Kind != schema.Regular {
		return f, nil
	}
	err := r.withReader(func(or *objectReader) error {
		data, err := or.readType(h, plumbing.BlobObject)
		if err != nil {
			return err
		}
		f.Size = int64(len(data))
		f.Data = bytes.Clone(data[:min(len(data), gitgrant.MaxFileSize+1)])
		return nil
	})
	if err != nil {
		return f, r.fail(fmt.Sprintf("read %s (blob %s)", p, h), err, false)
	}
	return f, nil
}

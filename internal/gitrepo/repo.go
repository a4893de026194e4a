// Package gitrepo owns gitgrant's access to the access repository through
// go-git: opening a local repository or a cached clone of a remote one,
// reading files at any revision without a work tree, the provenance of
// request files on the main branch, cleanup commits with trailers, git
// notes recorded at grant time, and pushing them without ever forcing (but
// for gitgrant's own cleanup branch of cleanup.mode: pull-request).
package gitrepo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	"github.com/go-git/go-billy/v5"
	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// DefaultBranch is the main branch when none is configured.
const DefaultBranch = "main"

// remoteName is the remote every fetch and push goes through.
const remoteName = "origin"

// Options say where the access repository is and how to reach it.
type Options struct {
	// Source is a local directory (a work tree or a bare repository) or a
	// remote URL: https://, http://, ssh://, git@host:path or file://.
	Source string
	// Branch is the main branch; empty means DefaultBranch.
	Branch string
	// CacheDir holds bare clones of remote repositories, one per URL.
	// Empty means the user cache directory (~/.cache/gitgrant/repos).
	CacheDir string
	// Token authenticates HTTPS remotes (a GitHub token), as the password
	// of basic auth with TokenUser (default "x-access-token").
	Token     string
	TokenUser string
	// TokenSource, when set instead of Token, is asked for the token
	// before every fetch and push, so that a GitHub App's installation
	// token, which lapses after an hour, is refreshed in a long-running
	// process.
	TokenSource func() (string, error)
	// SSHKeyFile is a private key for ssh remotes; empty means the SSH agent.
	SSHKeyFile     string
	SSHKeyPassword string
	// SSHKnownHosts is a known_hosts file the server's host key must be
	// in; empty means $SSH_KNOWN_HOSTS or ~/.ssh/known_hosts. Host keys are
	// always checked: a host in none of them is refused.
	SSHKnownHosts string
	// Auth overrides every other credential option when set.
	Auth transport.AuthMethod
	// FilesOnly opens a local checkout only to read files at commits it
	// has (a workflow's checkout, shallow or not): no history is walked,
	// so a shallow clone is fine.
	FilesOnly bool
}

// Repo is an opened access repository.
type Repo struct {
	git    *git.Repository
	dir    string
	gitDir string // the .git directory or bare repository; empty if unknown
	source string // redacted: safe to print
	branch string
	remote bool // a cached clone of Source, fetched on Open
	// auth gives the credentials of one fetch or push (nil: none).
	auth func() (transport.AuthMethod, error)

	provMu sync.Mutex
	prov   *provenanceCache

	policyMu sync.Mutex
	policy   *policyCache

	// notesMu guards the note caches; writeMu serialises notes writes.
	notesMu   sync.Mutex
	noteBlobs map[plumbing.Hash]noteFile // by blob: notes never change
	records   *Records                   // the last Records, with the refs it was read at
	writeMu   sync.Mutex

	fetchMu  sync.Mutex
	fetchErr error // the last fetch's failure, nil after a success

	refs   refCache
	packs  packSet // memory-mapped packs for objectReader
	readMu sync.Mutex
	reader *objectReader // withReader's
	trees  treeIndexes   // FileAtCommit's
}

// IsRemote reports whether source names a remote repository rather than a
// local directory.
func IsRemote(source string) bool {
	return strings.Contains(source, "://") || scpLike.MatchString(source)
}

// scpLike matches git's user@host:path shorthand for ssh.
var scpLike = regexp.MustCompile(`^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^/]`)

// Open opens a local repository, or clones or fetches a remote one into the
// cache. A failure is a *gitgrant.SystemError whose text holds no secret.
func Open(ctx context.Context, o Options) (*Repo, error) {
	if o.Source == "" {
		o.Source = "."
	}
	r := &Repo{branch: o.Branch, source: Redact(o.Source)}
	if r.branch == "" {
		r.branch = DefaultBranch
	}
	if !IsRemote(o.Source) {
		g, gitDir, err := openLocal(o.Source)
		if err != nil {
			return nil, r.fail("open", fmt.Errorf("%s is not a git repository: %w", o.Source, err), false)
		}
		r.git, r.dir, r.gitDir = g, o.Source, gitDir
		if o.FilesOnly {
			return r, nil
		}
		if err := r.checkShallow(); err != nil {
			return nil, err
		}
		// A local repository's origin, if any, is where cleanup commits go.
		if rem, err := g.Remote(remoteName); err == nil && len(rem.Config().URLs) > 0 {
			r.auth, err = authFor(rem.Config().URLs[0], o)
			if err != nil {
				return nil, r.fail("open", err, false)
			}
		}
		return r, nil
	}

	clean, user, password := stripCredentials(o.Source)
	if password != "" && o.Token == "" {
		o.Token, o.TokenUser = password, user
	}
	r.remote = true
	r.source = Redact(clean)
	auth, err := authFor(clean, o)
	if err != nil {
		return nil, r.fail("open", err, false)
	}
	r.auth = auth
	cache := o.CacheDir
	if cache == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			return nil, r.fail("open", fmt.Errorf("no cache directory: %w (set --cache-dir)", err), false)
		}
		cache = filepath.Join(base, "gitgrant", "repos")
	}
	sum := sha256.Sum256([]byte(clean))
	r.dir = filepath.Join(cache, hex.EncodeToString(sum[:8]))
	g, _, err := openLocal(r.dir)
	if errors.Is(err, git.ErrRepositoryNotExists) {
		g, err = initCache(r.dir, clean)
	}
	r.gitDir = r.dir
	if err != nil {
		return nil, r.fail("open cache "+r.dir, err, false)
	}
	r.git = g
	if err := r.checkShallow(); err != nil {
		return nil, err
	}
	if err := r.Fetch(ctx); err != nil {
		if _, mainErr := r.MainRef(); mainErr != nil {
			return nil, err // nothing fetched before: nothing to plan from
		}
		// The cache holds an earlier fetch: plan from it. Stale says so,
		// and a pass then only revokes (rule 7).
	}
	return r, nil
}

// Remote reports whether the repository is a clone of a remote URL that
// each pass should fetch.
func (r *Repo) Remote() bool { return r.remote }

// Stale is the error of the last fetch when it failed: main is as it was
// at an earlier fetch. nil after a successful fetch, and for a local
// repository.
func (r *Repo) Stale() error {
	r.fetchMu.Lock()
	defer r.fetchMu.Unlock()
	return r.fetchErr
}

// openLocal opens a work tree (or a directory inside one) or a bare
// repository with storage tuned for walking long histories: pack files
// are memory-mapped and stay open (go-git otherwise reopens and seeks the
// pack for every object). A larger object cache than 64 MiB made no
// measurable difference on a 100,000-commit history.
func openLocal(dir string) (*git.Repository, string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, "", err
	}
	for p := abs; ; p = filepath.Dir(p) {
		dot, wt := filepath.Join(p, ".git"), p
		if fi, err := os.Stat(dot); err == nil && !fi.IsDir() { // a linked work tree: let go-git follow the gitdir file
			g, err := git.PlainOpenWithOptions(p, &git.PlainOpenOptions{EnableDotGitCommonDir: true})
			return g, "", err
		} else if err != nil {
			dot, wt = p, ""
		}
		if isGitDir(dot) {
			s := filesystem.NewStorageWithOptions(newPackFS(dot), cache.NewObjectLRU(64*cache.MiByte), filesystem.Options{KeepDescriptors: true})
			var worktree billy.Filesystem
			if wt != "" {
				worktree = osfs.New(wt)
			}
			g, err := git.Open(s, worktree)
			return g, dot, err
		}
		if filepath.Dir(p) == p {
			return nil, "", git.ErrRepositoryNotExists
		}
	}
}

func isGitDir(dir string) bool {
	for _, name := range []string{"HEAD", "objects", "refs"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			return false
		}
	}
	return true
}

// Close releases the pack files the repository keeps open.
func (r *Repo) Close() error {
	r.readMu.Lock()
	r.reader = nil
	r.packs.close()
	r.readMu.Unlock()
	if c, ok := r.git.Storer.(interface{ Close() error }); ok {
		return c.Close()
	}
	return nil
}

func initCache(dir, url string) (*git.Repository, error) {
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return nil, err
	}
	if _, err := git.PlainInit(dir, true); err != nil {
		return nil, err
	}
	g, _, err := openLocal(dir)
	if err != nil {
		return nil, err
	}
	_, err = g.CreateRemote(&config.RemoteConfig{Name: remoteName, URLs: []string{url}, Fetch: fetchSpecs})
	return g, err
}

// fetchSpecs mirror the remote's branches and gitgrant's notes. Notes are
// fetched beside, not onto, refs/notes/gitgrant: a note written here and
// not yet pushed must never be overwritten by a fetch.
var fetchSpecs = []config.RefSpec{
	"+refs/heads/*:refs/remotes/origin/*",
	"+refs/notes/*:refs/remotes/origin/notes/*",
}

// Fetch brings the remote's branches and notes up to date.
func (r *Repo) Fetch(ctx context.Context) error {
	auth, err := r.credentials()
	if err != nil {
		return err
	}
	err = r.git.FetchContext(ctx, &git.FetchOptions{RemoteName: remoteName, RefSpecs: fetchSpecs, Auth: auth, Tags: git.NoTags})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		err = r.fail("fetch", err, true)
	} else {
		err = nil
	}
	if r.remote {
		r.fetchMu.Lock()
		r.fetchErr = err
		r.fetchMu.Unlock()
	}
	return err
}

// GitDir is the repository's git directory (for a work tree, its .git),
// where gitgrant may keep caches; empty when unknown.
func (r *Repo) GitDir() string { return r.gitDir }

// Dir is where the repository lives on disk (the cache for a remote).
func (r *Repo) Dir() string { return r.dir }

// Source is the repository's location with credentials removed.
func (r *Repo) Source() string { return r.source }

// Branch is the main branch's short name.
func (r *Repo) Branch() string { return r.branch }

// MainRef is the reference the main branch is read from: the remote
// tracking branch of a cached clone, else the local branch, else HEAD.
func (r *Repo) MainRef() (plumbing.Hash, error) {
	candidates := []plumbing.ReferenceName{plumbing.NewRemoteReferenceName(remoteName, r.branch)}
	if !r.remote {
		candidates = []plumbing.ReferenceName{plumbing.NewBranchReferenceName(r.branch), plumbing.NewRemoteReferenceName(remoteName, r.branch)}
	}
	if h, ok := r.refs.lookup(r.gitDir, candidates); ok {
		return h, nil
	}
	packed := fileStamp{}
	if r.gitDir != "" {
		packed = stampOf(filepath.Join(r.gitDir, "packed-refs"))
	}
	for i, name := range candidates {
		ref, err := r.git.Reference(name, true)
		if err == nil {
			r.refs.remember(r.gitDir, candidates, i, packed, ref.Hash())
			return ref.Hash(), nil
		}
		if !errors.Is(err, plumbing.ErrReferenceNotFound) {
			return plumbing.ZeroHash, r.fail("resolve "+name.String(), err, false)
		}
	}
	return plumbing.ZeroHash, r.fail("resolve branch", fmt.Errorf("branch %q not found in %s", r.branch, r.source), false)
}

func (r *Repo) checkShallow() error {
	shallow, err := r.git.Storer.Shallow()
	if err != nil {
		return r.fail("open", err, false)
	}
	if len(shallow) > 0 {
		return r.fail("open", fmt.Errorf("%s is a shallow clone: the audit trail needs the whole history (run git fetch --unshallow)", r.source), false)
	}
	return nil
}

// OriginURL is the URL of the origin remote of the local repository that
// holds dir, or "" when there is none.
func OriginURL(dir string) string {
	g, _, err := openLocal(dir)
	if err != nil {
		return ""
	}
	defer func() {
		if c, ok := g.Storer.(interface{ Close() error }); ok {
			c.Close()
		}
	}()
	rem, err := g.Remote(remoteName)
	if err != nil || len(rem.Config().URLs) == 0 {
		return ""
	}
	return rem.Config().URLs[0]
}

// Package audit rebuilds the access trail from git alone: who requested
// what, who approved it, when access was granted, extended, revoked early
// or expired, and when gitgrant cleaned the file up. It reads the main
// branch's first-parent history (request files added, changed and removed,
// the pull request in merge and squash messages, the trailers of cleanup
// commits) and gitgrant's notes (refs/notes/gitgrant). The walk is
// incremental: what was read once is kept in an index beside the
// repository and only new commits are read next time.
package audit

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/gitrepo"
	"github.com/gitgrant/gitgrant/schema"
)

// CommitRef is what the trail keeps of a commit on the main branch.
type CommitRef struct {
	Hash        string
	Time        time.Time // committer time: when it reached main
	AuthorTime  time.Time // when the change was written (the PR head's, for a merge)
	Author      string
	Committer   string
	PullRequest int
	Kind        gitrepo.MergeKind
}

// Version is one state of a request file on main.
type Version struct {
	Commit    CommitRef
	Path      string
	Blob      string
	Requester string
	Subject   string
	Grants    []gitgrant.GrantRef
	Duration  gitgrant.Duration
	Expires   time.Time
	Starts    time.Time
	Emergency bool
	// Invalid holds the first problem when the file did not decode; such a
	// version grants nothing.
	Invalid string
}

// Removal is the commit that removed a request file from main.
type Removal struct {
	Commit CommitRef
	// Trailer is set when gitgrant's cleanup commit recorded the removal.
	Trailer *gitrepo.Removal
}

// Lifetime is one request file from the commit that added it to the
// commit that removed it (nil while it is on main). A rename continues the
// lifetime; re-adding a removed path starts a new one.
type Lifetime struct {
	Versions []Version
	Renames  []Rename
	Removed  *Removal
}

// Rename records a request file moving without changing its content.
type Rename struct {
	Commit   CommitRef
	From, To string
}

// history is the part of the trail that depends on commits only, which
// the index keeps between runs.
type history struct {
	Head      string
	Lifetimes []*Lifetime
	active    map[string]int // path -> index into Lifetimes
}

func newHistory() *history { return &history{active: map[string]int{}} }

func (h *history) reindex() {
	h.active = map[string]int{}
	for i, l := range h.Lifetimes {
		if l.Removed == nil && len(l.Versions) > 0 {
			h.active[l.current()] = i
		}
	}
}

func (l *Lifetime) current() string {
	if n := len(l.Renames); n > 0 {
		return l.Renames[n-1].To
	}
	return l.Versions[0].Path
}

// update walks the commits after h.Head up to head. On a force-push that
// removed h.Head from main it starts over: git alone is the truth.
func (h *history) update(ctx context.Context, r *gitrepo.Repo, head gitrepo.Hash) (*history, error) {
	since := gitrepo.ZeroHash
	if h.Head != "" {
		since = gitrepo.ParseHash(h.Head)
	}
	if since == head {
		return h, nil
	}
	steps, err := collect(ctx, r, head, since)
	if errors.Is(err, gitrepo.ErrRewritten) {
		h, since = newHistory(), gitrepo.ZeroHash
		steps, err = collect(ctx, r, head, since)
	}
	if err != nil {
		return nil, err
	}
	decoded, err := decodeAll(r, steps)
	if err != nil {
		return nil, err
	}
	for _, s := range steps {
		if err := h.apply(r, s, decoded); err != nil {
			return nil, err
		}
	}
	h.Head = head.String()
	return h, nil
}

// collect reads the steps that changed request files. Other files under
// requests/ (a README.md, a .gitkeep) are no requests
// (gitgrant.IsRequestPath) and no events.
func collect(ctx context.Context, r *gitrepo.Repo, head, since gitrepo.Hash) ([]gitrepo.Step, error) {
	steps, err := r.RequestSteps(ctx, head, since)
	if err != nil {
		return nil, err
	}
	kept := steps[:0] // filtered in place: a long history has a step per commit
	for _, s := range steps {
		s.Changes = slices.DeleteFunc(s.Changes, func(ch gitrepo.Change) bool { return !gitgrant.IsRequestPath(ch.Path) })
		if len(s.Changes) > 0 {
			kept = append(kept, s)
		}
	}
	clear(steps[len(kept):])
	return kept, nil
}

type blobKey struct {
	path string
	blob gitrepo.Hash
}

// decodeAll reads every added or changed request file (once per path and
// content) and decodes them in parallel: parsing, not git, is the cost.
func decodeAll(r *gitrepo.Repo, steps []gitrepo.Step) (map[blobKey]Version, error) {
	var files []schema.File
	var keys []blobKey
	seen := map[blobKey]bool{}
	out := map[blobKey]Version{}
	for _, s := range steps {
		for _, ch := range s.Changes {
			k := blobKey{ch.Path, ch.To}
			if ch.Kind == gitrepo.Deleted || seen[k] {
				continue
			}
			seen[k] = true
			f, err := r.FileAt(ch.Path, ch.To, ch.ToMode)
			if err != nil {
				return nil, err
			}
			files, keys = append(files, f), append(keys, k)
		}
	}
	versions := make([]Version, len(files))
	var wg sync.WaitGroup
	next := make(chan int, len(files))
	for i := range files {
		next <- i
	}
	close(next)
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				versions[i] = decode(files[i], keys[i].blob)
			}
		}()
	}
	wg.Wait()
	for i, k := range keys {
		out[k] = versions[i]
	}
	return out, nil
}

func (h *history) apply(r *gitrepo.Repo, s gitrepo.Step, decoded map[blobKey]Version) error {
	ref, err := commitRef(r, s.Commit)
	if err != nil {
		return err
	}
	var trailers map[string]*gitrepo.Removal
	for _, ch := range s.Changes {
		if ch.Kind == gitrepo.Deleted {
			trailers = map[string]*gitrepo.Removal{}
			for _, t := range gitrepo.ParseCleanupTrailers(s.Commit.Message) {
				trailers[t.Path] = &t
			}
			break
		}
	}
	// A deletion and an addition of the same blob in one commit is a rename.
	added := map[gitrepo.Hash]int{}
	for i, ch := range s.Changes {
		if ch.Kind == gitrepo.Added {
			added[ch.To] = i
		}
	}
	renamedTo := map[int]bool{}
	for _, ch := range s.Changes {
		if ch.Kind != gitrepo.Deleted {
			continue
		}
		i, isActive := h.active[ch.Path]
		if j, ok := added[ch.From]; ok && isActive && !renamedTo[j] && trailers[ch.Path] == nil {
			to := s.Changes[j].Path
			renamedTo[j] = true
			h.Lifetimes[i].Renames = append(h.Lifetimes[i].Renames, Rename{Commit: ref, From: ch.Path, To: to})
			delete(h.active, ch.Path)
			h.active[to] = i
			continue
		}
		if isActive {
			h.Lifetimes[i].Removed = &Removal{Commit: ref, Trailer: trailers[ch.Path]}
			delete(h.active, ch.Path)
		}
	}
	for j, ch := range s.Changes {
		if ch.Kind == gitrepo.Deleted || renamedTo[j] {
			continue
		}
		v := decoded[blobKey{ch.Path, ch.To}]
		v.Commit = ref
		if i, ok := h.active[ch.Path]; ok {
			h.Lifetimes[i].Versions = append(h.Lifetimes[i].Versions, v)
			continue
		}
		h.Lifetimes = append(h.Lifetimes, &Lifetime{Versions: []Version{v}})
		h.active[ch.Path] = len(h.Lifetimes) - 1
	}
	return nil
}

// decode reads a request file with schema.LoadRequest, the one parser.
func decode(f schema.File, blob gitrepo.Hash) Version {
	v := Version{Path: f.Path, Blob: blob.String()}
	if f.Kind != schema.Regular {
		v.Invalid = "not a regular file"
		return v
	}
	if f.Size > gitgrant.MaxFileSize {
		v.Invalid = fmt.Sprintf("file is %d bytes, over the %d KiB limit", f.Size, gitgrant.MaxFileSize>>10)
		return v
	}
	req, diags := schema.LoadRequest(f.Path, f.Data)
	if req == nil {
		v.Invalid = "does not decode"
		if len(diags) > 0 {
			v.Invalid = diags[0].String()
		}
		return v
	}
	v.Requester, v.Subject, v.Grants = req.Requester, req.Subject, req.Grants
	v.Duration, v.Expires, v.Starts, v.Emergency = req.Duration, req.Expires, req.Starts, req.Emergency
	return v
}

func commitRef(r *gitrepo.Repo, c gitrepo.Commit) (CommitRef, error) {
	pr, kind := gitrepo.PullRequest(c.Message)
	ref := CommitRef{Hash: c.Hash.String(), Time: c.CommitTime.UTC(), AuthorTime: c.AuthorTime.UTC(),
		Author: c.Author, Committer: c.Committer, PullRequest: pr, Kind: kind}
	if len(c.Parents) > 1 {
		ref.Kind = gitrepo.MergeCommit
		head, err := r.CommitAt(c.Parents[1])
		if err != nil {
			return ref, fmt.Errorf("reading the merged head of %s: %w", c.Hash, err)
		}
		ref.AuthorTime, ref.Author = head.AuthorTime.UTC(), head.Author
	} else if kind == gitrepo.MergeCommit {
		ref.Kind = gitrepo.Direct
	}
	return ref, nil
}

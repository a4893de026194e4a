package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// ChangeKind says what a commit did to one file.
type ChangeKind string

const (
	Added    ChangeKind = "added"
	Modified ChangeKind = "modified"
	Deleted  ChangeKind = "deleted"
)

// Change is one file under requests/ that a first-parent commit changed.
// From is zero for an addition, To for a deletion.
type Change struct {
	Path     string
	Kind     ChangeKind
	From, To plumbing.Hash
	FromMode filemode.FileMode
	ToMode   filemode.FileMode
}

// Step is one first-parent commit of the main branch that changed
// something under requests/, with what it changed, in path order.
type Step struct {
	Commit  Commit
	Changes []Change
}

// ErrRewritten reports that a commit an earlier walk ended at is no
// longer on the main branch's first-parent history (a force-push).
var ErrRewritten = errors.New("history was rewritten: the last audited commit is no longer on the main branch")

// FirstParents returns the first-parent chain from head back to stop
// (exclusive), newest first. found is false when the chain reached the root
// without meeting a non-zero stop.
func (r *Repo) FirstParents(ctx context.Context, head, stop Hash) (chain []Commit, found bool, err error) {
	cs, found, err := r.firstParents(ctx, head, stop)
	if err != nil {
		return nil, false, err
	}
	chain = make([]Commit, len(cs))
	for i, c := range cs {
		chain[i] = commitOf(c)
	}
	return chain, found, nil
}

func (r *Repo) firstParents(ctx context.Context, head, stop plumbing.Hash) (chain []*object.Commit, found bool, err error) {
	h := head
	for !h.IsZero() {
		if h == stop {
			return chain, true, nil
		}
		if len(chain)%1024 == 0 && ctx.Err() != nil {
			return nil, false, ctx.Err()
		}
		c, err := object.GetCommit(r.git.Storer, h)
		if err != nil {
			return nil, false, r.fail("read commit "+h.String(), fmt.Errorf("%w (is the repository corrupt or shallow?)", err), false)
		}
		chain = append(chain, c)
		h = plumbing.ZeroHash
		if len(c.ParentHashes) > 0 {
			h = c.ParentHashes[0]
		}
	}
	return chain, stop.IsZero(), nil
}

// MergeKind says how a change reached the main branch.
type MergeKind string

const (
	MergeCommit MergeKind = "merge"  // a merge commit ("Merge pull request #N from ...")
	Squash      MergeKind = "squash" // one commit whose subject ends in "(#N)"
	Direct      MergeKind = "direct" // anything else: a rebase merge or a direct push
)

var (
	mergePR  = regexp.MustCompile(`^Merge pull request #(\d+) from `)
	squashPR = regexp.MustCompile(`\(#(\d+)\)\s*$`)
)

// PullRequest parses the pull request number GitHub writes into merge and
// squash commit messages, or 0.
func PullRequest(message string) (int, MergeKind) {
	subject, _, _ := strings.Cut(message, "\n")
	subject = strings.TrimSpace(subject)
	if m := mergePR.FindStringSubmatch(subject); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n, MergeCommit
	}
	if m := squashPR.FindStringSubmatch(subject); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n, Squash
	}
	return 0, Direct
}

// Provenance is how one request file came to be as it is on the main
// branch, from git alone. It is the offline fallback: GitHub's API is
// authoritative about pull requests and approvals.
type Provenance struct {
	Path string        `json:"path"`
	Blob plumbing.Hash `json:"blob"`
	// Commit is the first-parent commit of main that last added or changed
	// the file: the merge commit, the squash commit, or the pushed commit.
	Commit plumbing.Hash `json:"commit"`
	// Parents are Commit's parents, first parent first: two for a merge
	// commit, one for a squash, a rebased or a pushed commit.
	Parents     []plumbing.Hash `json:"parents,omitempty"`
	Kind        MergeKind       `json:"kind"`
	PullRequest int             `json:"pull_request,omitempty"`
	// Base is the commit the change was judged against: the merge base of a
	// merge commit's parents, otherwise the first parent.
	Base plumbing.Hash `json:"base"`
	// MergedAt is the committer time of Commit; GitHub's API is the
	// authoritative merge time.
	MergedAt time.Time `json:"merged_at"`
	// Author is the author of the change (the pull request's head commit
	// for a merge commit).
	Author string `json:"author"`
}

// Provenances returns the provenance of every file under requests/ on the
// main branch, keyed by path. The Repo remembers the answer: a later call
// (a long-running reconciler's next pass) walks only the commits since,
// and the whole history again only after a force-push.
func (r *Repo) Provenances(ctx context.Context) (map[string]Provenance, error) {
	head, err := r.MainRef()
	if err != nil {
		return nil, err
	}
	r.provMu.Lock()
	defer r.provMu.Unlock()
	since, byPath := plumbing.ZeroHash, map[string]Provenance{}
	if c := r.prov; c != nil {
		if c.head == head {
			return clonePathMap(c.byPath), nil
		}
		since, byPath = c.head, clonePathMap(c.byPath)
	}
	walk := func(since plumbing.Hash, byPath map[string]Provenance) error {
		return r.WalkRequests(ctx, head, since, func(s Step) error {
			var pv Provenance
			for _, ch := range s.Changes {
				if ch.Kind == Deleted {
					delete(byPath, ch.Path)
					continue
				}
				if pv.Commit.IsZero() { // one provenance per commit
					var err error
					if pv, err = r.provenanceOf(s.Commit); err != nil {
						return err
					}
				}
				pv.Path, pv.Blob = ch.Path, ch.To
				byPath[ch.Path] = pv
			}
			return nil
		})
	}
	err = walk(since, byPath)
	if errors.Is(err, ErrRewritten) {
		byPath = map[string]Provenance{}
		err = walk(plumbing.ZeroHash, byPath)
	}
	if err != nil {
		return nil, err
	}
	r.prov = &provenanceCache{head: head, byPath: byPath}
	return clonePathMap(byPath), nil
}

// provenanceCache is the last Provenances answer and the head it is for.
type provenanceCache struct {
	head   plumbing.Hash
	byPath map[string]Provenance
}

// clonePathMap copies the map and the parents of each provenance: the
// cache's answer must not change when a caller changes its copy.
func clonePathMap(m map[string]Provenance) map[string]Provenance {
	out := make(map[string]Provenance, len(m))
	for k, v := range m {
		v.Parents = slices.Clone(v.Parents)
		out[k] = v
	}
	return out
}

func (r *Repo) provenanceOf(c Commit) (Provenance, error) {
	pr, kind := PullRequest(c.Message)
	pv := Provenance{Commit: c.Hash, Parents: slices.Clone(c.Parents), Kind: kind, PullRequest: pr, MergedAt: c.CommitTime.UTC(), Author: c.Author}
	if len(c.Parents) > 0 {
		pv.Base = c.Parents[0]
	}
	if len(c.Parents) < 2 {
		if kind == MergeCommit { // a "Merge pull request" subject on a one-parent commit
			pv.Kind = Direct
		}
		return pv, nil
	}
	pv.Kind = MergeCommit
	first, err1 := object.GetCommit(r.git.Storer, c.Parents[0])
	head, err2 := object.GetCommit(r.git.Storer, c.Parents[1])
	if err := errors.Join(err1, err2); err != nil {
		return pv, r.fail("read parents of "+c.Hash.String(), err, false)
	}
	pv.Author = head.Author.Name
	bases, err := first.MergeBase(head)
	if err != nil {
		return pv, r.fail("merge base of "+c.Hash.String(), err, false)
	}
	if len(bases) > 0 {
		pv.Base = bases[0].Hash
	}
	return pv, nil
}

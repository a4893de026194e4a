package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/approval"
	"github.com/gitgrant/gitgrant/internal/gitrepo"
	"github.com/gitgrant/gitgrant/internal/trust"
)

// TrustFirst names the first policy commit of main as the trust root.
const TrustFirst = "first"

// resolver is the engine's trust resolver, made once: its verdicts are
// memoised across passes, so a steady state asks GitHub nothing.
func (e *Engine) resolver(ctx context.Context) (*trust.Resolver, error) {
	e.trustMu.Lock()
	defer e.trustMu.Unlock()
	if e.trust != nil {
		return e.trust, nil
	}
	root := e.TrustRoot
	if root == "" {
		// A recorded bootstrap is honoured only for the first policy
		// commit: that names a fact of main's history, which anyone who
		// can push notes could not change (docs/trust.md).
		trusts, err := e.Repo.PolicyTrusts(ctx)
		if err != nil {
			return nil, err
		}
		changes, err := e.Repo.PolicyChanges(ctx)
		if err != nil {
			return nil, err
		}
		for _, t := range trusts {
			if t.How == gitrepo.TrustBootstrap && len(changes) > 0 && t.Commit == changes[0].Commit.String() {
				root = TrustFirst
			}
		}
	}
	e.trustSrc = &gitSource{repo: e.Repo}
	r := &trust.Resolver{Source: e.trustSrc, Root: root}
	if e.Verifier != nil {
		r.Verify = e.verifyPolicyChange
		e.Verifier.Policy = policySource{r}
	}
	e.trust = r
	return r, nil
}

// verifyPolicyChange verifies a policy change through its pull request,
// judged by the trusted policy at its base (the verifier asks the
// resolver through its PolicySource).
func (e *Engine) verifyPolicyChange(ctx context.Context, ch trust.Change) (trust.Verdict, error) {
	in := approval.PolicyChangeInput{Commit: ch.Commit, Parents: ch.Parents}
	for _, f := range ch.Files {
		in.Changes = append(in.Changes, approval.PolicyFileChange{Path: f, Blob: ch.State[f], ParentBlob: ch.Before[f]})
	}
	vctx, cancel := e.gitHubContext(ctx)
	defer cancel()
	ev, err := e.Verifier.VerifyPolicyChange(vctx, in)
	if err != nil {
		return trust.Verdict{}, err
	}
	v := trust.Verdict{Trusted: ev.Verified, PullRequest: ev.PullRequest, Reasons: ev.Reasons}
	if ev.PullRequest != 0 {
		v.How = fmt.Sprintf("pull request #%d", ev.PullRequest)
	}
	for _, f := range ev.Files {
		for _, a := range f.Approvers {
			v.Approvers = append(v.Approvers, a.Login)
		}
	}
	// A direct push GitHub has not linked to its pull request yet may
	// still verify: ask again next pass rather than remember "no".
	v.Retry = !ev.Verified && ev.PullRequest == 0 && ev.CheckedAt.Sub(e.now()) > -approval.RecheckWindow
	return v, nil
}

// policySource answers the verifier's question "which policy judged this
// commit" with the trusted one.
type policySource struct{ r *trust.Resolver }

var _ approval.PolicySource = policySource{}

func (s policySource) PolicyAt(ctx context.Context, commit string) (approval.Policy, error) {
	p, err := s.r.PolicyAt(ctx, commit)
	if errors.Is(err, trust.ErrNoRoot) {
		return approval.Policy{Commit: commit, ConfigReason: "no verified policy: " + err.Error(), Blobs: map[string]string{}}, nil
	}
	if err != nil {
		return approval.Policy{}, err
	}
	out := approval.Policy{Config: p.Config, Owners: p.Owners, Commit: p.Commit, Blobs: map[string]string{}}
	for _, f := range gitgrant.PolicyFiles {
		out.Blobs[f] = p.State[f]
	}
	if p.Config == nil {
		out.ConfigReason = fmt.Sprintf("no valid verified %s at %s", gitgrant.ConfigPath, short(commit))
	}
	return out, nil
}

// gitSource is trust's view of the repository: main's policy changes and
// first-parent depths, remembered per head.
type gitSource struct {
	repo *gitrepo.Repo

	mu     sync.Mutex
	head   gitrepo.Hash
	depths map[string]int
	// pinned, when set, is main's head for every question: the commit
	// the running plan read. A plan verifies every request against the
	// one main it planned from, without reading the ref once per request.
	pinned gitrepo.Hash
	// cands are the candidates of candHead, asked for once per request
	// and more while a plan is pinned: computed once per head.
	cands    []trust.Candidate
	candHead gitrepo.Hash
}

// pin makes h main's head until pin(ZeroHash).
func (s *gitSource) pin(h gitrepo.Hash) {
	s.mu.Lock()
	s.pinned = h
	s.mu.Unlock()
}

func (s *gitSource) Candidates(ctx context.Context) ([]trust.Candidate, error) {
	s.mu.Lock()
	pinned, cands := s.pinned, s.cands
	known := !pinned.IsZero() && s.candHead == pinned
	s.mu.Unlock()
	if known {
		return cands, nil // read, never changed, by the resolver
	}
	cands, err := s.candidates(ctx)
	if err == nil && !pinned.IsZero() {
		s.mu.Lock()
		if s.pinned == pinned {
			s.cands, s.candHead = cands, pinned
		}
		s.mu.Unlock()
	}
	return cands, err
}

func (s *gitSource) candidates(ctx context.Context) ([]trust.Candidate, error) {
	changes, err := s.repo.PolicyChanges(ctx)
	if err != nil {
		return nil, err
	}
	depths, err := s.chain(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]trust.Candidate, 0, len(changes))
	for _, c := range changes {
		d, ok := depths[c.Commit.String()]
		if !ok {
			return nil, fmt.Errorf("trust: policy change %s is not on main's first-parent history", short(c.Commit.String()))
		}
		cand := trust.Candidate{Commit: c.Commit.String(), Depth: d, State: trust.State(c.State), Before: trust.State(c.ParentState)}
		for _, p := range c.Parents {
			cand.Parents = append(cand.Parents, p.String())
		}
		out = append(out, cand)
	}
	return out, nil
}

func (s *gitSource) Depth(ctx context.Context, commit string) (int, bool, error) {
	depths, err := s.chain(ctx)
	if err != nil {
		return 0, false, err
	}
	if d, ok := depths[commit]; ok {
		return d, true, nil
	}
	// Not on main's first-parent history (a pull request's base on a side
	// branch): judge it by its nearest first-parent ancestor that is.
	chain, _, err := s.repo.FirstParents(ctx, gitrepo.ParseHash(commit), gitrepo.ZeroHash)
	if err != nil {
		return 0, false, nil // not in this clone: nothing to judge it by
	}
	for _, c := range chain {
		if d, ok := depths[c.Hash.String()]; ok {
			return d, true, nil
		}
	}
	return 0, false, nil
}

func (s *gitSource) Blob(hash string) ([]byte, error) {
	return s.repo.ReadBlob(gitrepo.ParseHash(hash))
}

// chain maps every first-parent commit of main to its depth (the root is
// 0), extending the last answer when main only moved forward.
func (s *gitSource) chain(ctx context.Context) (map[string]int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	head := s.pinned
	if head.IsZero() {
		var err error
		if head, err = s.repo.MainRef(); err != nil {
			return nil, err
		}
	}
	if head == s.head && s.depths != nil {
		return s.depths, nil
	}
	chain, found, err := s.repo.FirstParents(ctx, head, s.head)
	if err != nil {
		return nil, err
	}
	depths := s.depths
	base := 0
	if found && depths != nil {
		base = depths[s.head.String()] + 1
		next := make(map[string]int, len(depths)+len(chain))
		for k, v := range depths {
			next[k] = v
		}
		depths = next
	} else {
		if !s.head.IsZero() {
			// main was rewritten: start over from the root.
			if chain, _, err = s.repo.FirstParents(ctx, head, gitrepo.ZeroHash); err != nil {
				return nil, err
			}
		}
		depths = make(map[string]int, len(chain))
	}
	for i, c := range chain { // newest first
		depths[c.Hash.String()] = base + len(chain) - 1 - i
	}
	s.head, s.depths = head, depths
	return depths, nil
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}

// Trust reports the verified policy in force at the head of main and the
// policy changes since that are not in force (`gitgrant trust`).
func (e *Engine) Trust(ctx context.Context) (trust.Report, error) {
	r, err := e.resolver(ctx)
	if err != nil {
		return trust.Report{}, err
	}
	head, err := e.Repo.MainRef()
	if err != nil {
		return trust.Report{}, err
	}
	return r.At(ctx, head.String())
}

// RecordFirstRoot records, and pushes, that the first policy commit of
// main is the trust root: `gitgrant trust --root first`, done once per
// repository. It returns that commit. A record naming any other commit
// would not be honoured (anyone who can push notes could forge one), so
// there is no such record; name other roots with GITGRANT_TRUST_ROOT.
func (e *Engine) RecordFirstRoot(ctx context.Context, o gitrepo.CommitOptions) (string, error) {
	changes, err := e.Repo.PolicyChanges(ctx)
	if err != nil {
		return "", err
	}
	if len(changes) == 0 {
		return "", fmt.Errorf("main has no %s or CODEOWNERS yet: commit the policy first", gitgrant.ConfigPath)
	}
	first := changes[0]
	rec := gitrepo.NoteRecord{Event: gitrepo.EventPolicyTrusted, Policy: &gitrepo.PolicyTrust{Commit: first.Commit.String(), State: first.State, How: gitrepo.TrustBootstrap}}
	if err := e.Repo.RecordNotes(ctx, []gitrepo.Note{{Commit: first.Commit, Record: rec}}, true, o); err != nil {
		return "", err
	}
	e.trustMu.Lock()
	e.trust = nil // the next question reads the new record
	e.trustMu.Unlock()
	return first.Commit.String(), nil
}

// pinTrust pins trust's view of main to head for the plan under way, and
// returns the source to unpin (nil when there is no resolver yet).
func (e *Engine) pinTrust(ctx context.Context, head gitrepo.Hash) *gitSource {
	if _, err := e.resolver(ctx); err != nil {
		return nil // the plan reports it when it asks
	}
	e.trustMu.Lock()
	src := e.trustSrc
	e.trustMu.Unlock()
	if src != nil {
		src.pin(head)
	}
	return src
}

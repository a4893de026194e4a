package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"time"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/approval"
	"github.com/gitgrant/gitgrant/internal/gitrepo"
	"github.com/gitgrant/gitgrant/providers"
	"github.com/gitgrant/gitgrant/reconciler"
)

// recordBefore writes, and pushes, what this pass is about to grant before
// any grant call (rule 14): the ledger lines of grants and of memberships
// newly backed by another request, the first sightings windows depend on
// (rule 6), and the nonce of each emergency's follow-up issue. Nothing to
// record writes nothing.
func (e *Engine) recordBefore(ctx context.Context, p *Pass, o ApplyOptions) (int, error) {
	policy := ""
	if p.Trust.Policy.ConfigCommit != "" {
		policy = p.Trust.Policy.ConfigCommit
	}
	byRequest := map[string][]gitgrant.Holding{}
	var order []string
	hold := func(h gitgrant.Holding) {
		h.Policy = policy
		if _, ok := byRequest[h.Request]; !ok {
			order = append(order, h.Request)
		}
		byRequest[h.Request] = append(byRequest[h.Request], h)
		// The ledger keeps a member only as long as gitgrant has seen the
		// content that backs it (ledgerFor).
		p.sightFile(h.Request, h.Blob, gitrepo.ParseHash(h.Commit))
	}
	for _, a := range p.Plan.Actions {
		if a.Op == gitgrant.OpGrant && a.Holding != nil {
			hold(*a.Holding)
		}
	}
	for _, h := range p.Plan.Record {
		hold(h)
	}
	var notes []gitrepo.Note
	for _, path := range order {
		hs := byRequest[path]
		req := p.request(path)
		en := req.Entry
		commit := gitrepo.ParseHash(hs[0].Commit)
		if !req.Provenance.Commit.IsZero() {
			commit = req.Provenance.Commit
		}
		rec := gitrepo.NoteRecord{Event: gitrepo.EventGranted, Request: path, Blob: hs[0].Blob, Requester: en.Requester,
			Emergency: en.Emergency, Holdings: hs, GrantedAt: p.At.UTC()}
		for _, g := range en.Grants {
			rec.Grants = append(rec.Grants, gitgrant.GrantRef{Provider: g.Provider, Role: g.Role})
			if g.Window.End.After(rec.ExpiresAt) {
				rec.ExpiresAt = g.Window.End
			}
		}
		rec.PullRequest = req.PullRequest()
		if ev := req.Evidence; ev != nil {
			for _, a := range ev.Approvers {
				rec.ApprovedBy = append(rec.ApprovedBy, a.Login)
				rec.Approvals = append(rec.Approvals, gitrepo.Approval{Reviewer: a.Login, ReviewID: a.ReviewID, CommitID: ev.HeadCommit, SubmittedAt: a.SubmittedAt, Via: a.Via})
			}
			if ev.Emergency {
				key := path + "@" + commit.String()
				if p.markers[key] == "" {
					nonce, err := approval.NewNonce()
					if err != nil {
						return 0, err
					}
					p.markers[key], rec.Marker = nonce, nonce
				}
			}
		}
		notes = append(notes, gitrepo.Note{Commit: commit, Record: rec})
	}
	notes = append(notes, p.sightings()...)
	if len(notes) == 0 {
		return 0, nil
	}
	if err := e.Repo.RecordNotes(ctx, notes, true, o.Commit); err != nil {
		return 0, err
	}
	// Recorded: later passes of this process read them from the notes.
	for k := range p.seen {
		p.firstSeen[k] = p.At
	}
	p.seen = map[string]sighting{}
	return len(notes), nil
}

// sightings are the first sightings this pass made, as seen records on
// the commits they are about.
func (p *Pass) sightings() []gitrepo.Note {
	byCommit := map[gitrepo.Hash][]gitrepo.Sighting{}
	keys := make([]string, 0, len(p.seen))
	for k := range p.seen {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		s := p.seen[k]
		byCommit[s.on] = append(byCommit[s.on], s.what)
	}
	var out []gitrepo.Note
	for c, ss := range byCommit {
		out = append(out, gitrepo.Note{Commit: c, Record: gitrepo.NoteRecord{Event: gitrepo.EventSeen, Seen: ss, SeenAt: p.At.UTC()}})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Commit.String() < out[j].Commit.String() })
	return out
}

// recordAfter turns successful revocations into revoked records that end
// their ledger lines, dated when the pass started applying (a grant an
// overlapping reconciler records during the call is not ended by it), and
// groups what happened by request for feedback.
func (e *Engine) recordAfter(p *Pass, res reconciler.Result, started time.Time) (notes []gitrepo.Note, granted, revoked map[string][]gitgrant.Action) {
	granted, revoked = map[string][]gitgrant.Action{}, map[string][]gitgrant.Action{}
	ended := map[string][]gitgrant.MemberKey{}
	commits := map[string]gitrepo.Hash{}
	for _, o := range res.Outcomes {
		a := o.Action
		if o.Err != nil {
			continue
		}
		switch a.Op {
		case gitgrant.OpGrant:
			if a.Request != "" {
				granted[a.Request] = append(granted[a.Request], a)
			}
		case gitgrant.OpRevoke:
			if a.Request != "" {
				revoked[a.Request] = append(revoked[a.Request], a)
			}
			if a.Holding == nil {
				continue // drift: gitgrant never recorded it
			}
			path := a.Holding.Request
			ended[path] = append(ended[path], a.Holding.MemberKey)
			if prov := p.request(path).Provenance; prov.Blob.String() == a.Holding.Blob {
				commits[path] = prov.Commit
			} else if _, ok := commits[path]; !ok {
				commits[path] = gitrepo.ParseHash(a.Holding.Commit)
			}
		}
	}
	paths := make([]string, 0, len(ended))
	for path := range ended {
		paths = append(paths, path)
	}
	sort.Strings(paths)
	for _, path := range paths {
		rec := gitrepo.NoteRecord{Event: gitrepo.EventRevoked, Request: path, Ended: ended[path], RevokedAt: started, RecordedAt: started}
		for _, k := range ended[path] {
			rec.Grants = append(rec.Grants, gitgrant.GrantRef{Provider: k.Provider, Role: k.Role})
		}
		if req := p.request(path); !req.Provenance.Commit.IsZero() {
			rec.Blob, rec.PullRequest, rec.Requester = req.Provenance.Blob.String(), req.PullRequest(), req.Entry.Requester
		}
		notes = append(notes, gitrepo.Note{Commit: commits[path], Record: rec})
	}
	return notes, granted, revoked
}

// departed returns the applier's provider chooser for revocations the
// current configuration cannot reach (the role, its target or the provider
// changed or left): such a holding is revoked through the provider as the
// verified policy it was granted under configured it (rule 14). Settings of
// a policy that was never verified are never used: they could send a
// secret elsewhere.
func (e *Engine) departed(ctx context.Context, p *Pass) func(gitgrant.Action) providers.Provider {
	return func(a gitgrant.Action) providers.Provider {
		h := a.Holding
		if a.Op != gitgrant.OpRevoke || h == nil || reconciler.Reachable(p.Config, *h) {
			return nil
		}
		key := h.Provider + "@" + h.Policy
		if prov, ok := p.open[key]; ok {
			return prov
		}
		unavailable := unreachable{fmt.Errorf("provider %s as of policy %s cannot be opened to revoke %s", h.Provider, short(h.Policy), h.MemberKey)}
		if h.Policy == "" {
			return unavailable
		}
		r, err := e.resolver(ctx)
		if err != nil {
			return unreachable{err}
		}
		cfg, err := r.ConfigOf(ctx, h.Policy)
		if err != nil {
			return unreachable{err}
		}
		pc, ok := cfg.Providers[h.Provider]
		if !ok {
			return unavailable
		}
		octx, cancel := context.WithTimeout(ctx, pc.Timeout())
		defer cancel()
		prov, err := e.Registry.Open(octx, pc, e.deps())
		if err != nil {
			return unreachable{err}
		}
		p.open[key] = prov
		return prov
	}
}

// unreachable is a provider that cannot be opened: every call fails with
// why, so the revocation is retried next pass and reported meanwhile.
type unreachable struct{ err error }

func (u unreachable) Members(context.Context, string) ([]providers.Member, error) { return nil, u.err }
func (u unreachable) Grant(context.Context, providers.Grant) error                { return u.err }
func (u unreachable) Revoke(context.Context, string, string) error                { return u.err }
func (u unreachable) Close() error                                                { return nil }

// followUps opens (or finds) the follow-up issue of every emergency grant
// in force, once per process: never in a dry run, which never calls Apply
// (rule 16).
func (e *Engine) followUps(ctx context.Context, p *Pass, o ApplyOptions) error {
	if e.Verifier == nil || e.GitHub == nil {
		return nil
	}
	var errs []error
	for _, path := range slices.Sorted(maps.Keys(p.Requests)) {
		r := p.Requests[path]
		ev, en := r.Evidence, r.Entry
		if ev == nil || !ev.Emergency || !ev.Approved || r.File.Request == nil || (en.Status != gitgrant.StatusActive && en.Status != gitgrant.StatusExpired) {
			continue
		}
		key := path + "@" + r.Provenance.Commit.String()
		nonce := p.markers[key]
		if nonce == "" {
			continue // recorded with the grant; none means it was never granted
		}
		e.trustMu.Lock()
		done := e.followedUp[key]
		e.trustMu.Unlock()
		if done != 0 {
			continue
		}
		n, err := e.Verifier.EnsureFollowUp(ctx, e.input(r.File.Request, r.Provenance), *ev, nonce)
		if err != nil {
			errs = append(errs, fmt.Errorf("emergency follow-up issue for %s: %w", path, err))
			continue
		}
		e.trustMu.Lock()
		if e.followedUp == nil {
			e.followedUp = map[string]int{}
		}
		e.followedUp[key] = n
		e.trustMu.Unlock()
	}
	return errors.Join(errs...)
}

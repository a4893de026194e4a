package engine

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/gitrepo"
	"github.com/gitgrant/gitgrant/providers"
	"github.com/gitgrant/gitgrant/reconciler"
)

// Expiries is what a clean full pass leaves for the expiry fast path: the
// memberships gitgrant holds, each with the end of the last verified
// window that covers it (its until), and when the next change that needs
// a full pass is due (a window's start, a reminder, any other ledger
// end). Until then, access ends exactly at the untils: no start can come
// between, so the windows that cover a membership later are the ones that
// covered it at the pass. ExpireDeferred revokes from it without reading GitHub
// or the remote; it only ever removes access, and only access whose until
// the last full pass computed.
type Expiries struct {
	base     *Pass
	items    []expiry // by until, then key
	done     int      // items before done are revoked
	nextFull time.Time
}

type expiry struct {
	until time.Time
	h     gitgrant.Holding
}

// ErrFullPassDue says a change the fast path cannot make is due: run a
// full pass.
var ErrFullPassDue = errors.New("a change other than the end of a window is due: a full pass must run")

// Expiries returns the fast-path state of p after Apply succeeded with
// out, or nil when anything about the pass is uncertain (a problem, no
// verified policy, a stale main, an unlisted role, a brake, a failed
// action, a desired membership not held): the next change then runs a
// full pass, as always.
func (e *Engine) Expiries(p *Pass, out Outcome) *Expiries {
	if p == nil || p.desiredOnly || p.PolicyErr != nil || p.Stale != nil || p.Config == nil || len(p.Problems) > 0 ||
		len(p.Plan.Unobserved) > 0 || len(p.Plan.Held) > 0 || out.Result.Err() != nil {
		return nil
	}
	at := p.At
	x := &Expiries{base: &Pass{At: at, Config: p.Config, Requests: p.Requests, Trust: p.Trust, Plan: gitgrant.Plan{Entries: p.Plan.Entries}}}
	later := func(t time.Time) {
		if t.After(at) && (x.nextFull.IsZero() || t.Before(x.nextFull)) {
			x.nextFull = t
		}
	}
	for _, t := range reminderTimes(p) {
		later(t)
	}
	// What the pass left held: the ledger, with the lines it recorded
	// (grants and records, written before the calls) and without what it
	// revoked.
	policy := p.Trust.Policy.ConfigCommit
	held := make(gitgrant.Ledger, len(p.Ledger))
	for k, h := range p.Ledger {
		held[k] = h
	}
	for _, h := range p.Plan.Record {
		h.Policy = policy
		held[h.MemberKey] = h
	}
	for _, o := range out.Result.Outcomes {
		a := o.Action
		switch {
		case a.Op == gitgrant.OpGrant && a.Holding != nil:
			h := *a.Holding
			h.Policy = policy
			held[h.MemberKey] = h
		case a.Op == gitgrant.OpRevoke && a.Holding != nil:
			delete(held, a.Holding.MemberKey)
		}
	}
	// The memberships the verified windows hold now, until the latest
	// end (as the diff decides them).
	until := map[gitgrant.MemberKey]time.Time{}
	for _, en := range p.Plan.Entries {
		approved := en.Status == gitgrant.StatusActive || en.Status == gitgrant.StatusPending || en.Status == gitgrant.StatusExpired
		for _, g := range en.Grants {
			if en.Status != gitgrant.StatusRejected {
				later(g.Window.Start)
			}
			if !approved || g.Principal == "" || !g.Window.Contains(at) {
				continue
			}
			k := gitgrant.MemberKey{Provider: g.Provider, Role: g.Role, Principal: g.Principal}
			if cur, ok := until[k]; !ok || g.Window.End.After(cur) {
				until[k] = g.Window.End
			}
		}
	}
	for k, end := range until {
		pc := p.Config.Providers[k.Provider]
		switch h, ok := held[k]; {
		case p.Config.IsEphemeral(k.Provider, k.Role):
			later(end) // accounts: the full pass handles them
		case pc.IsStanding(k.Principal, k.Role):
			// never revoked
		case !ok:
			return nil // desired and not held (a grant waits): full passes only
		default:
			x.items = append(x.items, expiry{until: end, h: h})
		}
		delete(held, k)
	}
	// Every other holding (kept for an unverified request, an account,
	// a standing member's) is left to full passes, at its recorded end.
	for _, h := range e.ledgerFor(&Pass{At: at, Config: p.Config, Ledger: held, firstSeen: p.firstSeen}) {
		if pc := p.Config.Providers[h.Provider]; !pc.IsStanding(h.Principal, h.Role) {
			later(h.End)
		}
	}
	sort.Slice(x.items, func(i, j int) bool {
		a, b := x.items[i], x.items[j]
		if !a.until.Equal(b.until) {
			return a.until.Before(b.until)
		}
		return a.h.MemberKey.String() < b.h.MemberKey.String()
	})
	return x
}

// Next is when the fast path next has something due: the earliest until
// not yet revoked, or the next change that needs a full pass; zero when
// nothing is scheduled.
func (x *Expiries) Next() time.Time {
	next := x.nextFull
	if x.done < len(x.items) {
		if u := x.items[x.done].until; next.IsZero() || u.Before(next) {
			next = u
		}
	}
	return next
}

// Handles reports whether what is due at now is only ends of windows the
// fast path knows: false once a change that needs a full pass is due.
func (x *Expiries) Handles(now time.Time) bool {
	return x != nil && (x.nextFull.IsZero() || now.Before(x.nextFull))
}

// Expired is what one fast expiry step did.
type Expired struct {
	// Plan holds the revocations (and the last full pass's entries, for
	// metrics).
	Plan   gitgrant.Plan
	Result reconciler.Result
	// Records are the ledger records of the revocations that succeeded,
	// for RecordExpired.
	Records []gitrepo.Note
}

// RecordExpired writes (and pushes) the records of fast-path revocations,
// of one step or of several, as one notes write.
func (e *Engine) RecordExpired(ctx context.Context, records []gitrepo.Note, o ApplyOptions) error {
	if err := e.Repo.RecordNotes(ctx, records, true, o.Commit); err != nil {
		return fmt.Errorf("recording revocations: %w", err)
	}
	return nil
}

// ExpireDeferred is the expiry fast path: it revokes the memberships of
// x whose until has come, through providers opened with the verified
// settings of the last full pass. It reads neither GitHub nor main. The
// caller records Records (RecordExpired, one notes write for one or
// several steps) and must run a full pass before anything else reads the
// ledger, should that write fail. Any error (a provider that fails or
// cannot be opened, a full pass due) means: run a full pass, which
// repairs whatever is left (a revoked member whose ledger line still
// holds is revoked again, idempotently, and recorded). Cleanup commits,
// pull request comments and drift wait for that pass.
func (e *Engine) ExpireDeferred(ctx context.Context, x *Expiries) (Expired, error) {
	now := e.now()
	if !x.Handles(now) {
		return Expired{}, ErrFullPassDue
	}
	end := x.done
	for end < len(x.items) && !x.items[end].until.After(now) {
		end++
	}
	step := *x.base
	step.open = map[string]providers.Provider{}
	defer step.Close()
	plan := gitgrant.Plan{At: now, Entries: x.base.Plan.Entries, Actions: []gitgrant.Action{}}
	for _, it := range x.items[x.done:end] {
		h := it.h
		plan.Actions = append(plan.Actions, gitgrant.Action{Op: gitgrant.OpRevoke, Provider: h.Provider, Role: h.Role, Principal: h.Principal,
			Cause: gitgrant.CauseExpired, Expired: true, Reason: fmt.Sprintf("%s expired at %s", h.Request, it.until.UTC().Format(time.RFC3339)),
			Request: h.Request, Holding: &h})
		if _, ok := step.open[h.Provider]; ok || !reconciler.Reachable(step.Config, h) {
			continue
		}
		pc := step.Config.Providers[h.Provider]
		octx, cancel := context.WithTimeout(ctx, pc.Timeout())
		prov, err := e.Registry.Open(octx, pc, e.deps())
		cancel()
		if err != nil {
			return Expired{Plan: plan}, err
		}
		step.open[h.Provider] = prov
	}
	out := Expired{Plan: plan}
	if len(plan.Actions) == 0 {
		return out, nil
	}
	started := now.UTC()
	out.Result = e.executor(ctx, &step).Execute(ctx, plan)
	var revoked map[string][]gitgrant.Action
	out.Records, _, revoked = e.recordAfter(&step, out.Result, started)
	e.remember(revoked, started)
	if err := out.Result.Err(); err != nil {
		return out, err
	}
	x.done = end
	return out, nil
}

// fastRevoked is what the fast path revoked for a request, for the next
// full pass to tell its pull request and date its cleanup by.
type fastRevoked struct {
	at      time.Time
	actions []gitgrant.Action
}

func (e *Engine) remember(revoked map[string][]gitgrant.Action, at time.Time) {
	if len(revoked) == 0 {
		return
	}
	e.trustMu.Lock()
	defer e.trustMu.Unlock()
	if e.expired == nil {
		e.expired = map[string]fastRevoked{}
	}
	for path, acts := range revoked {
		r := e.expired[path]
		r.at = at
		r.actions = append(r.actions, acts...)
		e.expired[path] = r
	}
}

// takeExpired hands the fast path's revocations to a full pass, once.
func (e *Engine) takeExpired() map[string]fastRevoked {
	e.trustMu.Lock()
	defer e.trustMu.Unlock()
	out := e.expired
	e.expired = nil
	return out
}

package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/gitrepo"
	"github.com/gitgrant/gitgrant/internal/render"
	"github.com/gitgrant/gitgrant/reconciler"
)

// ApplyOptions steer what a pass may do beyond grants and revocations.
type ApplyOptions struct {
	// Force applies a plan the removal brake refused.
	Force bool
	// BrakeShare and BrakeMin tune the brake (defaults 0.25 and 3).
	BrakeShare float64
	BrakeMin   int
	// Cleanup writes notes and removes expired files in a commit pushed to
	// the remote (or a branch and pull request, by cleanup.mode).
	Cleanup bool
	// Commit carries the committer, signer and retry bound for it.
	Commit gitrepo.CommitOptions
	// CleanupBranch is the branch for cleanup.mode: pull-request.
	CleanupBranch string
}

// Outcome reports what applying a pass did.
type Outcome struct {
	Result  reconciler.Result
	Cleanup gitrepo.CleanupResult
	// CleanupPR is the pull request opened or updated for the cleanup.
	CleanupPR int
	Notes     int
}

// Apply carries out a planned pass: the removal brake (per role, drift
// and policy revocations only), the ledger records of what is about to be
// granted (pushed before any grant, so a crash never loses one), the
// actions, the records of what was revoked, the cleanup commit, emergency
// follow-up issues and feedback on pull requests. A failed action leaves
// its request file in place so the next pass retries. A brake that held
// actions back is reported (wrapping reconciler.ErrBrake) after
// everything else was applied.
func (e *Engine) Apply(ctx context.Context, p *Pass, o ApplyOptions) (Outcome, error) {
	var out Outcome
	if p.desiredOnly {
		return out, errors.New("engine: a pass from Desired observed no provider and cannot be applied")
	}
	share, minCount := o.BrakeShare, o.BrakeMin
	if share == 0 {
		share, minCount = 0.25, 3
	}
	var brakeErr error
	if !o.Force {
		p.Plan, brakeErr = reconciler.Brake(p.Plan, share, minCount)
	}
	started := e.now().UTC()
	var errs []error
	if p.Stale != nil {
		// Rule 7: main may be out of date; revoke, grant nothing, write no
		// commit (the remote is unreachable anyway).
		p.Plan = revocationsOnly(p.Plan)
		o.Cleanup = false
		errs = append(errs, fmt.Errorf("the remote could not be fetched; only revocations were applied: %w", p.Stale))
	}
	keys, err := e.checkRecipients(ctx, p)
	errs = append(errs, err)
	if err := e.nameAccounts(p); err != nil {
		errs = append(errs, err)
		p.Plan = revocationsOnly(p.Plan)
	}
	if n, err := e.recordBefore(ctx, p, o); err != nil {
		// What is about to be granted could not be recorded: grant
		// nothing, revoke as planned (rule 15).
		errs = append(errs, fmt.Errorf("recording the ledger before granting (grants wait for the next pass): %w", err))
		p.Plan = revocationsOnly(p.Plan)
	} else {
		out.Notes += n // the grant records, written before the grants
	}
	out.Result = e.executor(ctx, p).Execute(ctx, p.Plan)
	errs = append(errs, e.handOff(ctx, p, &out.Result, keys), out.Result.Err())

	now := e.now().UTC()
	notes, granted, revoked := e.recordAfter(p, out.Result, started)
	fast := e.takeExpired() // told and dated here: the fast path leaves both to a full pass
	for path, r := range fast {
		revoked[path] = append(r.actions, revoked[path]...)
	}
	notes = append(notes, driftRecords(p, out.Result, started)...)
	nctx, ncancel := e.gitHubContext(ctx)
	told, err := e.notify(nctx, p)
	ncancel()
	notes = append(notes, told...)
	notes = append(notes, p.told...)
	notes = append(notes, e.observeUsage(ctx, p)...)
	errs = append(errs, err)
	out.Notes += len(notes)
	if o.Cleanup {
		removals := e.removals(p, out.Result, now)
		for i, r := range removals {
			if f, ok := fast[r.Path]; ok && r.RevokedAt.IsZero() {
				removals[i].RevokedAt = f.at
			}
		}
		co := o.Commit
		co.Notes = notes
		if p.Config.Cleanup.Mode == gitgrant.CleanupPullRequest {
			co.Branch = o.CleanupBranch
			if co.Branch == "" {
				co.Branch = "gitgrant/cleanup"
			}
		}
		snapData := map[string]string{}
		for _, f := range p.Snapshot.Requests {
			snapData[f.Path] = string(f.Data)
		}
		res, err := e.Repo.Cleanup(ctx, func(s *gitrepo.Snapshot) ([]gitrepo.Removal, error) {
			// Re-judged on every fetch: a file changed since this pass
			// planned (an extension) is not removed.
			now := map[string]string{}
			for _, f := range s.Requests {
				now[f.Path] = string(f.Data)
			}
			var keep []gitrepo.Removal
			for _, r := range removals {
				if d, ok := now[r.Path]; ok && d == snapData[r.Path] {
					keep = append(keep, r)
				}
			}
			return keep, nil
		}, co)
		out.Cleanup = res
		if err != nil {
			errs = append(errs, fmt.Errorf("cleanup: %w", err))
		} else if co.Branch != "" && len(res.Removed) > 0 && e.GitHub != nil {
			pctx, cancel := e.gitHubContext(ctx)
			n, _, err := e.GitHub.EnsurePullRequest(pctx, co.Branch, e.Repo.Branch(), "gitgrant: remove expired access requests",
				"Removes request files whose access has expired and been revoked. Merge to keep the repository's requests current; the audit trail is in the commit trailers.")
			cancel()
			out.CleanupPR = n
			errs = append(errs, err)
		}
	} else if len(notes) > 0 {
		// No cleanup commit to carry them: the ledger's ends still go out.
		if err := e.Repo.RecordNotes(ctx, notes, true, o.Commit); err != nil {
			errs = append(errs, fmt.Errorf("recording revocations: %w", err))
		}
	}
	fctx, cancel := e.gitHubContext(ctx)
	defer cancel()
	errs = append(errs, e.followUps(fctx, p, o))
	errs = append(errs, e.feedback(fctx, p, granted, revoked))
	errs = append(errs, brakeErr)
	return out, errors.Join(errs...)
}

// executor applies p's actions through the providers p opened, each call
// under its provider's deadline.
func (e *Engine) executor(ctx context.Context, p *Pass) *reconciler.Executor {
	return &reconciler.Executor{Providers: p.open, Retry: e.Retry, Logger: e.logger(), Clock: e.Clock,
		CallTimeout: func(provider string) time.Duration {
			if pc, ok := p.Config.Providers[provider]; ok {
				return pc.Timeout()
			}
			return gitgrant.DefaultCallTimeout
		},
		ProviderFor: e.departed(ctx, p),
	}
}

// revocationsOnly drops the grants (and the ledger lines to record
// without a call) from a plan.
func revocationsOnly(plan gitgrant.Plan) gitgrant.Plan {
	var keep []gitgrant.Action
	for _, a := range plan.Actions {
		if a.Op != gitgrant.OpGrant {
			keep = append(keep, a)
		}
	}
	plan.Actions, plan.Record = keep, nil
	return plan
}

// removals are the expired requests whose access is gone: every revoke
// planned for them succeeded (none planned means already gone).
func (e *Engine) removals(p *Pass, res reconciler.Result, now time.Time) []gitrepo.Removal {
	failed := map[string]bool{}
	revokedAt := map[string]time.Time{}
	for _, o := range res.Outcomes {
		if o.Action.Op != gitgrant.OpRevoke || o.Action.Request == "" {
			continue
		}
		if o.Err != nil {
			failed[o.Action.Request] = true
		} else {
			revokedAt[o.Action.Request] = now
		}
	}
	var out []gitrepo.Removal
	for _, en := range p.Plan.Entries {
		if en.Status != gitgrant.StatusExpired || failed[en.Path] {
			continue
		}
		if _, unlisted := unobservedFor(p.Plan, en); unlisted {
			continue // cannot know the access is gone; keep the file
		}
		r := gitrepo.Removal{Path: en.Path, Requester: en.Requester, ApprovedBy: en.Approvers, RevokedAt: revokedAt[en.Path]}
		for _, g := range en.Grants {
			r.Grants = append(r.Grants, gitgrant.GrantRef{Provider: g.Provider, Role: g.Role})
			if g.Window.End.After(r.ExpiredAt) {
				r.ExpiredAt = g.Window.End
			}
			if r.GrantedAt.IsZero() || g.Window.Start.Before(r.GrantedAt) {
				r.GrantedAt = g.Window.Start
			}
		}
		r.PullRequest = p.request(en.Path).PullRequest()
		out = append(out, r)
	}
	return out
}

func unobservedFor(plan gitgrant.Plan, en gitgrant.Entry) (string, bool) {
	for _, g := range en.Grants {
		key := g.Provider + "/" + g.Role
		for _, u := range plan.Unobserved {
			if u == key {
				return key, true
			}
		}
	}
	return "", false
}

// feedback tells each request's pull request what happened to it.
func (e *Engine) feedback(ctx context.Context, p *Pass, granted, revoked map[string][]gitgrant.Action) error {
	if e.GitHub == nil {
		return nil
	}
	var errs []error
	var notes map[gitrepo.Hash][]gitrepo.NoteRecord
	say := func(path string, acts []gitgrant.Action) {
		pr := p.request(path).PullRequest()
		if pr == 0 {
			// The file left main (deleted early, or cleaned up): the
			// ledger's grant record names the pull request it came by.
			if notes == nil {
				notes, _ = e.Repo.Notes()
			}
			pr = grantedBy(notes, path, acts)
		}
		if pr == 0 {
			return
		}
		changes := make([]render.AccessChange, 0, len(acts))
		for _, a := range acts {
			changes = append(changes, render.AccessChange{Op: a.Op, Provider: a.Provider, Role: a.Role, Principal: a.Principal,
				Until: a.Expires, At: e.now(), Cause: a.Cause})
		}
		var body strings.Builder
		render.AccessComment(&body, path, changes)
		if err := e.GitHub.Comment(ctx, pr, body.String()); err != nil {
			errs = append(errs, fmt.Errorf("commenting on pull request #%d: %w", pr, err))
		}
	}
	for _, path := range slices.Sorted(maps.Keys(granted)) {
		say(path, granted[path])
	}
	for _, path := range slices.Sorted(maps.Keys(revoked)) {
		say(path, revoked[path])
	}
	return errors.Join(errs...)
}

// grantedBy is the pull request gitgrant recorded when it granted what
// acts revoke for path, from the grant record on the commit each holding
// names; 0 when none is recorded.
func grantedBy(notes map[gitrepo.Hash][]gitrepo.NoteRecord, path string, acts []gitgrant.Action) int {
	for _, a := range acts {
		if a.Holding == nil || a.Holding.Commit == "" {
			continue
		}
		for _, rec := range notes[gitrepo.ParseHash(a.Holding.Commit)] {
			if rec.Event == gitrepo.EventGranted && rec.Request == path && rec.PullRequest != 0 {
				return rec.PullRequest
			}
		}
	}
	return 0
}

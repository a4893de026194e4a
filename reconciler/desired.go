// Package reconciler turns request files into access and takes it away
// again. Its core is pure: Evaluate computes what access should exist from
// requests, approval evidence and the clock; Diff compares that with what
// providers report and returns a Plan. Applying a plan is separate, so the
// plan can be shown (gitgrant plan) exactly as it would be applied.
package reconciler

import (
	"fmt"
	"sort"
	"time"

	"github.com/gitgrant/gitgrant"
)

// Source is one valid request file with what is known about how it
// reached the main branch.
type Source struct {
	Request *gitgrant.Request
	// Evidence is the verified approval; nil when it could not be checked
	// (no GitHub credentials, or GitHub unreachable).
	Evidence *gitgrant.Evidence
	// CommittedAt is when the file's current content reached the main
	// branch according to git alone. It is used only when Evidence is nil,
	// for roles that need no approval, in a dry run without GitHub.
	CommittedAt time.Time
	// Blob and Commit name the file's content on main and the main commit
	// that brought it. They are copied to the entry: the ledger knows a
	// request by them, so an edited file backs nothing granted before.
	Blob, Commit string
	// Base and MergedOnto are the trusted configs at the base of the
	// request's pull request and at the main commit it was merged onto
	// (rule 1: the stricter wins). The request must hold under each as it
	// does under the config now: every grant maps to the same provider
	// type, role, target and principal, and its window ends at the
	// earliest any of their caps allows. Nil when there is no such commit
	// (a direct push) or it is not known.
	Base, MergedOnto *gitgrant.Config
}

// Options change how Evaluate trusts what it cannot verify.
type Options struct {
	// Offline is a dry run without GitHub credentials: requests whose roles
	// all need no approval are planned from the commit time git reports.
	// Never set it when applying: without evidence, grants pause (rule 7)
	// and a direct push grants nothing (rule 5).
	Offline bool
}

// Evaluate computes each request's status, windows and principals at now.
// It is a pure function of its arguments.
func Evaluate(cfg *gitgrant.Config, sources []Source, now time.Time, opts Options) []gitgrant.Entry {
	entries := make([]gitgrant.Entry, 0, len(sources))
	for _, s := range sources {
		entries = append(entries, evaluate(cfg, s, now, opts))
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Path < entries[j].Path })
	return entries
}

func evaluate(cfg *gitgrant.Config, s Source, now time.Time, opts Options) gitgrant.Entry {
	req := s.Request
	e := gitgrant.Entry{Path: req.Path, Requester: req.Requester, Subject: req.Subject, Emergency: req.Emergency, Evidence: s.Evidence, Blob: s.Blob, Commit: s.Commit}
	var problems []string // make the request unusable whatever its approval
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	// The clock starts at the merge time GitHub reports (rule 6); git's
	// commit time stands in only where nothing better exists, and then the
	// request is at best unverified or an offline preview.
	merged := s.CommittedAt
	if s.Evidence != nil && !s.Evidence.MergedAt.IsZero() {
		merged = s.Evidence.MergedAt
	}

	key, id, known := cfg.Identity(req.Beneficiary())
	if !known {
		add("%s is not in identities", req.Beneficiary())
	}
	others := s.others(cfg)
	needsApproval := false
	for _, g := range req.Grants {
		p, ok := cfg.Providers[g.Provider]
		role, roleOK := p.Roles[g.Role]
		if !ok || !roleOK {
			add("%s/%s is not declared in gitgrant.yaml", g.Provider, g.Role)
			continue
		}
		principal := cfg.GrantPrincipal(key, id, g.Provider, g.Role)
		if known && principal == "" {
			add("%s has no principal on %s", key, g.Provider)
			continue
		}
		if known {
			for _, o := range others {
				for _, why := range disagreements(cfg, o, req.Beneficiary(), g, principal) {
					add("%s", why)
				}
			}
		}
		needsApproval = needsApproval || role.Approvals > 0 || req.Emergency
		for _, o := range others {
			needsApproval = needsApproval || o.cfg.Providers[g.Provider].Roles[g.Role].Approvals > 0
		}
		w, clamped := req.Window(merged, tightestCap(cfg, others, req, g))
		e.Grants = append(e.Grants, gitgrant.DesiredGrant{Provider: g.Provider, Role: g.Role, Principal: principal, Window: w, Clamped: clamped})
	}

	ev := s.Evidence
	switch {
	case len(problems) > 0:
		e.Status, e.Reasons, e.ByPolicy = gitgrant.StatusRejected, dedupe(problems), true
		return e
	case ev != nil && !ev.Approved:
		e.Status, e.Reasons = gitgrant.StatusRejected, append([]string(nil), ev.Reasons...)
		if len(e.Reasons) == 0 {
			e.Reasons = []string{"approval was not verified"}
		}
		return e
	case ev != nil:
		for _, a := range ev.Approvers {
			e.Approvers = append(e.Approvers, a.Login)
		}
	case opts.Offline && !needsApproval:
		e.Reasons = []string{"offline: planned from the commit time; the merge is not verified without GitHub"}
	default:
		e.Reasons = []string{"approval not verified: GitHub was not consulted or could not be reached"}
		e.Status = gitgrant.StatusUnverified
		if ended(e.Grants, now) {
			e.Status = gitgrant.StatusExpired // expiry needs no approval to act on
		}
		return e
	}
	switch {
	case ended(e.Grants, now):
		e.Status = gitgrant.StatusExpired
	case !started(e.Grants, now):
		e.Status = gitgrant.StatusPending
	default:
		e.Status = gitgrant.StatusActive
	}
	return e
}

func ended(gs []gitgrant.DesiredGrant, now time.Time) bool {
	for _, g := range gs {
		if now.Before(g.Window.End) {
			return false
		}
	}
	return len(gs) > 0
}

func started(gs []gitgrant.DesiredGrant, now time.Time) bool {
	for _, g := range gs {
		if !now.Before(g.Window.Start) {
			return true
		}
	}
	return false
}

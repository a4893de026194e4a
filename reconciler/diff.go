package reconciler

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/providers"
)

// RoleKey names one managed role.
type RoleKey struct{ Provider, Role string }

func (k RoleKey) String() string { return k.Provider + "/" + k.Role }

// Observed is what providers reported: the members of each managed role.
// A role that could not be listed is absent, which is not the same as a
// role without members: Diff then only revokes what has certainly expired.
type Observed map[RoleKey][]providers.Member

// holder is why a principal should (or should no longer) hold a role.
type holder struct {
	active  bool
	end     time.Time // latest end among active grants
	path    string
	why     string // for a principal that should not hold it
	expired bool
	keep    bool // unverified: neither grant nor revoke until it can be checked
}

// Diff compares desired access with observed access and returns the plan.
// It is a pure function: same inputs, same plan, in a deterministic order —
// revocations first, then grants, then reports.
func Diff(cfg *gitgrant.Config, entries []gitgrant.Entry, observed Observed, now time.Time) gitgrant.Plan {
	plan := gitgrant.Plan{At: now, Entries: entries, Actions: []gitgrant.Action{}}
	want := desiredHolders(entries, now)

	var revokes, grants, reports []gitgrant.Action
	for _, key := range managedRoles(cfg) {
		p := cfg.Providers[key.Provider]
		members, listed := observed[key]
		plan.ObservedMembers += len(members)
		holders := want[key]
		have := make(map[string]providers.Member, len(members))
		for _, m := range members {
			have[m.Principal] = m
		}

		if !listed {
			plan.Unobserved = append(plan.Unobserved, key.String())
			// Without a member list only certain revocations are safe:
			// access whose window ended. Revoke is idempotent.
			for _, principal := range sortedPrincipals(holders) {
				h := holders[principal]
				if h.expired && !h.active && !h.keep && !p.IsStanding(principal, key.Role) {
					revokes = append(revokes, action(gitgrant.OpRevoke, key, principal, h.why, h.path, true))
				}
			}
			continue
		}

		for _, principal := range sortedMembers(members) {
			h, explained := holders[principal]
			switch {
			case p.IsStanding(principal, key.Role):
			case explained && (h.active || h.keep):
			case explained:
				revokes = append(revokes, action(gitgrant.OpRevoke, key, principal, h.why, h.path, h.expired))
			case p.RoleDrift(key.Role) == gitgrant.DriftReport:
				reports = append(reports, action(gitgrant.OpReport, key, principal, "drift: not backed by an active request or a standing entry (drift: report)", "", false))
			default:
				revokes = append(revokes, action(gitgrant.OpRevoke, key, principal, "drift: not backed by an active request or a standing entry", "", false))
			}
		}
		for _, principal := range sortedPrincipals(holders) {
			h := holders[principal]
			if !h.active {
				continue
			}
			m, present := have[principal]
			switch {
			case !present:
				a := action(gitgrant.OpGrant, key, principal, fmt.Sprintf("%s until %s", h.path, h.end.UTC().Format(time.RFC3339)), h.path, false)
				a.Expires = h.end
				grants = append(grants, a)
			case !m.Until.IsZero() && !m.Until.Equal(h.end):
				// The target enforces an expiry itself; keep it equal to
				// the request's (an extension, or a correction).
				a := action(gitgrant.OpGrant, key, principal, fmt.Sprintf("%s: move the target's expiry from %s to %s", h.path, m.Until.UTC().Format(time.RFC3339), h.end.UTC().Format(time.RFC3339)), h.path, false)
				a.Expires = h.end
				grants = append(grants, a)
			}
		}
	}
	plan.Actions = append(append(append(plan.Actions, revokes...), grants...), reports...)
	plan.NextChange = nextChange(entries, now)
	return plan
}

// desiredHolders folds entries into, per role and principal, whether the
// principal should hold the role now and, if not, the most telling reason:
// an expiry first (it is routine), then a pending start, then a rejection.
func desiredHolders(entries []gitgrant.Entry, now time.Time) map[RoleKey]map[string]holder {
	out := map[RoleKey]map[string]holder{}
	rank := map[string]int{} // key+principal -> rank of the reason kept so far
	for _, e := range entries {
		approved := e.Status == gitgrant.StatusActive || e.Status == gitgrant.StatusPending || e.Status == gitgrant.StatusExpired
		for _, g := range e.Grants {
			if g.Principal == "" {
				continue
			}
			key := RoleKey{g.Provider, g.Role}
			if out[key] == nil {
				out[key] = map[string]holder{}
			}
			h := out[key][g.Principal]
			ended := !now.Before(g.Window.End)
			var why string
			r := 0
			switch {
			case approved && g.Window.Contains(now):
				if !h.active || g.Window.End.After(h.end) {
					h.end, h.path = g.Window.End, e.Path
				}
				h.active = true
			case e.Status == gitgrant.StatusUnverified && !ended:
				h.keep = true
			case (approved || e.Status == gitgrant.StatusUnverified) && ended:
				why, r = fmt.Sprintf("%s expired at %s", e.Path, g.Window.End.UTC().Format(time.RFC3339)), 3
			case approved:
				why, r = fmt.Sprintf("%s starts at %s", e.Path, g.Window.Start.UTC().Format(time.RFC3339)), 2
			default:
				why, r = fmt.Sprintf("%s is not approved: %s", e.Path, strings.Join(e.Reasons, "; ")), 1
			}
			rk := key.String() + "\x00" + g.Principal
			if r > rank[rk] {
				rank[rk] = r
				h.why, h.expired = why, r == 3
				if !h.active {
					h.path = e.Path
				}
			}
			out[key][g.Principal] = h
		}
	}
	return out
}

func action(op gitgrant.Op, key RoleKey, principal, reason, path string, expired bool) gitgrant.Action {
	return gitgrant.Action{Op: op, Provider: key.Provider, Role: key.Role, Principal: principal, Reason: reason, Request: path, Expired: expired}
}

// managedRoles lists every role of every provider, sorted.
func managedRoles(cfg *gitgrant.Config) []RoleKey {
	var out []RoleKey
	for name, p := range cfg.Providers {
		for role := range p.Roles {
			out = append(out, RoleKey{name, role})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Provider != out[j].Provider {
			return out[i].Provider < out[j].Provider
		}
		return out[i].Role < out[j].Role
	})
	return out
}

func sortedPrincipals(m map[string]holder) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func sortedMembers(ms []providers.Member) []string {
	out := make([]string, 0, len(ms))
	seen := map[string]bool{}
	for _, m := range ms {
		if !seen[m.Principal] {
			seen[m.Principal] = true
			out = append(out, m.Principal)
		}
	}
	sort.Strings(out)
	return out
}

// nextChange is the earliest window start or end after now: when the next
// pass must run for access to start and end on time.
func nextChange(entries []gitgrant.Entry, now time.Time) time.Time {
	var next time.Time
	consider := func(t time.Time) {
		if t.After(now) && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	for _, e := range entries {
		if e.Status == gitgrant.StatusRejected {
			continue
		}
		for _, g := range e.Grants {
			consider(g.Window.Start)
			consider(g.Window.End)
		}
	}
	return next
}

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
// role without members: Diff then decides nothing that needs the list.
type Observed map[RoleKey][]providers.Member

// Diff compares desired access with observed access and with the ledger of
// what gitgrant granted, and returns the plan. It is a pure function: same
// inputs, same plan, in a deterministic order — revocations first, then
// grants, then reports, each by provider, role and principal.
//
//   - A membership an approved entry's window holds now is desired: it is
//     granted when absent (Action.Holding is the ledger line to record
//     first), and recorded (Plan.Record) when present but the ledger does
//     not say so yet.
//   - A ledger holding that is not desired is revoked whatever the role's
//     drift mode, whether or not the role could be listed, and even when
//     its role or provider left cfg; Action.Cause says why.
//   - An unverified entry grants nothing and shields nothing, but a
//     holding gitgrant granted for the same file content stays until the
//     end it was granted for.
//   - A member nothing explains is drift: revoked or reported per the
//     role's drift mode. One only an ended window names is revoked as
//     expired (access granted before the ledger existed).
func Diff(cfg *gitgrant.Config, entries []gitgrant.Entry, observed Observed, ledger gitgrant.Ledger, now time.Time) gitgrant.Plan {
	d := newDiffer(cfg, entries, ledger, now)
	plan := gitgrant.Plan{At: now, Entries: entries, Actions: []gitgrant.Action{}, ObservedByRole: map[string]int{}}
	managed := map[RoleKey]bool{}
	for _, key := range managedRoles(cfg) {
		managed[key] = true
		members, listed := observed[key]
		if listed {
			plan.ObservedMembers += len(members)
			plan.ObservedByRole[key.String()] = len(members)
		} else {
			plan.Unobserved = append(plan.Unobserved, key.String())
		}
		if cfg.IsEphemeral(key.Provider, key.Role) {
			d.ephemeral(key, members, listed)
			continue
		}
		d.role(key, members, listed)
	}
	// Holdings of roles and providers that left the configuration: only
	// the ledger remembers them (rule 14).
	for _, h := range ledger {
		if !managed[RoleKey{h.Provider, h.Role}] || (h.Owner != "" && !cfg.IsEphemeral(h.Provider, h.Role)) {
			d.revokeHolding(h)
		}
	}
	for _, group := range [][]gitgrant.Action{d.revokes, d.grants, d.reports} {
		sortActions(group)
		plan.Actions = append(plan.Actions, group...)
	}
	sort.Slice(d.record, func(i, j int) bool { return keyLess(d.record[i].MemberKey, d.record[j].MemberKey) })
	plan.Record = d.record
	plan.NextChange = nextChange(entries, ledger, now)
	return plan
}

// desire is a membership an approved entry holds now: until the latest
// end, backed by the entry with that end.
type desire struct {
	end   time.Time
	entry *gitgrant.Entry
}

// mention is the most telling thing the entries say about a membership
// that is not desired: an ended window first (it is routine), then a
// pending start, then a rejection or missing verification.
type mention struct {
	why     string
	path    string
	rank    int
	expired bool
}

type differ struct {
	cfg    *gitgrant.Config
	ledger gitgrant.Ledger
	now    time.Time
	byPath map[string]*gitgrant.Entry

	desired  map[gitgrant.MemberKey]desire
	kept     map[gitgrant.MemberKey]bool
	mentions map[gitgrant.MemberKey]mention
	// byRole lists, per role, the principals that the entries or the
	// ledger name (with repeats).
	byRole map[RoleKey][]string

	revokes, grants, reports []gitgrant.Action
	record                   []gitgrant.Holding
	accounts                 map[string]bool // ephemeral logins of the ledger (accountNames)
}

func newDiffer(cfg *gitgrant.Config, entries []gitgrant.Entry, ledger gitgrant.Ledger, now time.Time) *differ {
	d := &differ{cfg: cfg, ledger: ledger, now: now, byPath: make(map[string]*gitgrant.Entry, len(entries)),
		desired: make(map[gitgrant.MemberKey]desire, len(entries)), kept: map[gitgrant.MemberKey]bool{}, mentions: map[gitgrant.MemberKey]mention{},
		byRole: map[RoleKey][]string{}}
	for i := range entries {
		e := &entries[i]
		if _, dup := d.byPath[e.Path]; !dup {
			d.byPath[e.Path] = e
		}
		approved := e.Status == gitgrant.StatusActive || e.Status == gitgrant.StatusPending || e.Status == gitgrant.StatusExpired
		for _, g := range e.Grants {
			if g.Principal == "" {
				continue
			}
			k := gitgrant.MemberKey{Provider: g.Provider, Role: g.Role, Principal: g.Principal}
			d.byRole[RoleKey{k.Provider, k.Role}] = append(d.byRole[RoleKey{k.Provider, k.Role}], k.Principal)
			ended := !now.Before(g.Window.End)
			switch {
			case approved && g.Window.Contains(now):
				if cur, ok := d.desired[k]; !ok || g.Window.End.After(cur.end) {
					d.desired[k] = desire{end: g.Window.End, entry: e}
				}
				continue
			case e.Status == gitgrant.StatusUnverified && !ended:
				if h, ok := ledger[k]; ok && h.Request == e.Path && h.Blob == e.Blob && h.End.After(now) {
					d.kept[k] = true
				}
			}
			var m mention
			switch {
			case (approved || e.Status == gitgrant.StatusUnverified) && ended:
				m = mention{why: fmt.Sprintf("%s expired at %s", e.Path, stamp(g.Window.End)), rank: 3, expired: true}
			case approved:
				m = mention{why: fmt.Sprintf("%s starts at %s", e.Path, stamp(g.Window.Start)), rank: 2}
			case e.Status == gitgrant.StatusUnverified:
				m = mention{why: fmt.Sprintf("%s is unverified and gitgrant holds no grant for it: %s", e.Path, strings.Join(e.Reasons, "; ")), rank: 1}
			default:
				m = mention{why: fmt.Sprintf("%s is not approved: %s", e.Path, strings.Join(e.Reasons, "; ")), rank: 1}
			}
			m.path = e.Path
			if m.rank > d.mentions[k].rank {
				d.mentions[k] = m
			}
		}
	}
	for k := range ledger {
		if _, ok := d.desired[k]; !ok { // a desired one is listed already
			d.byRole[RoleKey{k.Provider, k.Role}] = append(d.byRole[RoleKey{k.Provider, k.Role}], k.Principal)
		}
	}
	return d
}

// role plans one managed role: every principal its members, the entries
// or the ledger name, once. The order does not matter: the plan's actions
// and records are sorted at the end.
func (d *differ) role(key RoleKey, members []providers.Member, listed bool) {
	r := roleView{RoleKey: key, cfg: d.cfg.Providers[key.Provider], listed: listed}
	r.target = r.cfg.RoleTarget(key.Role)
	present := make(map[string]providers.Member, len(members))
	for _, m := range members {
		present[m.Principal] = m
	}
	for principal, m := range present {
		d.principal(&r, principal, m, true)
	}
	seen := make(map[string]bool, len(d.byRole[key]))
	for _, principal := range d.byRole[key] {
		if _, isMember := present[principal]; isMember || seen[principal] {
			continue
		}
		seen[principal] = true
		d.principal(&r, principal, providers.Member{}, false)
	}
}

// roleView is what planning one role needs of it.
type roleView struct {
	RoleKey
	cfg    gitgrant.ProviderConfig
	target string
	listed bool
}

// principal plans one principal of one managed role.
func (d *differ) principal(r *roleView, principal string, m providers.Member, isMember bool) {
	k := gitgrant.MemberKey{Provider: r.Provider, Role: r.Role, Principal: principal}
	listed := r.listed
	if want, ok := d.desired[k]; ok {
		d.keep(k, want, r.target, m, listed, isMember)
		return
	}
	if r.cfg.IsStanding(principal, r.Role) || d.kept[k] {
		return
	}
	if h, ok := d.ledger[k]; ok {
		d.revokeHolding(h)
		return
	}
	men, named := d.mentions[k]
	switch {
	case named && men.expired:
		// Access granted before the ledger existed, or by hand for a
		// request whose window ended: expiry needs no observation.
		if !listed || isMember {
			d.revokes = append(d.revokes, revoke(k, gitgrant.CauseExpired, men.why, men.path))
		}
		return
	case !listed || !isMember:
		return // drift is judged on listed members only
	}
	why := "drift: not backed by an active request or a standing entry"
	if named {
		why = men.why
	}
	if r.cfg.RoleDrift(r.Role) == gitgrant.DriftReport {
		a := revoke(k, gitgrant.CauseDrift, why+" (drift: report)", men.path)
		a.Op = gitgrant.OpReport
		d.reports = append(d.reports, a)
		return
	}
	d.revokes = append(d.revokes, revoke(k, gitgrant.CauseDrift, why, men.path))
}

// keep plans a desired membership: grant it if absent, move a native
// expiry that differs, or record it in the ledger if the ledger does not
// say so. A holding on the role's former target is revoked first (the
// target's old membership would be left behind otherwise); the grant on
// the new target follows in the next pass, so that the ledger never holds
// two memberships under one key.
func (d *differ) keep(k gitgrant.MemberKey, want desire, target string, m providers.Member, listed, isMember bool) {
	h, held := d.ledger[k]
	if held && h.Target != "" && h.Target != target { // !Reachable, on a managed role
		d.revokes = append(d.revokes, holdingAction(h, gitgrant.CausePolicy,
			fmt.Sprintf("the target of %s/%s changed from %s to %s: revoked there, granted on %s in the next pass", k.Provider, k.Role, h.Target, target, target)))
		return
	}
	if !listed {
		return // grants wait until the role can be listed
	}
	e := want.entry
	line := gitgrant.Holding{MemberKey: k, Target: target, End: want.end, Request: e.Path, Blob: e.Blob, Commit: e.Commit, GrantedAt: d.now, Emergency: e.Emergency}
	if held {
		line.GrantedAt = h.GrantedAt
	}
	var why string
	switch {
	case !isMember:
		why = fmt.Sprintf("%s until %s", e.Path, stamp(want.end))
	case !m.Until.IsZero() && !m.Until.Equal(want.end):
		// The target enforces an expiry itself; keep it equal to the
		// request's (an extension, or a correction).
		why = fmt.Sprintf("%s: move the target's expiry from %s to %s", e.Path, stamp(m.Until), stamp(want.end))
	default:
		if !held || !sameHolding(h, line) {
			d.record = append(d.record, line)
		}
		return
	}
	first := line // allocated only for a grant
	d.grants = append(d.grants, gitgrant.Action{Op: gitgrant.OpGrant, Provider: k.Provider, Role: k.Role, Principal: k.Principal,
		Expires: want.end, Reason: why, Request: e.Path, Holding: &first})
}

// sameHolding reports whether the ledger already says what line says.
func sameHolding(h, line gitgrant.Holding) bool {
	return h.Target == line.Target && h.End.Equal(line.End) && h.Request == line.Request && h.Blob == line.Blob &&
		h.Commit == line.Commit && h.Emergency == line.Emergency
}

// revokeHolding plans the end of a holding that is not desired, with the
// cause that decides whether the brake may hold it back.
func (d *differ) revokeHolding(h gitgrant.Holding) {
	cause, why := d.holdingCause(h)
	d.revokes = append(d.revokes, holdingAction(h, cause, why))
}

// holdingCause says why a holding is no longer desired: its window ended;
// its request left main or changed; the request on main was rejected;
// otherwise the policy changed under it.
func (d *differ) holdingCause(h gitgrant.Holding) (gitgrant.Cause, string) {
	if !h.End.After(d.now) {
		return gitgrant.CauseExpired, fmt.Sprintf("%s expired at %s", h.Request, stamp(h.End))
	}
	e := d.byPath[h.Request]
	switch {
	case e == nil:
		return gitgrant.CauseWithdrawn, fmt.Sprintf("%s was removed from the main branch", h.Request)
	case e.Blob != h.Blob:
		return gitgrant.CauseWithdrawn, fmt.Sprintf("%s changed since it was granted; the new content grants on its own", h.Request)
	case e.Status == gitgrant.StatusRejected && !e.ByPolicy:
		return gitgrant.CauseRejected, fmt.Sprintf("%s is not approved: %s", e.Path, strings.Join(e.Reasons, "; "))
	}
	who := h.Principal
	if h.Owner != "" {
		who = h.Owner // an ephemeral account: the entry names its owner
	}
	for _, g := range e.Grants {
		if g.Provider == h.Provider && g.Role == h.Role && g.Principal == who && !d.now.Before(g.Window.End) && e.Status != gitgrant.StatusRejected {
			return gitgrant.CauseExpired, fmt.Sprintf("%s expired at %s", e.Path, stamp(g.Window.End))
		}
	}
	p, ok := d.cfg.Providers[h.Provider]
	switch _, roleOK := p.Roles[h.Role]; {
	case !ok:
		return gitgrant.CausePolicy, fmt.Sprintf("provider %s is no longer in gitgrant.yaml", h.Provider)
	case !roleOK:
		return gitgrant.CausePolicy, fmt.Sprintf("role %s/%s is no longer in gitgrant.yaml", h.Provider, h.Role)
	case e.Status == gitgrant.StatusRejected:
		return gitgrant.CausePolicy, fmt.Sprintf("%s no longer holds under the policy: %s", e.Path, strings.Join(e.Reasons, "; "))
	}
	return gitgrant.CausePolicy, fmt.Sprintf("%s no longer grants %s/%s to %s under the policy", e.Path, h.Provider, h.Role, h.Principal)
}

// Reachable reports whether the provider as cfg configures it reaches the
// membership h records: its provider and role are declared and the role's
// target is the one h was granted on. When it is not, the revocation Diff
// plans for h must go through the configuration at h.Policy (the role's
// old target, or a provider that left cfg): revoking through cfg would
// miss the membership or hit another one.
func Reachable(cfg *gitgrant.Config, h gitgrant.Holding) bool {
	p, ok := cfg.Providers[h.Provider]
	if !ok {
		return false
	}
	if _, ok := p.Roles[h.Role]; !ok {
		return false
	}
	return h.Target == "" || h.Target == p.RoleTarget(h.Role)
}

func revoke(k gitgrant.MemberKey, cause gitgrant.Cause, why, path string) gitgrant.Action {
	return gitgrant.Action{Op: gitgrant.OpRevoke, Provider: k.Provider, Role: k.Role, Principal: k.Principal,
		Cause: cause, Expired: cause == gitgrant.CauseExpired, Reason: why, Request: path}
}

func holdingAction(h gitgrant.Holding, cause gitgrant.Cause, why string) gitgrant.Action {
	a := revoke(h.MemberKey, cause, why, h.Request)
	a.Holding = &h
	return a
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func sortActions(as []gitgrant.Action) {
	sort.Slice(as, func(i, j int) bool {
		a, b := as[i], as[j]
		return keyLess(gitgrant.MemberKey{Provider: a.Provider, Role: a.Role, Principal: a.Principal}, gitgrant.MemberKey{Provider: b.Provider, Role: b.Role, Principal: b.Principal})
	})
}

func keyLess(a, b gitgrant.MemberKey) bool {
	if a.Provider != b.Provider {
		return a.Provider < b.Provider
	}
	if a.Role != b.Role {
		return a.Role < b.Role
	}
	return a.Principal < b.Principal
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

// nextChange is the earliest window start or end, or ledger end, after
// now: when the next pass must run for access to start and end on time.
func nextChange(entries []gitgrant.Entry, ledger gitgrant.Ledger, now time.Time) time.Time {
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
	for _, h := range ledger {
		consider(h.End)
	}
	return next
}

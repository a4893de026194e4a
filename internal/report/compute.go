package report

import (
	"math"
	"slices"
	"sort"
	"time"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/audit"
	"github.com/gitgrant/gitgrant/internal/gitrepo"
)

// policyPoint is a configuration in force from At on.
type policyPoint struct {
	At     time.Time
	Commit string
	Config *gitgrant.Config
}

// input is everything a report is computed from; compute is a pure
// function of it.
type input struct {
	trail    *audit.Trail
	records  []gitrepo.Note // replay order
	byCommit map[gitrepo.Hash][]gitrepo.NoteRecord
	policy   []policyPoint // oldest first
	source   string        // Sources.Policy
	ledger   time.Time     // the first ledger record
	now      time.Time
	filter   Filter
}

// Filter selects the period and the grants measured.
type Filter struct {
	Since, Until time.Time // zero Since: the first event; zero Until: now
	Provider     string
	Role         string
}

func (f Filter) in(t time.Time) bool {
	return !t.Before(f.Since) && t.Before(f.Until)
}

func (f Filter) grant(provider, role string) bool {
	return (f.Provider == "" || f.Provider == provider) && (f.Role == "" || f.Role == role)
}

type roleKey struct{ provider, role string }

func compute(in input) *Report {
	f := in.filter
	if f.Until.IsZero() || f.Until.After(in.now) {
		f.Until = in.now
	}
	if f.Since.IsZero() {
		f.Since = f.Until
		if len(in.trail.Events) > 0 && in.trail.Events[0].Time.Before(f.Since) {
			f.Since = in.trail.Events[0].Time
		}
		if len(in.trail.Holdings) > 0 && in.trail.Holdings[0].From.Before(f.Since) { // sorted by From
			f.Since = in.trail.Holdings[0].From
		}
	}
	rep := &Report{Version: Version, Head: in.trail.Head, GeneratedAt: in.now.UTC(), Since: f.Since.UTC(), Until: f.Until.UTC(),
		Provider: f.Provider, Role: f.Role,
		Sources: Sources{LedgerSince: in.ledger.UTC(), Policy: in.source, PullRequestOpened: "unknown"}}
	if in.ledger.IsZero() {
		rep.Sources.LedgerSince = time.Time{}
	}
	ls := lives(in.trail, in.byCommit, in.ledger)
	refusedNotices(in.records, ls)
	rep.TimeToAccess = timeToAccess(ls, f)
	rep.Privilege = privilege(in, f)
	rep.Usage = usage(in, f)
	rep.Refusals = refusals(in, ls, f)
	rep.Approvals = approvals(ls, f)
	rep.Emergencies = emergencies(ls, f)
	return rep
}

// roleKeys are the roles a lifetime's grants name, as the filter selects.
func roleKeys(l *life, f Filter) []roleKey {
	var out []roleKey
	for _, g := range l.grants {
		k := roleKey{g.Provider, g.Role}
		if f.grant(k.provider, k.role) && !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out
}

func timeToAccess(ls []*life, f Filter) []Latency {
	type acc struct{ written2approved, approved2merged, merged2granted, written2granted []time.Duration }
	by := map[roleKey]*acc{}
	count := map[roleKey]int{}
	add := func(k roleKey, l *life) {
		a := by[k]
		if a == nil {
			a = &acc{}
			by[k] = a
		}
		count[k]++
		span := func(dst *[]time.Duration, from, to time.Time) {
			if !from.IsZero() && !to.IsZero() && !to.Before(from) {
				*dst = append(*dst, to.Sub(from))
			}
		}
		if l.viaPR && !l.approvedAt.IsZero() {
			span(&a.written2approved, l.written, l.approvedAt)
			span(&a.approved2merged, l.approvedAt, l.merged)
		}
		if l.recorded() {
			span(&a.merged2granted, l.merged, l.granted)
			span(&a.written2granted, l.written, l.granted)
		}
	}
	for _, l := range ls {
		if l.granted.IsZero() || !f.in(l.granted) {
			continue
		}
		keys := roleKeys(l, f)
		if len(keys) == 0 {
			continue
		}
		for _, k := range keys {
			add(k, l)
		}
		add(roleKey{}, l)
	}
	out := []Latency{}
	for _, k := range sortedKeys(by) {
		a := by[k]
		out = append(out, Latency{Provider: k.provider, Role: k.role, Granted: count[k],
			WrittenToApproved: stat(a.written2approved), ApprovedToMerged: stat(a.approved2merged),
			MergedToGranted: stat(a.merged2granted), WrittenToGranted: stat(a.written2granted)})
	}
	return out
}

// sortedKeys puts the all-roles key ("", "") last.
func sortedKeys[V any](m map[roleKey]V) []roleKey {
	keys := make([]roleKey, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if (a == roleKey{}) != (b == roleKey{}) {
			return b == roleKey{}
		}
		return a.provider < b.provider || a.provider == b.provider && a.role < b.role
	})
	return keys
}

// stat is the nearest-rank median and 90th percentile.
func stat(ds []time.Duration) Stat {
	s := Stat{Count: len(ds)}
	if len(ds) == 0 {
		return s
	}
	slices.Sort(ds)
	rank := func(p float64) *float64 {
		i := int(math.Ceil(p*float64(len(ds)))) - 1
		v := ds[max(i, 0)].Seconds()
		return &v
	}
	s.P50, s.P90 = rank(0.5), rank(0.9)
	return s
}

func ratio(a, b int) *float64 {
	if b == 0 {
		return nil
	}
	v := float64(a) / float64(b)
	return &v
}

// overlap is the part of [from, to) inside [since, until).
func overlap(from, to, since, until time.Time) time.Duration {
	if from.Before(since) {
		from = since
	}
	if to.After(until) {
		to = until
	}
	if !to.After(from) {
		return 0
	}
	return to.Sub(from)
}

func privilege(in input, f Filter) []Privilege {
	type acc struct {
		jit    time.Duration
		grants int
		people map[string]bool
	}
	by := map[roleKey]*acc{}
	get := func(k roleKey) *acc {
		if by[k] == nil {
			by[k] = &acc{people: map[string]bool{}}
		}
		return by[k]
	}
	for _, pt := range in.policy {
		if pt.Config == nil {
			continue
		}
		for name, p := range pt.Config.Providers {
			for role := range p.Roles {
				if f.grant(name, role) {
					get(roleKey{name, role})
				}
			}
		}
	}
	for _, h := range in.trail.Holdings {
		if !f.grant(h.Provider, h.Role) {
			continue
		}
		d := overlap(h.From, h.Until, f.Since, f.Until)
		if d <= 0 {
			continue
		}
		a := get(roleKey{h.Provider, h.Role})
		a.jit += d
		a.grants++
		a.people[h.Beneficiary] = true
	}
	out := []Privilege{}
	for _, k := range sortedKeys(by) {
		a := by[k]
		p := Privilege{Provider: k.provider, Role: k.role, JITHours: hours(a.jit), JITGrants: a.grants, JITPeople: len(a.people), Standing: []StandingPoint{}}
		var standing time.Duration
		for i, pt := range in.policy {
			from, to := pt.At, f.Until
			if i == 0 {
				from = f.Since // the first known policy stands for what came before
			}
			if i+1 < len(in.policy) {
				to = in.policy[i+1].At
			}
			n := standingMembers(pt.Config, k)
			standing += time.Duration(n) * overlap(from, to, f.Since, f.Until)
			if to.After(f.Since) && from.Before(f.Until) {
				at := from
				if at.Before(f.Since) {
					at = f.Since
				}
				if m := len(p.Standing); m > 0 && p.Standing[m-1].Members == n {
					continue
				}
				p.Standing = append(p.Standing, StandingPoint{At: at.UTC(), Members: n, Commit: pt.Commit})
			}
		}
		p.StandingHours = hours(standing)
		if total := a.jit + standing; total > 0 {
			v := float64(a.jit) / float64(total)
			p.JITShare = &v
		}
		out = append(out, p)
	}
	return out
}

func hours(d time.Duration) float64 { return math.Round(d.Hours()*100) / 100 }

func standingMembers(cfg *gitgrant.Config, k roleKey) int {
	if cfg == nil {
		return 0
	}
	p, ok := cfg.Providers[k.provider]
	if !ok {
		return 0
	}
	seen := map[string]bool{}
	for _, s := range p.Standing {
		if p.IsStanding(s.Principal, k.role) {
			seen[s.Principal] = true
		}
	}
	return len(seen)
}

// usage judges each ledger holding by the usage records of its span.
func usage(in input, f Filter) []Usage {
	type span struct {
		key  gitgrant.MemberKey
		from time.Time
	}
	seen := map[span]int{} // the most sessions any look saw
	for _, n := range in.records {
		if n.Record.Event != gitrepo.EventUsage {
			continue
		}
		for _, u := range n.Record.Usage {
			s := span{u.MemberKey, u.GrantedAt.UTC()}
			if cur, ok := seen[s]; !ok || u.Sessions > cur {
				seen[s] = u.Sessions
			}
		}
	}
	by := map[roleKey]*Usage{}
	for _, h := range in.trail.Holdings {
		if !f.grant(h.Provider, h.Role) || overlap(h.From, h.Until, f.Since, f.Until) <= 0 {
			continue
		}
		k := roleKey{h.Provider, h.Role}
		u := by[k]
		if u == nil {
			u = &Usage{Provider: h.Provider, Role: h.Role}
			by[k] = u
		}
		u.Grants++
		n, looked := seen[span{gitgrant.MemberKey{Provider: h.Provider, Role: h.Role, Principal: h.Principal}, h.From.UTC()}]
		switch {
		case h.Source != audit.FromLedger || !looked:
			u.Unknown++
		case n > 0:
			u.Used++
		default:
			u.NotSeen++
		}
	}
	out := []Usage{}
	for _, k := range sortedKeys(by) {
		u := by[k]
		u.Rate = ratio(u.Used, u.Used+u.NotSeen)
		out = append(out, *u)
	}
	return out
}

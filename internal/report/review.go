// The report's sections on review: requests refused (and why), how
// approvals were given, and emergency access.

package report

import (
	"cmp"
	"sort"
	"strings"
	"time"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/gitrepo"
)

// refusedNotices marks the lifetimes whose pull request gitgrant told
// why the merged request grants nothing.
func refusedNotices(records []gitrepo.Note, ls []*life) {
	byPath := map[string][]*life{}
	for _, l := range ls {
		byPath[l.path] = append(byPath[l.path], l)
	}
	for _, n := range records {
		rec := n.Record
		if rec.Event != gitrepo.EventNotified || !strings.HasPrefix(rec.Notice, "refused:") {
			continue
		}
		var found *life
		for _, l := range byPath[rec.Request] {
			if !l.written.After(rec.RecordedAt) {
				found = l
			}
		}
		if found != nil {
			found.refused = true
		}
	}
}

func refusals(in input, ls []*life, f Filter) Refusals {
	r := Refusals{Counts: map[string]int{RefusedUnreviewed: 0, RefusedInvalid: 0, RefusedAfterMerge: 0, RefusedNotGranted: 0, RefusedCommitTime: 0, RefusedDriftRemove: 0}, Items: []Refused{}}
	add := func(x Refused) {
		if f.in(x.Time) {
			x.Time = x.Time.UTC()
			r.Counts[x.Kind]++
			r.Items = append(r.Items, x)
		}
	}
	for _, l := range ls {
		if !l.matches(f.Provider, f.Role) {
			continue
		}
		base := Refused{Request: l.path, Requester: l.requester, Grants: gitgrant.GrantNames(l.grants), PullRequest: l.pullRequest, Commit: l.commit}
		switch {
		case l.unreviewed != nil && !l.emergency && l.granted.IsZero():
			x := base
			x.Time, x.Kind, x.Commit, x.Detail = l.unreviewed.Time, RefusedUnreviewed, l.unreviewed.Commit, "direct push: "+l.unreviewed.Detail
			add(x)
		case l.invalid != nil && l.granted.IsZero():
			x := base
			x.Time, x.Kind, x.Commit, x.Detail = l.invalid.Time, RefusedInvalid, l.invalid.Commit, l.invalid.Detail
			add(x)
		case l.refused && l.granted.IsZero():
			x := base
			x.Time, x.Kind, x.Detail = l.merged, RefusedAfterMerge, "merged; gitgrant told the pull request why it grants nothing"
			add(x)
		case l.viaPR && l.granted.IsZero() && l.ended:
			x := base
			x.Time, x.Kind, x.Detail = l.merged, RefusedNotGranted, "merged and removed without being granted"
			add(x)
		}
	}
	for _, n := range in.records {
		rec := n.Record
		if rec.Event != gitrepo.EventDriftRemoved {
			continue
		}
		for _, k := range rec.Ended {
			if f.grant(k.Provider, k.Role) {
				add(Refused{Time: cmp.Or(rec.RevokedAt, rec.RecordedAt), Kind: RefusedDriftRemove, Requester: k.Principal, Grants: []string{k.Provider + "/" + k.Role},
					Commit: n.Commit.String(), Detail: k.Principal + " held " + k.Provider + "/" + k.Role + " without a request or a standing entry: removed"})
			}
		}
	}
	if f.Provider == "" && f.Role == "" {
		for _, n := range in.records {
			rec := n.Record
			if rec.Event != gitrepo.EventSeen {
				continue
			}
			at := rec.RecordedAt
			if !rec.SeenAt.IsZero() && rec.SeenAt.Before(at) {
				at = rec.SeenAt
			}
			for _, s := range rec.Seen {
				if s.Refused {
					add(Refused{Time: at, Kind: RefusedCommitTime, Request: s.Path, Commit: cmp.Or(s.Commit, n.Commit.String()),
						Detail: "commit date too far after gitgrant first saw it: its time is not trusted"})
				}
			}
		}
	}
	sort.SliceStable(r.Items, func(i, j int) bool { return r.Items[i].Time.Before(r.Items[j].Time) })
	return r
}

func approvals(ls []*life, f Filter) []ApprovalStat {
	type mk struct {
		roleKey
		month string
	}
	type acc struct {
		merged, granted, refused int
		times                    []time.Duration
	}
	by := map[mk]*acc{}
	for _, l := range ls {
		if !l.viaPR || !f.in(l.merged) {
			continue
		}
		for _, k := range roleKeys(l, f) {
			m := mk{k, l.merged.UTC().Format("2006-01")}
			a := by[m]
			if a == nil {
				a = &acc{}
				by[m] = a
			}
			a.merged++
			switch {
			case !l.granted.IsZero():
				a.granted++
			case l.refused || l.ended:
				a.refused++
			}
			if !l.written.IsZero() && !l.merged.Before(l.written) {
				a.times = append(a.times, l.merged.Sub(l.written))
			}
		}
	}
	keys := make([]mk, 0, len(by))
	for k := range by {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if a.roleKey != b.roleKey {
			return a.provider < b.provider || a.provider == b.provider && a.role < b.role
		}
		return a.month < b.month
	})
	out := []ApprovalStat{}
	for i, k := range keys {
		a := by[k]
		s := ApprovalStat{Provider: k.provider, Role: k.role, Month: k.month, Merged: a.merged, Granted: a.granted, Refused: a.refused,
			Rate: ratio(a.granted, a.merged), Time: stat(a.times)}
		if i > 0 && keys[i-1].roleKey == k.roleKey {
			prev := out[i-1]
			if s.Rate != nil && prev.Rate != nil {
				d := *s.Rate - *prev.Rate
				s.RateChange = &d
			}
			if s.Time.P50 != nil && prev.Time.P50 != nil {
				d := *s.Time.P50 - *prev.Time.P50
				s.P50Change = &d
			}
		}
		out = append(out, s)
	}
	return out
}

func emergencies(ls []*life, f Filter) []Emergency {
	out := []Emergency{}
	for _, l := range ls {
		if !l.emergency || !l.matches(f.Provider, f.Role) {
			continue
		}
		at := cmp.Or(l.merged, l.written)
		if !f.in(at) {
			continue
		}
		e := Emergency{Time: at.UTC(), Request: l.path, Requester: l.requester, Grants: gitgrant.GrantNames(l.grants), PullRequest: l.pullRequest,
			Commit: l.commit, Granted: !l.granted.IsZero(), ApprovedBy: l.approvedBy}
		switch {
		case l.viaPR && len(l.approvedBy) > 0:
			e.FollowUp = ReviewedBefore
		case l.marker:
			e.FollowUp = FollowUpOpened
		default:
			e.FollowUp = FollowUpMissing
		}
		out = append(out, e)
	}
	return out
}

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
)

// usageKey names one span of a membership: the ledger line's key and
// when it was granted.
func usageKey(k gitgrant.MemberKey, grantedAt time.Time) string {
	return k.String() + "@" + grantedAt.UTC().Format(time.RFC3339Nano)
}

// usageSeen reads the usage records: for every span looked at, the most
// sessions any look saw.
func usageSeen(records *gitrepo.Records) map[string]int {
	out := map[string]int{}
	for _, n := range records.All() {
		if n.Record.Event != gitrepo.EventUsage {
			continue
		}
		for _, u := range n.Record.Usage {
			k := usageKey(u.MemberKey, u.GrantedAt)
			if cur, ok := out[k]; !ok || u.Sessions > cur {
				out[k] = u.Sessions
			}
		}
	}
	return out
}

// observeUsage looks, through every provider that can tell
// (providers.UsageObserver), for sessions of the memberships the ledger
// holds, and returns the usage records to write: one when a span is
// first looked at, and one when its first session is seen; nothing once
// a span was seen used. It is a sample per pass, for `gitgrant report`;
// a failed look is logged and decides nothing.
func (e *Engine) observeUsage(ctx context.Context, p *Pass) []gitrepo.Note {
	byCommit := map[gitrepo.Hash][]gitrepo.UsageSighting{}
	var errs []error
	for _, h := range p.Ledger.Sorted() {
		obs, ok := p.open[h.Provider].(providers.UsageObserver)
		if !ok || h.Commit == "" || !h.End.After(p.At) {
			continue
		}
		k := usageKey(h.MemberKey, h.GrantedAt)
		prev, looked := p.usage[k]
		if looked && prev > 0 {
			continue
		}
		timeout := gitgrant.DefaultCallTimeout
		if p.Config != nil {
			if pc, ok := p.Config.Providers[h.Provider]; ok {
				timeout = pc.Timeout()
			}
		}
		cctx, cancel := context.WithTimeout(ctx, timeout)
		sessions, err := obs.Sessions(cctx, h.Principal)
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("sessions of %s: %w", h.MemberKey, err))
			continue
		}
		if looked && len(sessions) == 0 {
			continue // nothing new to say
		}
		u := gitrepo.UsageSighting{MemberKey: h.MemberKey, GrantedAt: h.GrantedAt.UTC(), Sessions: len(sessions)}
		for _, s := range sessions {
			if !s.Started.IsZero() && (u.FirstSession.IsZero() || s.Started.Before(u.FirstSession)) {
				u.FirstSession = s.Started.UTC()
			}
		}
		c := gitrepo.ParseHash(h.Commit)
		byCommit[c] = append(byCommit[c], u)
		p.usage[k] = len(sessions)
	}
	if err := errors.Join(errs...); err != nil {
		e.logger().Warn("usage not observed; the report counts these grants as unknown", "err", err)
	}
	notes := make([]gitrepo.Note, 0, len(byCommit))
	for c, us := range byCommit {
		notes = append(notes, gitrepo.Note{Commit: c, Record: gitrepo.NoteRecord{Event: gitrepo.EventUsage, Usage: us, RecordedAt: p.At.UTC()}})
	}
	sort.Slice(notes, func(i, j int) bool { return notes[i].Commit.String() < notes[j].Commit.String() })
	return notes
}

package engine

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/gitrepo"
	"github.com/gitgrant/gitgrant/providers"
)

// observer is a provider that reports the sessions it is told to.
type observer struct {
	unreachable
	sessions map[string][]providers.Session
	asked    []string
}

func (o *observer) Sessions(_ context.Context, principal string) ([]providers.Session, error) {
	o.asked = append(o.asked, principal)
	if principal == "broken" {
		return nil, errors.New("connection refused")
	}
	return o.sessions[principal], nil
}

// TestObserveUsage: a span is recorded when first looked at and when its
// first session is seen, and never looked at again once used; ended
// lines, failed looks and providers that cannot tell record nothing.
func TestObserveUsage(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	commit := "0123456789abcdef0123456789abcdef01234567"
	line := func(provider, principal string, end time.Time) gitgrant.Holding {
		return gitgrant.Holding{MemberKey: gitgrant.MemberKey{Provider: provider, Role: "readonly", Principal: principal}, End: end,
			Commit: commit, GrantedAt: at.Add(-time.Hour)}
	}
	obs := &observer{sessions: map[string][]providers.Session{"alice": {{Started: at.Add(-10 * time.Minute)}, {Started: at.Add(-30 * time.Minute)}}}}
	p := &Pass{At: at, usage: map[string]int{},
		Ledger: gitgrant.Ledger{},
		open:   map[string]providers.Provider{"db": obs, "idp": unreachable{}}}
	for _, h := range []gitgrant.Holding{
		line("db", "alice", at.Add(time.Hour)),
		line("db", "bob", at.Add(time.Hour)),
		line("db", "carol", at.Add(-time.Minute)), // ended: not looked at
		line("db", "broken", at.Add(time.Hour)),
		line("idp", "dave", at.Add(time.Hour)), // the provider cannot tell
	} {
		p.Ledger[h.MemberKey] = h
	}
	e := &Engine{}
	sighting := func(who string, n int, first time.Time) gitrepo.UsageSighting {
		return gitrepo.UsageSighting{MemberKey: gitgrant.MemberKey{Provider: "db", Role: "readonly", Principal: who}, GrantedAt: at.Add(-time.Hour), Sessions: n, FirstSession: first}
	}
	want := []gitrepo.Note{{Commit: gitrepo.ParseHash(commit), Record: gitrepo.NoteRecord{Event: gitrepo.EventUsage, RecordedAt: at,
		Usage: []gitrepo.UsageSighting{sighting("alice", 2, at.Add(-30*time.Minute)), sighting("bob", 0, time.Time{})}}}}
	if diff := cmp.Diff(want, e.observeUsage(context.Background(), p)); diff != "" {
		t.Errorf("first pass (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"alice", "bob", "broken"}, obs.asked); diff != "" {
		t.Errorf("asked (-want +got):\n%s", diff)
	}

	// Next pass: alice was seen used and is not asked again; bob, still
	// idle, adds nothing; then bob logs in.
	obs.asked = nil
	if got := e.observeUsage(context.Background(), p); len(got) != 0 {
		t.Errorf("a pass that saw nothing new recorded %v", got)
	}
	obs.sessions["bob"] = []providers.Session{{}}
	want = []gitrepo.Note{{Commit: gitrepo.ParseHash(commit), Record: gitrepo.NoteRecord{Event: gitrepo.EventUsage, RecordedAt: at,
		Usage: []gitrepo.UsageSighting{sighting("bob", 1, time.Time{})}}}}
	if diff := cmp.Diff(want, e.observeUsage(context.Background(), p)); diff != "" {
		t.Errorf("bob's first session (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"bob", "broken", "bob", "broken"}, obs.asked); diff != "" {
		t.Errorf("asked (-want +got):\n%s", diff)
	}
}

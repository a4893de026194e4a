package audit

import (
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/google/go-cmp/cmp"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/gitrepo"
)

// TestNotesAsTheEngineWritesThem: gitgrant notes each grant on the commit
// the request was at (so a re-grant after an extension lands on the
// extending commit) and a revocation likewise; the trail follows them.
func TestNotesAsTheEngineWritesThem(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	a, b := plumbing.NewHash("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"), plumbing.NewHash("bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb")
	path := "requests/db/alice.yaml"
	grants := []gitgrant.GrantRef{{Provider: "db", Role: "rw"}}
	v := func(h plumbing.Hash, at time.Time, pr int, d time.Duration) Version {
		return Version{Commit: CommitRef{Hash: h.String(), Time: at, AuthorTime: at, Author: "alice", PullRequest: pr, Kind: gitrepo.Squash},
			Path: path, Requester: "alice", Grants: grants, Duration: gitgrant.Duration(d)}
	}
	h := &history{Head: b.String(), Lifetimes: []*Lifetime{{Versions: []Version{v(a, t0, 5, time.Hour), v(b, t0.Add(30*time.Minute), 6, 5*time.Hour)}}}}
	rec := func(event string, granted, expires, revoked time.Time) gitrepo.NoteRecord {
		return gitrepo.NoteRecord{Version: 1, Event: event, Request: path, Requester: "alice", Grants: grants, ApprovedBy: []string{"dana"},
			GrantedAt: granted, ExpiresAt: expires, RevokedAt: revoked}
	}
	notes := map[plumbing.Hash][]gitrepo.NoteRecord{
		a: {rec("granted", t0.Add(time.Minute), t0.Add(61*time.Minute), time.Time{})},
		b: {rec("granted", t0.Add(31*time.Minute), t0.Add(5*time.Hour+31*time.Minute), time.Time{}), rec("revoked", time.Time{}, time.Time{}, t0.Add(2*time.Hour))},
	}
	trail := build(h, notes, nil, t0.Add(3*time.Hour))
	type ev struct {
		Kind   Kind
		At     time.Time
		Until  time.Time
		Source string
	}
	var got []ev
	for _, e := range trail.Events {
		got = append(got, ev{e.Event, e.Time, e.Until, e.Source})
	}
	want := []ev{
		{Requested, t0, time.Time{}, FromCommit},
		{Approved, t0, time.Time{}, FromCommit},
		{Granted, t0.Add(time.Minute), t0.Add(61 * time.Minute), FromNote},
		{Extended, t0.Add(30 * time.Minute), t0.Add(5*time.Hour + 31*time.Minute), FromNote},
		{Revoked, t0.Add(2 * time.Hour), time.Time{}, FromNote},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	wantHeld := []Holding{{Requester: "alice", Beneficiary: "alice", Provider: "db", Role: "rw", From: t0.Add(time.Minute), Until: t0.Add(2 * time.Hour),
		Ended: Revoked, Request: path, Commit: a.String(), PullRequest: 5, ApprovedBy: []string{"dana"}, Source: FromNote}}
	if diff := cmp.Diff(wantHeld, trail.Holdings); diff != "" {
		t.Errorf("holdings (-want +got):\n%s", diff)
	}
}

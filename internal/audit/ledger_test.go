package audit

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/google/go-cmp/cmp"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/gitrepo"
	"github.com/gitgrant/gitgrant/internal/testing/fakeclock"
	"github.com/gitgrant/gitgrant/internal/testing/gitserver"
)

// TestAtFromLedger: once gitgrant keeps a ledger, "who held what at T" is
// what it granted and revoked, not what the request files' windows say;
// history from before the ledger still answers from the windows.
func TestAtFromLedger(t *testing.T) {
	t.Parallel()
	srv, w := gitserver.NewAccess(t, "token", start, map[string]string{"gitgrant.yaml": "version: 1\n"})
	commits := map[string]string{}
	land := func(n int, who, d string) {
		path := "requests/orders-db/" + who + ".yaml"
		commits[who] = w.SquashPR(n, who, path, request(who, "readonly", d))
	}
	land(1, "carol", "4h") // granted before the ledger existed
	land(2, "frank", "4h") // likewise, and recorded in the ledger later
	land(3, "alice", "1h") // granted with the ledger, revoked early while her file stays
	land(4, "dave", "2h")  // merged after the ledger began, never granted
	land(5, "erin", "30m") // granted, never revoked: gitgrant was down
	w.Git("push", "-q", "origin", "main")
	r := openAccess(t, srv)

	ta, te := w.CommitTime(commits["alice"]), w.CommitTime(commits["erin"])
	line := func(who string, end time.Time) gitgrant.Holding {
		path := "requests/orders-db/" + who + ".yaml"
		return gitgrant.Holding{MemberKey: key(who), Target: "orders_ro", End: end, Request: path,
			Blob: w.Git("rev-parse", commits[who]+":"+path), Commit: commits[who]}
	}
	grant := func(who string, at, end time.Time) gitrepo.Note {
		return gitrepo.Note{Commit: plumbing.NewHash(commits[who]), Record: gitrepo.NoteRecord{Event: gitrepo.EventGranted, Request: "requests/orders-db/" + who + ".yaml",
			Requester: who, ApprovedBy: []string{"dana"}, RecordedAt: at, Holdings: []gitgrant.Holding{line(who, end)}}}
	}
	revoke := func(who string, at time.Time) gitrepo.Note {
		return gitrepo.Note{Commit: plumbing.NewHash(commits[who]), Record: gitrepo.NoteRecord{Event: gitrepo.EventRevoked, Request: "requests/orders-db/" + who + ".yaml",
			Requester: who, RevokedAt: at, RecordedAt: at, Ended: []gitgrant.MemberKey{key(who)}}}
	}
	notes := []gitrepo.Note{
		// The first ledger line: the new gitgrant recorded what it found granted.
		grant("frank", ta.Add(-30*time.Second), w.CommitTime(commits["frank"]).Add(4*time.Hour)),
		grant("alice", ta.Add(time.Minute), ta.Add(61*time.Minute)),
		revoke("alice", ta.Add(20*time.Minute)),
		revoke("frank", ta.Add(30*time.Minute)),
		grant("erin", te.Add(time.Minute), te.Add(31*time.Minute)),
	}
	if err := r.RecordNotes(context.Background(), notes, true, gitrepo.CommitOptions{Clock: fakeclock.New(te)}); err != nil {
		t.Fatal(err)
	}
	trail := buildTrail(t, r, Options{Now: te.Add(4 * time.Hour)})
	for _, tt := range []struct {
		at   time.Time
		want []string
	}{
		{ta.Add(-time.Minute), []string{"carol inferred", "frank inferred"}},
		{ta.Add(-time.Second), []string{"carol inferred", "frank ledger"}},
		{ta.Add(30 * time.Second), []string{"carol inferred", "frank ledger"}}, // merged, not granted yet
		{ta.Add(90 * time.Second), []string{"alice ledger", "carol inferred", "frank ledger"}},
		{ta.Add(10 * time.Minute), []string{"alice ledger", "carol inferred", "erin ledger", "frank ledger"}},
		{ta.Add(25 * time.Minute), []string{"carol inferred", "erin ledger", "frank ledger"}},
		{ta.Add(35 * time.Minute), []string{"carol inferred", "erin ledger"}},
		{te.Add(3 * time.Hour), []string{"carol inferred", "erin ledger"}},
	} {
		var got []string
		for _, h := range trail.At(tt.at, Filter{}) {
			got = append(got, h.Beneficiary+" "+h.Source)
		}
		if diff := cmp.Diff(tt.want, sorted(got)); diff != "" {
			t.Errorf("At(alice's merge %+v) (-want +got):\n%s", tt.at.Sub(ta), diff)
		}
	}
	var got []Holding
	for _, h := range trail.Holdings {
		if h.Beneficiary == "alice" || h.Beneficiary == "frank" {
			got = append(got, h)
		}
	}
	tf := w.CommitTime(commits["frank"])
	want := []Holding{{Requester: "frank", Beneficiary: "frank", Provider: "orders-db", Role: "readonly",
		From: tf, Until: ta.Add(-30 * time.Second), Request: "requests/orders-db/frank.yaml", Commit: commits["frank"], PullRequest: 2, Source: FromInferred,
	}, {Requester: "frank", Beneficiary: "frank", Principal: "pg_frank", Provider: "orders-db", Role: "readonly",
		From: ta.Add(-30 * time.Second), Until: ta.Add(30 * time.Minute), Ended: Revoked, Request: "requests/orders-db/frank.yaml",
		Commit: commits["frank"], PullRequest: 2, ApprovedBy: []string{"dana"}, Source: FromLedger,
	}, {Requester: "alice", Beneficiary: "alice", Principal: "pg_alice", Provider: "orders-db", Role: "readonly",
		From: ta.Add(time.Minute), Until: ta.Add(20 * time.Minute), Ended: Revoked, Request: "requests/orders-db/alice.yaml",
		Commit: commits["alice"], PullRequest: 3, ApprovedBy: []string{"dana"}, Source: FromLedger}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("frank's and alice's holdings (-want +got):\n%s", diff)
	}
}

func key(who string) gitgrant.MemberKey {
	return gitgrant.MemberKey{Provider: "orders-db", Role: "readonly", Principal: fmt.Sprintf("pg_%s", who)}
}

func sorted(ss []string) []string {
	out := slices.Clone(ss)
	slices.Sort(out)
	return out
}

// TestLedgerSaysNotGranted: a pull request merged while gitgrant keeps its
// ledger, that gitgrant never granted (it refused it, or it was never
// approved), is not shown as granted by inference: the trail says what
// the ledger says. A request merged before the ledger existed is still
// inferred.
func TestLedgerSaysNotGranted(t *testing.T) {
	t.Parallel()
	srv, w := gitserver.NewAccess(t, "token", start, map[string]string{"gitgrant.yaml": "version: 1\n"})
	commits := map[string]string{}
	land := func(n int, who string) {
		path := "requests/orders-db/" + who + ".yaml"
		commits[who] = w.SquashPR(n, who, path, request(who, "readonly", "1h"))
	}
	land(1, "carol") // before the ledger: inferred
	land(2, "alice") // granted with the ledger
	land(3, "mallory")
	land(4, "dave")
	w.Git("push", "-q", "origin", "main")
	r := openAccess(t, srv)
	ta := w.CommitTime(commits["alice"])
	blob := func(who string) string {
		return w.Git("rev-parse", commits[who]+":requests/orders-db/"+who+".yaml")
	}
	notes := []gitrepo.Note{
		{Commit: plumbing.NewHash(commits["alice"]), Record: gitrepo.NoteRecord{Event: gitrepo.EventGranted, Request: "requests/orders-db/alice.yaml",
			Requester: "alice", ApprovedBy: []string{"dana"}, GrantedAt: ta.Add(time.Second), ExpiresAt: ta.Add(time.Hour), RecordedAt: ta.Add(time.Second),
			Holdings: []gitgrant.Holding{{MemberKey: key("alice"), Target: "orders_ro", End: ta.Add(time.Hour), Request: "requests/orders-db/alice.yaml",
				Blob: blob("alice"), Commit: commits["alice"]}}}},
		// gitgrant refused mallory's request (say, approved by nobody who
		// counts) and told the pull request once.
		{Commit: plumbing.NewHash(commits["mallory"]), Record: gitrepo.NoteRecord{Event: gitrepo.EventNotified, Request: "requests/orders-db/mallory.yaml",
			Blob: blob("mallory"), Notice: "refused:0123456789abcdef", RecordedAt: ta.Add(2 * time.Second)}},
	}
	if err := r.RecordNotes(context.Background(), notes, true, gitrepo.CommitOptions{Clock: fakeclock.New(ta.Add(time.Minute))}); err != nil {
		t.Fatal(err)
	}
	trail := buildTrail(t, r, Options{Now: ta.Add(4 * time.Hour)})
	got := map[string][]string{}
	for _, e := range trail.Events {
		if e.Event != Requested && e.Event != Approved {
			got[e.Requester] = append(got[e.Requester], string(e.Event)+" "+e.Source)
		}
	}
	want := map[string][]string{
		"carol":   {"granted inferred", "expired inferred"},
		"alice":   {"granted note", "expired inferred"},
		"mallory": {"not-granted ledger"},
		"dave":    {"not-granted ledger"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events but requested and approved (-want +got):\n%s", diff)
	}
	for _, e := range trail.Events {
		if e.Event == NotGranted && e.Requester == "mallory" && !strings.Contains(e.Detail, "refused") {
			t.Errorf("mallory's not-granted event does not say gitgrant refused it: %q", e.Detail)
		}
		if e.Event == NotGranted && e.Requester == "dave" && strings.Contains(e.Detail, "refused it") {
			t.Errorf("dave's not-granted event says gitgrant refused it, which nothing records: %q", e.Detail)
		}
	}
	for _, h := range trail.At(ta.Add(30*time.Minute), Filter{}) {
		if h.Beneficiary == "mallory" || h.Beneficiary == "dave" {
			t.Errorf("%s held %s/%s at a time the ledger says nothing was granted to them", h.Beneficiary, h.Provider, h.Role)
		}
	}
}

package serve

import (
	"context"
	"errors"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/engine"
	"github.com/gitgrant/gitgrant/internal/gitrepo"
	"github.com/gitgrant/gitgrant/internal/testing/fakeclock"
	"github.com/gitgrant/gitgrant/providers"
)

// hooked is the world's provider with a hook run before every revocation.
type hooked struct {
	keepOpen
	before func(role, principal string) error
}

func (p hooked) Revoke(ctx context.Context, role, principal string) error {
	if err := p.before(role, principal); err != nil {
		return err
	}
	return p.keepOpen.Revoke(ctx, role, principal)
}

func (w *world) hook(e *engine.Engine, before func(role, principal string) error) {
	e.Registry = providers.Registry{"exec": func(context.Context, gitgrant.ProviderConfig, providers.Deps) (providers.Provider, error) {
		return hooked{keepOpen{w.db}, before}, nil
	}}
}

// fullPass plans and applies one pass as serve does.
func fullPass(t *testing.T, e *engine.Engine, clk gitgrant.Clock) (*engine.Pass, engine.Outcome) {
	t.Helper()
	p, err := e.Plan(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	out, err := e.Apply(context.Background(), p, engine.ApplyOptions{Cleanup: true, Commit: commitAt(clk)})
	if err != nil {
		t.Fatal(err)
	}
	return p, out
}

// passExpiries runs a full pass and returns the expiries it leaves,
// failing when it leaves none.
func passExpiries(t *testing.T, e *engine.Engine, clk gitgrant.Clock) *engine.Expiries {
	t.Helper()
	x := e.Expiries(fullPass(t, e, clk))
	if x == nil {
		t.Fatal("a clean pass left no expiries")
	}
	return x
}

func expire(t *testing.T, e *engine.Engine, x *engine.Expiries, clk gitgrant.Clock) engine.Expired {
	t.Helper()
	res, err := e.ExpireDeferred(context.Background(), x)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Records) > 0 { // as serve's notes writer does, behind the revocations
		if err := e.RecordExpired(context.Background(), res.Records, engine.ApplyOptions{Cleanup: true, Commit: commitAt(clk)}); err != nil {
			t.Fatal(err)
		}
	}
	return res
}

// revokedRecords are the ledger's revocation records, by request.
func revokedRecords(t *testing.T, e *engine.Engine) []gitrepo.NoteRecord {
	t.Helper()
	notes, err := e.Repo.Notes()
	if err != nil {
		t.Fatal(err)
	}
	var out []gitrepo.NoteRecord
	for _, recs := range notes {
		for _, r := range recs {
			if r.Event == gitrepo.EventRevoked {
				out = append(out, r)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Request < out[j].Request })
	return out
}

// The fast path revokes at the end of the window with neither a GitHub
// call nor a fetch: a commit pushed since the full pass (a new request)
// is not seen, and nothing is granted. The full pass after it plans no
// revocation for what it revoked and records none twice.
func TestExpireRevokesWithoutGitHubOrFetch(t *testing.T) {
	t.Parallel()
	w, clk := newClockedWorld(t)
	w.merge(1, "alice", "requests/db/alice.yaml", request("alice", "ro", "duration: 1h\n"), t0.Add(-time.Minute))
	e := w.engine(clk)
	clk.Advance(30 * time.Minute) // past the reminder, which needs a full pass
	p, out := fullPass(t, e, clk)
	x := e.Expiries(p, out)
	if x == nil {
		t.Fatal("a clean pass left no expiries")
	}
	if want := t0.Add(59 * time.Minute); !x.Next().Equal(want) {
		t.Errorf("Next = %s, want %s", x.Next(), want)
	}
	w.merge(2, "bob", "requests/db/bob.yaml", request("bob", "ro", "duration: 2h\n"), t0.Add(31*time.Minute))
	var revokes atomic.Int32
	w.hook(e, func(string, string) error {
		revokes.Add(1)
		if snap, err := e.Repo.ReadRevision(""); err != nil || snap.Commit != p.Snapshot.Commit {
			t.Errorf("main moved before the revocation (a fetch): %v", err)
		}
		return nil
	})
	gh := e.GitHub.Transport.Stats().Requests

	clk.Advance(15 * time.Minute)
	if res := expire(t, e, x, clk); len(res.Result.Outcomes) != 0 {
		t.Errorf("before the end: %d actions", len(res.Result.Outcomes))
	}
	clk.Advance(14 * time.Minute)
	res := expire(t, e, x, clk)
	if len(res.Result.Outcomes) != 1 || revokes.Load() != 1 {
		t.Fatalf("at the end: %d actions, %d revocations, want 1", len(res.Result.Outcomes), revokes.Load())
	}
	if got := w.members("ro"); len(got) != 0 {
		t.Errorf("members after the fast path: %v (bob's new request must wait for a full pass)", got)
	}
	if n := e.GitHub.Transport.Stats().Requests - gh; n != 0 {
		t.Errorf("the fast path made %d GitHub requests", n)
	}
	if n := len(revokedRecords(t, e)); n != 1 {
		t.Fatalf("%d revocation records, want 1", n)
	}
	if !x.Next().IsZero() {
		t.Errorf("Next after the last expiry = %s", x.Next())
	}

	p2, _ := fullPass(t, e, clk)
	for _, a := range p2.Plan.Actions {
		if a.Principal == "alice" {
			t.Errorf("the full pass after the fast path planned %s %s", a.Op, a.Principal)
		}
	}
	if n := len(revokedRecords(t, e)); n != 1 {
		t.Errorf("%d revocation records after the full pass, want 1", n)
	}
	if got := w.members("ro"); !cmp.Equal(got, []string{"bob"}) {
		t.Errorf("members after the full pass: %v, want bob", got)
	}
	if n := revokes.Load(); n != 1 {
		t.Errorf("%d revocations in all, want 1", n)
	}
	// That pass did what the fast path left to it: the cleanup commit,
	// dated by the fast path's revocation, and the pull request told.
	log := git(t, w.Remote, time.Time{}, "admin", "log", "--format=%B", "main")
	if want := gitrepo.TrailerRevokedAt + ": " + t0.Add(59*time.Minute).Format(time.RFC3339); !strings.Contains(log, want) {
		t.Errorf("no cleanup commit with %q in:\n%s", want, log)
	}
	told := false
	for _, c := range w.GH.Comments(w.Repo.Repo) {
		told = told || (c.Issue == 1 && strings.Contains(c.Body, "revoked `db/ro`"))
	}
	if !told {
		t.Errorf("pull request #1 was not told of the revocation: %+v", w.GH.Comments(w.Repo.Repo))
	}
}

// A membership a second request covers longer stays until that one ends:
// its until is the latest covering end.
func TestExpireKeepsMemberAnotherRequestCovers(t *testing.T) {
	t.Parallel()
	w, clk := newClockedWorld(t)
	w.merge(1, "alice", "requests/db/alice-short.yaml", request("alice", "ro", "duration: 1h\n"), t0.Add(-time.Minute))
	w.merge(2, "alice", "requests/db/alice-long.yaml", request("alice", "ro", "duration: 80m\n"), t0.Add(-time.Minute))
	e := w.engine(clk)
	clk.Advance(50 * time.Minute) // past both reminders
	x := passExpiries(t, e, clk)
	if want := t0.Add(79 * time.Minute); !x.Next().Equal(want) {
		t.Errorf("Next = %s, want %s (the longer window's end)", x.Next(), want)
	}
	clk.Advance(10 * time.Minute) // the short request has ended
	if res := expire(t, e, x, clk); len(res.Result.Outcomes) != 0 {
		t.Errorf("the short request's end planned %d actions", len(res.Result.Outcomes))
	}
	if got := w.members("ro"); !cmp.Equal(got, []string{"alice"}) {
		t.Fatalf("members = %v, want alice (the long request covers her)", got)
	}
	clk.Advance(20 * time.Minute)
	if res := expire(t, e, x, clk); len(res.Result.Outcomes) != 1 {
		t.Errorf("the long request's end planned %d actions, want 1", len(res.Result.Outcomes))
	}
	if got := w.members("ro"); len(got) != 0 {
		t.Errorf("members = %v after the long request ended", got)
	}
}

// The fast path writes the ledger records a full pass at the same moment
// writes, on an identical world.
func TestExpireRecordsAsAFullPass(t *testing.T) {
	t.Parallel()
	run := func(fast bool) []gitrepo.NoteRecord {
		w, clk := newClockedWorld(t)
		w.merge(1, "alice", "requests/db/alice.yaml", request("alice", "ro", "duration: 1h\n"), t0.Add(-time.Minute))
		w.merge(2, "bob", "requests/db/bob.yaml", request("bob", "rw", "duration: 1h\n"), t0.Add(-time.Minute))
		e := w.engine(clk)
		clk.Advance(30 * time.Minute) // past the reminders
		p, out := fullPass(t, e, clk)
		clk.Advance(29 * time.Minute)
		if fast {
			expire(t, e, e.Expiries(p, out), clk)
		} else {
			fullPass(t, e, clk)
		}
		if got := append(w.members("ro"), w.members("rw")...); len(got) != 0 {
			t.Errorf("fast %v: members left %v", fast, got)
		}
		return revokedRecords(t, e)
	}
	want, got := run(false), run(true)
	if len(want) != 2 {
		t.Fatalf("the full pass wrote %d revocation records, want 2", len(want))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("records (-full pass +fast path):\n%s", diff)
	}
}

// A provider that fails the fast path's revocation makes serve fall back
// to a full pass at once, which revokes; the ledger records it once.
func TestExpireFallsBackToAFullPassOnProviderError(t *testing.T) {
	t.Parallel()
	w, clk := newClockedWorld(t)
	w.merge(1, "alice", "requests/db/alice.yaml", request("alice", "ro", "duration: 1m\n"), t0.Add(-58*time.Second))
	e := w.engine(clk)
	var calls atomic.Int32
	w.hook(e, func(string, string) error {
		if calls.Add(1) == 1 {
			return errors.New("the target is down")
		}
		return nil
	})
	s := start(t, e, clk, time.Hour)
	eventually(t, "the grant", func() bool { return len(w.members("ro")) == 1 })
	eventually(t, "the timer for the expiry", func() bool { return s.Passes() == 1 && clk.Pending() > 0 })
	clk.Advance(2 * time.Second)
	eventually(t, "the revocation", func() bool { return len(w.members("ro")) == 0 })
	eventually(t, "the full pass", func() bool { return s.Passes() == 2 })
	m := scrape(t, s)
	for _, want := range []string{`gitgrant_expiry_fast_steps_total{result="fallback"} 1`, `gitgrant_expiry_fast_steps_total{result="ok"} 0`} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("%d revoke calls, want 2 (the fast path's, failed; the full pass's)", n)
	}
	if n := len(revokedRecords(t, e)); n != 1 {
		t.Errorf("%d revocation records, want 1", n)
	}
}

// The fast path checks leadership as a pass does: a replica that lost
// the Lease revokes nothing.
func TestExpireChecksLeadership(t *testing.T) {
	t.Parallel()
	w, clk := newClockedWorld(t)
	w.merge(1, "alice", "requests/db/alice.yaml", request("alice", "ro", "duration: 1h\n"), t0.Add(-time.Minute))
	s := New(w.engine(clk), Options{Apply: engine.ApplyOptions{Cleanup: true, Commit: commitAt(clk)}, Clock: clk})
	clk.Advance(30 * time.Minute) // past the reminder
	if _, err := s.pass(context.Background(), "start"); err != nil {
		t.Fatal(err)
	}
	clk.Advance(30 * time.Minute)
	s.setLeading(func() bool { return false })
	if _, ok := s.expire(context.Background()); ok {
		t.Errorf("a standby ran the fast path")
	}
	if got := w.members("ro"); !cmp.Equal(got, []string{"alice"}) {
		t.Errorf("members = %v: a standby revoked", got)
	}
	s.setLeading(func() bool { return true })
	if _, ok := s.expire(context.Background()); !ok {
		t.Errorf("the leader declined the fast path")
	}
	if got := w.members("ro"); len(got) != 0 {
		t.Errorf("members = %v after the leader's fast path", got)
	}
	if err := s.notes.flush(); err != nil {
		t.Errorf("recording the revocation: %v", err)
	}
	if n := len(revokedRecords(t, s.eng)); n != 1 {
		t.Errorf("%d revocation records, want 1", n)
	}
}

// A standing member keeps the role when her request ends, as a full pass
// keeps her.
func TestExpireKeepsStandingMember(t *testing.T) {
	t.Parallel()
	clk := fakeclock.New(t0)
	w := newWorldWith(t, clk, testConfig+"    standing: [{principal: alice, roles: [ro]}]\n")
	w.merge(1, "alice", "requests/db/alice.yaml", request("alice", "ro", "duration: 1h\n"), t0.Add(-time.Minute))
	w.merge(2, "bob", "requests/db/bob.yaml", request("bob", "ro", "duration: 1h\n"), t0.Add(-time.Minute))
	e := w.engine(clk)
	clk.Advance(30 * time.Minute) // past the reminders
	x := passExpiries(t, e, clk)
	if got := w.members("ro"); !cmp.Equal(got, []string{"alice", "bob"}) {
		t.Fatalf("members = %v, want alice and bob", got)
	}
	clk.Advance(29 * time.Minute)
	expire(t, e, x, clk)
	if got := w.members("ro"); !cmp.Equal(got, []string{"alice"}) {
		t.Errorf("members = %v after the fast path, want alice (standing)", got)
	}
}

package engine_test

import (
	"strings"
	"testing"
	"time"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/ghfake"
)

// A requester is reminded once, before the window ends, with the command
// to extend; a merged request that grants nothing says why, once. Later
// passes say nothing again (the notes remember), so they cost no call.
func TestRemindersAndRefusals(t *testing.T) {
	t.Parallel()
	w := newTrustWorld(t, trustConfig)
	w.merge(1, "alice", "requests/db/alice.yaml", reqFile("alice", "duration: 1h\n"), t0.Add(-40*time.Minute))
	w.MergePR(2, "bob", map[string]string{"requests/db/bob.yaml": reqFile("bob", "duration: 1h\n")}, t0.Add(-30*time.Minute)) // nobody approved
	p := roProvider()

	comments := func(n int) []string {
		var out []string
		for _, c := range w.GH.Comments(w.Repo.Repo) {
			if c.Issue == n {
				out = append(out, c.Body)
			}
		}
		return out
	}
	w.pass(t, p, t0.Add(-35*time.Minute)) // alice granted; her end, t0+20m, is not yet within 30m
	if got := comments(1); len(got) != 1 || strings.Contains(got[0], "ends soon") {
		t.Fatalf("alice's pull request after the grant: %q, want only the grant comment", got)
	}
	for _, at := range []time.Time{t0, t0.Add(5 * time.Minute)} {
		w.pass(t, p, at)
	}
	var reminders []string
	for _, c := range comments(1) {
		if strings.Contains(c, "ends soon") {
			reminders = append(reminders, c)
		}
	}
	if len(reminders) != 1 || !strings.Contains(reminders[0], "@alice") || !strings.Contains(reminders[0], "gitgrant request --extend requests/db/alice.yaml") {
		t.Errorf("reminders %q, want one, mentioning alice, with the extend command", reminders)
	}
	refusals := comments(2)
	if len(refusals) != 1 || !strings.Contains(refusals[0], "grants nothing") || !strings.Contains(refusals[0], "approval") {
		t.Errorf("bob's pull request: %q, want one comment saying why it grants nothing", refusals)
	}
}

// A merged request whose approvals gitgrant's own credentials cannot check
// (break-glass names a team the token cannot read) is told why, once, with
// the fix; an outage, which passes by itself, tells nobody.
func TestUnverifiedIsToldOnce(t *testing.T) {
	t.Parallel()
	w := newTrustWorld(t, trustConfig)
	w.MergePR(3, "mallory", map[string]string{"requests/db/mallory.yaml": reqFile("mallory", "duration: 1h\nemergency: true\n")}, t0.Add(-time.Minute))
	p := roProvider()
	told := func() []string {
		var out []string
		for _, c := range w.GH.Comments(w.Repo.Repo) {
			if c.Issue == 3 && strings.Contains(c.Body, "cannot be verified") {
				out = append(out, c.Body)
			}
		}
		return out
	}
	w.GH.Inject(ghfake.Fault{Status: 503, Times: 1 << 20}) // GitHub down: verification fails, and nobody is told
	w.pass(t, p, t0)
	if got := told(); len(got) != 0 {
		t.Fatalf("told during an outage: %q", got)
	}
	w.GH.ClearFaults() // up again; the team stays unreadable
	for _, at := range []time.Time{t0.Add(time.Minute), t0.Add(2 * time.Minute)} {
		ps, _ := w.pass(t, p, at)
		if e := ps.Requests["requests/db/mallory.yaml"].Entry; e.Status != gitgrant.StatusUnverified {
			t.Fatalf("status %s, want unverified", e.Status)
		}
	}
	got := told()
	if len(got) != 1 || !strings.Contains(got[0], "read:org") || !strings.Contains(got[0], "grants nothing yet") {
		t.Errorf("mallory's pull request: %q, want one comment saying why and how to fix it", got)
	}
	if m := members(t, p); len(m) != 0 {
		t.Errorf("members %v: an unverified request was granted", m)
	}
}

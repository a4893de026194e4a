package engine_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/engine"
	"github.com/gitgrant/gitgrant/internal/ghfake"
	"github.com/gitgrant/gitgrant/internal/gitrepo"
	"github.com/gitgrant/gitgrant/internal/testing/accesstest"
	"github.com/gitgrant/gitgrant/internal/testing/fakeclock"
	"github.com/gitgrant/gitgrant/providers/fake"
	"github.com/gitgrant/gitgrant/reconciler"
)

// The attacks of the issue "Trust", each as a person who can open pull
// requests, push to branches and edit their own commits would try it, on
// real git and the fake GitHub. Every test fails on the engine before the
// trust model (rule 13), the ledger (rule 14) and unconditional expiry
// (rule 15).

const trustConfig = `version: 1
policy:
  max_duration: 8h
  break_glass: {members: [alice, "@acme/oncall"], max_duration: 1h}
identities:
  alice: {principals: {db: alice}}
  bob: {principals: {db: bob}}
  mallory: {principals: {db: mallory}}
providers:
  db:
    type: exec
    command: [unused]
    roles:
      ro: {max_duration: 4h, approvals: 1}
`

// trustOwners: the security team owns the policy, two owners each may
// approve requests.
const trustOwners = "/gitgrant.yaml @security\n/.github/ @security\n/requests/ @owner @oldowner\n"

func newTrustWorld(t *testing.T, config string) *world {
	t.Helper()
	r := accesstest.New(t, func() time.Time { return t0 }, map[string]string{"gitgrant.yaml": config, ".github/CODEOWNERS": trustOwners}, t0.Add(-48*time.Hour))
	return &world{Repo: r, t: t}
}

// aliceMerged is a trust world where alice's 4h request was merged an
// hour before t0.
func aliceMerged(t *testing.T) *world {
	t.Helper()
	w := newTrustWorld(t, trustConfig)
	w.merge(1, "alice", "requests/db/alice.yaml", reqFile("alice", "duration: 4h\n"), t0.Add(-time.Hour))
	return w
}

// aliceAndBobGranted is where the brake and expiry findings start: alice's
// 4h request merged an hour before t0, bob's 1h one ten minutes later,
// both granted by a pass at t0-40m.
func aliceAndBobGranted(t *testing.T) (*world, *fake.Provider) {
	t.Helper()
	w := aliceMerged(t)
	w.merge(2, "bob", "requests/db/bob.yaml", reqFile("bob", "duration: 1h\n"), t0.Add(-50*time.Minute))
	p := roProvider()
	w.pass(t, p, t0.Add(-40*time.Minute))
	return w, p
}

func reqFile(who, extra string) string {
	return "requester: " + who + "\ngrants: [{provider: db, role: ro}]\nreason: Repair stuck orders\n" + extra
}

// pass plans and applies once with a fresh engine (a new process: nothing
// but git and the provider carries over) at now.
func (w *world) pass(t *testing.T, p *fake.Provider, now time.Time) (*engine.Pass, error) {
	t.Helper()
	eng := w.engine(p, now)
	ps, err := eng.Plan(context.Background(), false)
	if err != nil {
		t.Fatalf("plan at %s: %v", now.Format(time.TimeOnly), err)
	}
	defer ps.Close()
	_, err = eng.Apply(context.Background(), ps, engine.ApplyOptions{Cleanup: true})
	return ps, err
}

func members(t *testing.T, p *fake.Provider) []string {
	t.Helper()
	ms, err := p.Members(context.Background(), "ro")
	if err != nil {
		t.Fatal(err)
	}
	out := []string{}
	for _, m := range ms {
		out = append(out, m.Principal)
	}
	return out
}

func granted(p *fake.Provider, principal string) (until time.Time, ok bool) {
	for _, c := range p.Calls() {
		if c.Op == fake.OpGrant && c.Principal == principal {
			until, ok = c.Until, true
		}
	}
	return until, ok
}

// Finding 1: a pull request that changes gitgrant.yaml next to a request
// does not shape that request: not its window, not who receives it,
// whether or not the policy's owners approved the change as well.
func TestPolicyChangedInTheSamePullRequest(t *testing.T) {
	t.Parallel()
	longer := strings.Replace(trustConfig, "ro: {max_duration: 4h", "ro: {max_duration: 8h", 1)
	remapped := strings.Replace(trustConfig, "alice: {principals: {db: alice}}", "alice: {principals: {db: postgres}}", 1)
	merged := t0.Add(-time.Hour)
	tests := []struct {
		name      string
		config    string
		duration  string
		approvers []string
		wantUntil time.Time // zero: nothing granted
		why       string    // in the refusal
	}{
		// 8h is over the 4h cap in force: the file is invalid.
		{"max_duration raised, request owner approves", longer, "8h", []string{"owner"}, time.Time{}, "exceeds the 4h maximum"},
		// The change verifies, but the request is also judged at its base.
		{"max_duration raised, policy owner approves too", longer, "8h", []string{"owner", "security"}, merged.Add(4 * time.Hour), ""},
		{"identity remapped, request owner approves", remapped, "2h", []string{"owner"}, merged.Add(2 * time.Hour), ""},
		{"identity remapped, policy owner approves too", remapped, "2h", []string{"owner", "security"}, time.Time{}, "postgres"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newTrustWorld(t, trustConfig)
			w.MergePR(1, "alice", map[string]string{"requests/db/alice.yaml": reqFile("alice", "duration: "+tt.duration+"\n"), "gitgrant.yaml": tt.config}, merged, tt.approvers...)
			p := roProvider()
			ps, _ := w.pass(t, p, t0)
			if _, ok := granted(p, "postgres"); ok {
				t.Fatalf("granted to postgres, the login the pull request mapped alice to")
			}
			until, ok := granted(p, "alice")
			switch {
			case tt.wantUntil.IsZero() && ok:
				t.Errorf("granted alice until %s; the principal changed since the policy she was approved under, so nothing may be granted", until)
			case !tt.wantUntil.IsZero() && !until.Equal(tt.wantUntil):
				t.Errorf("alice granted until %s (granted: %v), want %s: the base's 4h cap", until, ok, tt.wantUntil)
			}
			if tt.why != "" {
				if reasons := strings.Join(ps.Plan.Entries[0].Reasons, "; "); !strings.Contains(reasons, tt.why) {
					t.Errorf("the refusal %q does not say %q", reasons, tt.why)
				}
			}
		})
	}
}

// Finding 1: changes pushed to main (or merged without the policy
// owners' approval) shape nothing, and plan says so.
func TestPushedPolicyShapesNothing(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// before runs ahead of the policy change, attack after it.
		before, attack func(w *world)
		held           map[string]time.Time // hand-granted members
		want           []string
	}{
		{
			name: "principal remapped after the approval",
			before: func(w *world) {
				w.merge(1, "alice", "requests/db/alice.yaml", reqFile("alice", "duration: 2h\n"), t0.Add(-time.Hour))
			},
			attack: func(w *world) {
				w.Commit(t0.Add(-30*time.Minute), "admin", "remap", map[string]string{"gitgrant.yaml": strings.Replace(trustConfig, "db: alice}", "db: postgres}", 1)})
			},
			want: []string{"alice"},
		},
		{
			name: "standing entry for a hand-granted member",
			attack: func(w *world) {
				w.Commit(t0.Add(-30*time.Minute), "mallory", "keep me", map[string]string{"gitgrant.yaml": trustConfig + "    standing: [mallory]\n"})
			},
			held: map[string]time.Time{"mallory": {}},
			want: []string{},
		},
		{
			name: "approvals: 0",
			attack: func(w *world) {
				w.Commit(t0.Add(-30*time.Minute), "bob", "no approvals", map[string]string{"gitgrant.yaml": strings.Replace(trustConfig, "approvals: 1", "approvals: 0", 1)})
				w.MergePR(2, "bob", map[string]string{"requests/db/bob.yaml": reqFile("bob", "duration: 2h\n")}, t0.Add(-10*time.Minute))
			},
			want: []string{},
		},
		{
			name: "policy change merged without its owners",
			attack: func(w *world) {
				w.MergePR(2, "bob", map[string]string{"gitgrant.yaml": strings.Replace(trustConfig, "approvals: 1", "approvals: 0", 1)}, t0.Add(-20*time.Minute), "owner")
				w.MergePR(3, "bob", map[string]string{"requests/db/bob.yaml": reqFile("bob", "duration: 2h\n")}, t0.Add(-10*time.Minute))
			},
			want: []string{},
		},
		{
			name: "CODEOWNERS pushed to make mallory an owner",
			attack: func(w *world) {
				w.Commit(t0.Add(-30*time.Minute), "admin", "owners", map[string]string{".github/CODEOWNERS": "/requests/ @mallory\n"})
				w.MergePR(2, "bob", map[string]string{"requests/db/bob.yaml": reqFile("bob", "duration: 2h\n")}, t0.Add(-10*time.Minute), "mallory")
			},
			want: []string{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newTrustWorld(t, trustConfig)
			p := roProvider()
			if tt.held != nil {
				p.Set("ro", tt.held)
			}
			if tt.before != nil {
				tt.before(w)
				w.pass(t, p, t0.Add(-50*time.Minute))
			}
			tt.attack(w)
			ps, _ := w.pass(t, p, t0)
			if diff := cmp.Diff(tt.want, members(t, p)); diff != "" {
				t.Errorf("members (-want +got):\n%s", diff)
			}
			if ps.Plan.Policy == nil || len(ps.Plan.Policy.Unverified) == 0 || !strings.Contains(ps.Plan.Policy.Loud(), "not verified") {
				t.Errorf("the plan does not say the policy change is not in force: %+v", ps.Plan.Policy)
			}
		})
	}
}

// A policy change its owners approved takes effect, and GitHub is asked
// about it once per process.
func TestVerifiedPolicyChangeTakesEffect(t *testing.T) {
	t.Parallel()
	w := newTrustWorld(t, trustConfig)
	p := roProvider()
	eng := w.engine(p, t0)
	w.MergePR(1, "bob", map[string]string{"gitgrant.yaml": strings.Replace(trustConfig, "approvals: 1", "approvals: 0", 1)}, t0.Add(-20*time.Minute), "security")
	w.GH.ResetRequests()
	ps := mustPlan(t, eng)
	ps.Close()
	if pol := ps.Plan.Policy; pol == nil || pol.How != "pull request #1" || len(pol.Unverified) != 0 {
		t.Fatalf("policy in force %+v, want pull request #1's", pol)
	}
	if ps.Config.Providers["db"].Roles["ro"].Approvals != 0 {
		t.Errorf("the verified change is not in force")
	}
	changeCalls := len(w.GH.Requests())
	w.GH.ResetRequests()
	mustPlan(t, eng).Close()
	if n := len(w.GH.Requests()); n != 0 {
		t.Errorf("the next pass asked GitHub %d times about a policy it already verified", n)
	}
	t.Logf("GitHub calls to verify one policy change: %d; the next pass: 0", changeCalls)
}

// Finding 7: the commit a pull request landed on is decided from GitHub
// and git, not the squash title, so an owner removed while the pull
// request was open no longer counts even when the merger edits "(#N)"
// out of the title.
func TestSquashWithEditedTitleJudgedWhereItLanded(t *testing.T) {
	t.Parallel()
	w := newTrustWorld(t, trustConfig)
	pr := w.OpenPR(1, "bob", map[string]string{"requests/db/bob.yaml": reqFile("bob", "duration: 2h\n")}, t0.Add(-2*time.Hour))
	// While it is open, the security team removes oldowner.
	w.MergePR(2, "carol", map[string]string{".github/CODEOWNERS": "/gitgrant.yaml @security\n/.github/ @security\n/requests/ @owner\n"}, t0.Add(-90*time.Minute), "security")
	pr.Squash(t0.Add(-time.Hour), "Request access", "oldowner")
	p := roProvider()
	ps, _ := w.pass(t, p, t0)
	if got := members(t, p); len(got) != 0 {
		t.Fatalf("members %v: oldowner's approval counted after the owners changed", got)
	}
	if r := strings.Join(ps.Plan.Entries[0].Reasons, "; "); !strings.Contains(r, "merged onto") {
		t.Errorf("reasons %q do not say where it was judged", r)
	}
}

// Finding 2 (rules 5, 6): a break-glass file pushed with a committer date
// in the future is refused for good, whichever process looks at it later;
// an honest one ends after its hour, in every later process too.
func TestBreakGlassWindowsEnd(t *testing.T) {
	t.Parallel()
	emergency := reqFile("alice", "duration: 1h\nemergency: true\n")

	t.Run("commit dated two hours ahead", func(t *testing.T) {
		t.Parallel()
		w := newTrustWorld(t, trustConfig)
		w.Commit(t0.Add(2*time.Hour), "alice", "break glass", map[string]string{"requests/db/alice.yaml": emergency})
		p := roProvider()
		for _, at := range []time.Time{t0, t0.Add(2*time.Hour + time.Minute), t0.Add(150 * time.Minute)} {
			w.pass(t, p, at)
			if got := members(t, p); len(got) != 0 {
				t.Fatalf("at %s: members %v, want the future-dated break-glass refused", at.Format(time.TimeOnly), got)
			}
		}
	})

	t.Run("honest commit date", func(t *testing.T) {
		t.Parallel()
		w := newTrustWorld(t, trustConfig)
		w.Commit(t0, "alice", "break glass", map[string]string{"requests/db/alice.yaml": emergency})
		p := roProvider()
		w.pass(t, p, t0.Add(time.Minute))
		if diff := cmp.Diff([]string{"alice"}, members(t, p)); diff != "" {
			t.Fatalf("break-glass not granted (-want +got):\n%s", diff)
		}
		for _, at := range []time.Time{t0.Add(61 * time.Minute), t0.Add(3 * time.Hour)} {
			w.pass(t, p, at)
			if got := members(t, p); len(got) != 0 {
				t.Fatalf("at %s: members %v, want the hour over", at.Format(time.TimeOnly), got)
			}
		}
		if n := w.GH.Count("POST", "/issues"); n != 1 {
			t.Errorf("%d follow-up issues opened, want exactly 1", n)
		}
	})

	// Simulation seed 45: the reconciler's clock stepped back 9 minutes
	// after it granted an honest break-glass request. By that clock the
	// window has not begun, so the pass may take the access back; but it
	// also recorded an earlier first sighting, so the commit date looked
	// 8 minutes in its future and the emergency stayed refused for good,
	// with most of its hour left. The earlier record stands; once the
	// clock is inside the window again, so is the access, and it still
	// ends on time.
	t.Run("reconciler clock steps back", func(t *testing.T) {
		t.Parallel()
		w := newTrustWorld(t, trustConfig)
		w.Commit(t0, "alice", "break glass", map[string]string{"requests/db/alice.yaml": emergency})
		p := roProvider()
		for _, at := range []time.Time{t0.Add(time.Minute), t0.Add(-8 * time.Minute), t0.Add(30 * time.Minute)} {
			w.pass(t, p, at)
			if at.Before(t0) {
				continue // before the window by the stepped-back clock
			}
			if diff := cmp.Diff([]string{"alice"}, members(t, p)); diff != "" {
				t.Fatalf("at %s: break-glass not held inside its window (-want +got):\n%s", at.Format(time.TimeOnly), diff)
			}
		}
		w.pass(t, p, t0.Add(61*time.Minute))
		if got := members(t, p); len(got) != 0 {
			t.Fatalf("members %v, want the hour over", got)
		}
	})

	// A first sighting forged far ahead into the ledger is not believed:
	// the commit is seen now, and its future date is refused, as if no
	// record existed.
	t.Run("forged future sighting", func(t *testing.T) {
		t.Parallel()
		w := newTrustWorld(t, trustConfig)
		commit := w.Commit(t0.Add(2*time.Hour), "alice", "break glass", map[string]string{"requests/db/alice.yaml": emergency})
		forgeSighting(t, w, commit, t0.Add(2*time.Hour))
		p := roProvider()
		for _, at := range []time.Time{t0.Add(time.Minute), t0.Add(2*time.Hour + time.Minute)} {
			w.pass(t, p, at)
			if got := members(t, p); len(got) != 0 {
				t.Fatalf("at %s: members %v, want the future-dated break-glass refused despite the forged sighting", at.Format(time.TimeOnly), got)
			}
		}
	})
}

// Finding 3 (rule 15): members nobody explains trip the brake of their
// role only; expired access on that role and elsewhere is still revoked.
func TestBrakeHoldsOnlyDrift(t *testing.T) {
	t.Parallel()
	w, p := aliceAndBobGranted(t)
	p.Set("ro", map[string]time.Time{"alice": {}, "bob": {}, "x1": {}, "x2": {}, "x3": {}, "x4": {}})
	ps, err := w.pass(t, p, t0.Add(30*time.Minute))
	if !errors.Is(err, reconciler.ErrBrake) {
		t.Fatalf("apply error %v, want the brake", err)
	}
	if diff := cmp.Diff([]string{"alice", "x1", "x2", "x3", "x4"}, members(t, p)); diff != "" {
		t.Errorf("members (-want +got): bob's expired access must go, the drift held:\n%s", diff)
	}
	if len(ps.Plan.Held) != 4 {
		t.Errorf("held %d actions, want the 4 drift revocations", len(ps.Plan.Held))
	}
}

// Finding 4 (rules 6, 15): a file whose verification fails (break-glass
// names a team the token cannot read) grants nothing and shields nothing:
// mallory's hand-granted access is revoked as drift.
func TestUnverifiedFileShieldsNothing(t *testing.T) {
	t.Parallel()
	w := newTrustWorld(t, trustConfig)
	w.Commit(t0, "mallory", "break glass", map[string]string{"requests/db/mallory.yaml": reqFile("mallory", "duration: 1h\nemergency: true\n")})
	p := roProvider()
	p.Set("ro", map[string]time.Time{"mallory": {}})
	ps, _ := w.pass(t, p, t0.Add(time.Minute))
	if len(ps.Problems) == 0 {
		t.Fatalf("the unreadable team went unreported")
	}
	if got := members(t, p); len(got) != 0 {
		t.Errorf("members %v: an unverified file shielded its principal", got)
	}
}

// Finding 6 (rule 14): a role removed from the configuration (verified)
// takes its holders' access with it, through the provider as configured
// when they were granted.
func TestRemovedRoleRevokesItsHolders(t *testing.T) {
	t.Parallel()
	w := aliceMerged(t)
	p := fake.New(fake.Options{Name: "db", Roles: []string{"ro", "rw"}})
	w.pass(t, p, t0.Add(-50*time.Minute))
	if diff := cmp.Diff([]string{"alice"}, members(t, p)); diff != "" {
		t.Fatalf("setup (-want +got):\n%s", diff)
	}
	w.MergePR(2, "carol", map[string]string{"gitgrant.yaml": strings.Replace(trustConfig, "ro: {max_duration: 4h", "rw: {max_duration: 4h", 1)}, t0.Add(-20*time.Minute), "security")
	ps, err := w.pass(t, p, t0)
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	if got := members(t, p); len(got) != 0 {
		t.Errorf("members of the removed role %v, want none", got)
	}
	var cause gitgrant.Cause
	for _, a := range ps.Plan.Actions {
		if a.Op == gitgrant.OpRevoke && a.Principal == "alice" {
			cause = a.Cause
		}
	}
	// The file now names a role the policy does not declare: rejected by
	// the policy change.
	if cause != gitgrant.CausePolicy && cause != gitgrant.CauseRejected {
		t.Errorf("revocation cause %q, want policy or rejected", cause)
	}
}

// Finding 8 (rules 9, 15): a typo pushed in gitgrant.yaml changes nothing:
// expired access is revoked and active access kept, by the verified one.
// Without any verified policy, the ledger's expired access still ends.
func TestBrokenPolicyStopsNoExpiry(t *testing.T) {
	t.Parallel()
	w, p := aliceAndBobGranted(t)
	w.Commit(t0.Add(-30*time.Minute), "admin", "typo", map[string]string{"gitgrant.yaml": "providers: [this is not a map\n"})

	w.pass(t, p, t0.Add(15*time.Minute))
	if diff := cmp.Diff([]string{"alice"}, members(t, p)); diff != "" {
		t.Errorf("after the typo (-want +got):\n%s", diff)
	}

	// GitHub down as well, with the typo still on main: the typo cannot
	// be verified (nothing is decided about it), and alice's ended window
	// is still revoked.
	w.GH.Inject(ghfakeDown())
	w.pass(t, p, t0.Add(4*time.Hour))
	if got := members(t, p); len(got) != 0 {
		t.Errorf("members %v: expired access outlived GitHub being down", got)
	}
}

// Without a trust root nothing is trusted: not a request, not a
// provider's settings (which could send its secret elsewhere). The pass
// says so, grants nothing and opens no provider.
func TestNoTrustRootTrustsNothing(t *testing.T) {
	t.Parallel()
	w := aliceMerged(t)
	p := roProvider()
	eng := w.engine(p, t0)
	eng.TrustRoot = ""
	ps := mustPlan(t, eng)
	defer ps.Close()
	if !errors.Is(ps.PolicyErr, engine.ErrInvalidConfig) || !strings.Contains(ps.Plan.Policy.Loud(), "gitgrant trust --root first") {
		t.Fatalf("PolicyErr %v, policy %+v: want the missing root named with the fix", ps.PolicyErr, ps.Plan.Policy)
	}
	if _, err := eng.Apply(context.Background(), ps, engine.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	if len(p.Calls()) != 0 {
		t.Errorf("the provider was used without a trusted policy: %+v", p.Calls())
	}
}

// Finding 9 (rule 16): a dry run with credentials writes nothing: no issue,
// no comment, no git ref.
func TestPlanWritesNothing(t *testing.T) {
	t.Parallel()
	w := newTrustWorld(t, trustConfig)
	w.Commit(t0, "alice", "break glass", map[string]string{"requests/db/alice.yaml": reqFile("alice", "duration: 1h\nemergency: true\n")})
	p := roProvider()
	w.GH.ResetRequests()
	eng := w.engine(p, t0.Add(time.Minute))
	ps := mustPlan(t, eng)
	ps.Close()
	for _, r := range w.GH.Requests() {
		if r.Method != "GET" {
			t.Errorf("plan sent %s %s", r.Method, r.Path)
		}
	}
	if refs := git(t, w.Work, time.Time{}, "admin", "for-each-ref", gitrepo.NotesRef.String()); refs != "" {
		t.Errorf("plan wrote %s", refs)
	}
	if len(ps.Plan.Actions) == 0 {
		t.Errorf("the plan shows no grant for the break-glass request")
	}
}

// Finding 11: what gitgrant granted it revokes when its file leaves main,
// even on a role whose drift mode is report.
func TestReportRoleHonoursEarlyRevocation(t *testing.T) {
	t.Parallel()
	cfg := strings.Replace(trustConfig, "ro: {max_duration: 4h, approvals: 1}", "ro: {max_duration: 4h, approvals: 1, drift: report}", 1)
	w := newTrustWorld(t, cfg)
	w.merge(1, "alice", "requests/db/alice.yaml", reqFile("alice", "duration: 4h\n"), t0.Add(-time.Hour))
	p := roProvider()
	p.Set("ro", map[string]time.Time{"carol": {}}) // drift: reported, left alone
	w.pass(t, p, t0.Add(-50*time.Minute))
	git(t, w.Work, time.Time{}, "admin", "pull", "-q", "--ff-only", "origin", "main")
	git(t, w.Work, t0.Add(-10*time.Minute), "alice", "rm", "-q", "requests/db/alice.yaml")
	git(t, w.Work, t0.Add(-10*time.Minute), "alice", "commit", "-q", "-m", "done with access")
	git(t, w.Work, time.Time{}, "admin", "push", "-q", "origin", "main")
	ps, _ := w.pass(t, p, t0)
	if diff := cmp.Diff([]string{"carol"}, members(t, p)); diff != "" {
		t.Errorf("members (-want +got): alice's access must end with her file:\n%s", diff)
	}
	var cause gitgrant.Cause
	for _, a := range ps.Plan.Actions {
		if a.Principal == "alice" {
			cause = a.Cause
		}
	}
	if cause != gitgrant.CauseWithdrawn {
		t.Errorf("cause %q, want withdrawn", cause)
	}
}

// ghfakeDown is GitHub answering every request with a 503 for a while.
func ghfakeDown() ghfake.Fault {
	return ghfake.Fault{Status: 503, Times: 1000}
}

// forgeSighting pushes a seen record for commit at when, as somebody who
// can push refs/notes/gitgrant would.
func forgeSighting(t *testing.T, w *world, commit string, when time.Time) {
	t.Helper()
	r, err := gitrepo.Open(context.Background(), gitrepo.Options{Source: w.Work})
	if err != nil {
		t.Fatal(err)
	}
	rec := gitrepo.NoteRecord{Event: gitrepo.EventSeen, Seen: []gitrepo.Sighting{{Commit: commit}}, RecordedAt: when}
	if err := r.RecordNotes(context.Background(), []gitrepo.Note{{Commit: gitrepo.ParseHash(commit), Record: rec}}, true, gitrepo.CommitOptions{Clock: fakeclock.New(when)}); err != nil {
		t.Fatal(err)
	}
}

// Simulation seed 23: a verified pull request removed svc's standing
// entry; a fresh process with GitHub unreachable could not verify that
// change again, fell back to the policy before it and honoured the
// standing entry, so svc, granted by hand, kept the role. A change GitHub
// cannot be asked about now narrows standing; it loosens nothing.
func TestPendingPolicyChangeDoesNotRestoreStanding(t *testing.T) {
	t.Parallel()
	withSvc := trustConfig + "    standing: [svc]\n"
	w := newTrustWorld(t, withSvc)
	p := roProvider()
	p.Set("ro", map[string]time.Time{"svc": {}})
	w.pass(t, p, t0.Add(-time.Hour))
	if diff := cmp.Diff([]string{"svc"}, members(t, p)); diff != "" {
		t.Fatalf("standing svc (-want +got):\n%s", diff)
	}

	w.MergePR(1, "bob", map[string]string{"gitgrant.yaml": trustConfig}, t0.Add(-20*time.Minute), "security")
	w.pass(t, p, t0.Add(-10*time.Minute))
	if got := members(t, p); len(got) != 0 {
		t.Fatalf("members %v after the verified change removed svc's standing", got)
	}

	p.Set("ro", map[string]time.Time{"svc": {}}) // granted by hand again
	w.GH.Inject(ghfakeDown())
	ps, _ := w.pass(t, p, t0) // a fresh process: it cannot ask about pull request #1
	if pol := ps.Plan.Policy; pol == nil || len(pol.Unverified) == 0 {
		t.Fatalf("policy in force %+v: want pull request #1's change pending", pol)
	}
	if got := members(t, p); len(got) != 0 {
		t.Errorf("members %v: with the change that removed svc's standing pending, svc must not stand again", got)
	}
}

// The outcome counts the ledger records a pass wrote, the grant records
// written before the grants included: reconcile's summary said
// "0 note(s)" for a pass that recorded every grant it made.
func TestOutcomeCountsGrantRecords(t *testing.T) {
	t.Parallel()
	w := newTrustWorld(t, trustConfig)
	w.merge(1, "bob", "requests/db/bob.yaml", reqFile("bob", "duration: 2h\n"), t0.Add(-time.Hour))
	p := roProvider()
	eng := w.engine(p, t0)
	ps := mustPlan(t, eng)
	defer ps.Close()
	out, err := eng.Apply(context.Background(), ps, engine.ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"bob"}, members(t, p)); diff != "" {
		t.Fatalf("members (-want +got):\n%s", diff)
	}
	recs, err := w.engine(p, t0).Repo.Records(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	written := 0
	for _, rs := range recs.ByCommit() {
		written += len(rs)
	}
	if out.Notes == 0 || out.Notes != written {
		t.Errorf("outcome counts %d notes; the ledger holds %d records, all written by this pass", out.Notes, written)
	}
}

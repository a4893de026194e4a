package reconciler

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/providers"
	"github.com/gitgrant/gitgrant/schema"
)

const testConfigYAML = `
policy:
  break_glass: {members: [alice], max_duration: 1h}
identities:
  alice: {principals: {db: alice_db}}
  bob: {principals: {db: bob_db}}
  carol: {principals: {db: carol_db}}
providers:
  db:
    type: postgres
    dsn_env: DSN
    roles:
      ro: {max_duration: 8h, approvals: 0}
      rw: {max_duration: 4h, approvals: 1}
      audit: {approvals: 0, drift: report}
    standing: [{principal: app, roles: [rw]}]
`

var t0 = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func loadConfig(t *testing.T) *gitgrant.Config {
	t.Helper()
	cfg, ds := schema.LoadConfig("gitgrant.yaml", []byte(testConfigYAML))
	if cfg == nil {
		t.Fatal(ds)
	}
	return cfg
}

// req builds a request the way the loader would.
func req(path, requester, role string, dur time.Duration) *gitgrant.Request {
	return &gitgrant.Request{Path: path, Requester: requester, Reason: "test", Duration: gitgrant.Duration(dur),
		Grants: []gitgrant.GrantRef{{Provider: "db", Role: role}}}
}

func approved(merged time.Time, approvers ...string) *gitgrant.Evidence {
	ev := &gitgrant.Evidence{Approved: true, MergedAt: merged, PullRequest: 7}
	for _, a := range approvers {
		ev.Approvers = append(ev.Approvers, gitgrant.Approver{Login: a})
	}
	return ev
}

func members(principals ...string) []providers.Member {
	var out []providers.Member
	for _, p := range principals {
		out = append(out, providers.Member{Principal: p})
	}
	return out
}

// allListed reports every managed role as listed, with the given members.
func allListed(m map[string][]providers.Member) Observed {
	o := Observed{}
	for _, role := range []string{"ro", "rw", "audit"} {
		o[RoleKey{"db", role}] = m[role]
	}
	return o
}

// listedIn is allListed with principals the only members, of role.
func listedIn(role string, principals ...string) Observed {
	return allListed(map[string][]providers.Member{role: members(principals...)})
}

func TestDiff(t *testing.T) {
	t.Parallel()
	cfg := loadConfig(t)
	hour := time.Hour
	rwAlice := req("requests/db/alice.yaml", "alice", "rw", 2*hour)
	cases := []struct {
		name     string
		sources  []Source
		observed Observed
		opts     Options
		want     []gitgrant.Action
	}{
		{
			name:     "approved and in window: grant until merge + duration",
			sources:  []Source{{Request: rwAlice, Evidence: approved(t0.Add(-hour), "bob")}},
			observed: allListed(nil),
			want:     []gitgrant.Action{{Op: gitgrant.OpGrant, Provider: "db", Role: "rw", Principal: "alice_db", Expires: t0.Add(hour), Reason: "requests/db/alice.yaml until 2026-11-22T13:00:00Z", Request: "requests/db/alice.yaml"}},
		},
		{
			name:     "already granted: nothing to do",
			sources:  []Source{{Request: rwAlice, Evidence: approved(t0.Add(-hour), "bob")}},
			observed: listedIn("rw", "alice_db"),
			want:     nil,
		},
		{
			name:     "expired: revoke, marked as expiry",
			sources:  []Source{{Request: rwAlice, Evidence: approved(t0.Add(-3*hour), "bob")}},
			observed: listedIn("rw", "alice_db"),
			want:     []gitgrant.Action{{Op: gitgrant.OpRevoke, Provider: "db", Role: "rw", Principal: "alice_db", Expired: true, Cause: gitgrant.CauseExpired, Reason: "requests/db/alice.yaml expired at 2026-11-22T11:00:00Z", Request: "requests/db/alice.yaml"}},
		},
		{
			name:     "window ends exactly now: revoked, not granted",
			sources:  []Source{{Request: rwAlice, Evidence: approved(t0.Add(-2*hour), "bob")}},
			observed: listedIn("rw", "alice_db"),
			want:     []gitgrant.Action{{Op: gitgrant.OpRevoke, Provider: "db", Role: "rw", Principal: "alice_db", Expired: true, Cause: gitgrant.CauseExpired, Reason: "requests/db/alice.yaml expired at 2026-11-22T12:00:00Z", Request: "requests/db/alice.yaml"}},
		},
		{
			name: "scheduled start in the future: no grant yet, early member revoked",
			sources: []Source{{Request: func() *gitgrant.Request {
				r := req("requests/db/alice.yaml", "alice", "rw", hour)
				r.Starts = t0.Add(2 * hour)
				return r
			}(), Evidence: approved(t0.Add(-hour), "bob")}},
			observed: listedIn("rw", "alice_db"),
			want:     []gitgrant.Action{{Op: gitgrant.OpRevoke, Provider: "db", Role: "rw", Principal: "alice_db", Cause: gitgrant.CauseDrift, Reason: "requests/db/alice.yaml starts at 2026-11-22T14:00:00Z", Request: "requests/db/alice.yaml"}},
		},
		{
			name:     "rejected evidence: never granted, member revoked with the reasons",
			sources:  []Source{{Request: rwAlice, Evidence: &gitgrant.Evidence{MergedAt: t0.Add(-hour), Reasons: []string{"self-approval by alice does not count"}}}},
			observed: listedIn("rw", "alice_db"),
			want:     []gitgrant.Action{{Op: gitgrant.OpRevoke, Provider: "db", Role: "rw", Principal: "alice_db", Cause: gitgrant.CauseDrift, Reason: "requests/db/alice.yaml is not approved: self-approval by alice does not count", Request: "requests/db/alice.yaml"}},
		},
		{
			name:     "unverified (GitHub down) and in window, nothing in the ledger: nothing granted, and it shields no member (finding 4)",
			sources:  []Source{{Request: rwAlice, CommittedAt: t0.Add(-hour)}, {Request: req("requests/db/bob.yaml", "bob", "rw", 2*hour), CommittedAt: t0.Add(-hour)}},
			observed: listedIn("rw", "alice_db"),
			want: []gitgrant.Action{{Op: gitgrant.OpRevoke, Provider: "db", Role: "rw", Principal: "alice_db", Cause: gitgrant.CauseDrift,
				Reason: "requests/db/alice.yaml is unverified and gitgrant holds no grant for it: approval not verified: GitHub was not consulted or could not be reached", Request: "requests/db/alice.yaml"}},
		},
		{
			name:     "unverified but past its end: revocation does not wait for GitHub",
			sources:  []Source{{Request: rwAlice, CommittedAt: t0.Add(-5 * hour)}},
			observed: listedIn("rw", "alice_db"),
			want:     []gitgrant.Action{{Op: gitgrant.OpRevoke, Provider: "db", Role: "rw", Principal: "alice_db", Expired: true, Cause: gitgrant.CauseExpired, Reason: "requests/db/alice.yaml expired at 2026-11-22T09:00:00Z", Request: "requests/db/alice.yaml"}},
		},
		{
			name:     "drift: a member nobody asked for is revoked; on a report role only reported; standing kept",
			observed: allListed(map[string][]providers.Member{"rw": members("mallory", "app"), "audit": members("eve")}),
			want: []gitgrant.Action{
				{Op: gitgrant.OpRevoke, Provider: "db", Role: "rw", Principal: "mallory", Cause: gitgrant.CauseDrift, Reason: "drift: not backed by an active request or a standing entry"},
				{Op: gitgrant.OpReport, Provider: "db", Role: "audit", Principal: "eve", Cause: gitgrant.CauseDrift, Reason: "drift: not backed by an active request or a standing entry (drift: report)"},
			},
		},
		{
			name:     "standing is per role: app on ro is drift",
			observed: listedIn("ro", "app"),
			want:     []gitgrant.Action{{Op: gitgrant.OpRevoke, Provider: "db", Role: "ro", Principal: "app", Cause: gitgrant.CauseDrift, Reason: "drift: not backed by an active request or a standing entry"}},
		},
		{
			name: "an expired and an active request for the same role: kept, until the later end",
			sources: []Source{
				{Request: req("requests/db/a1.yaml", "alice", "rw", hour), Evidence: approved(t0.Add(-3*hour), "bob")},
				{Request: req("requests/db/a2.yaml", "alice", "rw", 3*hour), Evidence: approved(t0.Add(-hour), "bob")},
			},
			observed: allListed(map[string][]providers.Member{"rw": {{Principal: "alice_db", Until: t0.Add(2 * hour)}}}),
			want:     nil,
		},
		{
			name:     "native expiry differs from the request: moved",
			sources:  []Source{{Request: rwAlice, Evidence: approved(t0.Add(-hour), "bob")}},
			observed: allListed(map[string][]providers.Member{"rw": {{Principal: "alice_db", Until: t0.Add(30 * time.Minute)}}}),
			want:     []gitgrant.Action{{Op: gitgrant.OpGrant, Provider: "db", Role: "rw", Principal: "alice_db", Expires: t0.Add(hour), Reason: "requests/db/alice.yaml: move the target's expiry from 2026-11-22T12:30:00Z to 2026-11-22T13:00:00Z", Request: "requests/db/alice.yaml"}},
		},
		{
			name: "expires beyond the role maximum: clamped",
			sources: []Source{{Request: func() *gitgrant.Request {
				r := req("requests/db/alice.yaml", "alice", "rw", 0)
				r.Expires = t0.Add(48 * hour)
				return r
			}(), Evidence: approved(t0.Add(-hour), "bob")}},
			observed: allListed(nil),
			want:     []gitgrant.Action{{Op: gitgrant.OpGrant, Provider: "db", Role: "rw", Principal: "alice_db", Expires: t0.Add(3 * hour), Reason: "requests/db/alice.yaml until 2026-11-22T15:00:00Z", Request: "requests/db/alice.yaml"}},
		},
		{
			name: "emergency: clamped to the break-glass maximum",
			sources: []Source{{Request: func() *gitgrant.Request {
				r := req("requests/db/alice.yaml", "alice", "rw", 4*hour)
				r.Emergency = true
				return r
			}(), Evidence: &gitgrant.Evidence{Approved: true, Emergency: true, MergedAt: t0.Add(-10 * time.Minute)}}},
			observed: allListed(nil),
			want:     []gitgrant.Action{{Op: gitgrant.OpGrant, Provider: "db", Role: "rw", Principal: "alice_db", Expires: t0.Add(50 * time.Minute), Reason: "requests/db/alice.yaml until 2026-11-22T12:50:00Z", Request: "requests/db/alice.yaml"}},
		},
		{
			name:     "role could not be listed: only certain expiries are revoked, nothing granted",
			sources:  []Source{{Request: rwAlice, Evidence: approved(t0.Add(-3*hour), "bob")}, {Request: req("requests/db/bob.yaml", "bob", "rw", hour), Evidence: approved(t0, "carol")}},
			observed: Observed{},
			want:     []gitgrant.Action{{Op: gitgrant.OpRevoke, Provider: "db", Role: "rw", Principal: "alice_db", Expired: true, Cause: gitgrant.CauseExpired, Reason: "requests/db/alice.yaml expired at 2026-11-22T11:00:00Z", Request: "requests/db/alice.yaml"}},
		},
		{
			name:     "offline dry run: a no-approval role is planned from the commit time",
			sources:  []Source{{Request: req("requests/db/ro.yaml", "bob", "ro", 2*hour), CommittedAt: t0.Add(-hour)}, {Request: rwAlice, CommittedAt: t0.Add(-hour)}},
			observed: allListed(nil),
			opts:     Options{Offline: true},
			want:     []gitgrant.Action{{Op: gitgrant.OpGrant, Provider: "db", Role: "ro", Principal: "bob_db", Expires: t0.Add(hour), Reason: "requests/db/ro.yaml until 2026-11-22T13:00:00Z", Request: "requests/db/ro.yaml"}},
		},
		{
			name:     "without offline, even a no-approval role needs evidence (a direct push grants nothing)",
			sources:  []Source{{Request: req("requests/db/ro.yaml", "bob", "ro", 2*hour), CommittedAt: t0.Add(-hour)}},
			observed: allListed(nil),
			want:     nil,
		},
		{
			name: "order: revocations first, then grants, then reports, each sorted",
			sources: []Source{
				{Request: req("requests/db/c.yaml", "carol", "ro", hour), Evidence: approved(t0)},
				{Request: req("requests/db/b.yaml", "bob", "ro", hour), Evidence: approved(t0)},
			},
			observed: allListed(map[string][]providers.Member{"rw": members("zed", "amy"), "audit": members("x")}),
			want: []gitgrant.Action{
				{Op: gitgrant.OpRevoke, Provider: "db", Role: "rw", Principal: "amy", Cause: gitgrant.CauseDrift, Reason: "drift: not backed by an active request or a standing entry"},
				{Op: gitgrant.OpRevoke, Provider: "db", Role: "rw", Principal: "zed", Cause: gitgrant.CauseDrift, Reason: "drift: not backed by an active request or a standing entry"},
				{Op: gitgrant.OpGrant, Provider: "db", Role: "ro", Principal: "bob_db", Expires: t0.Add(hour), Reason: "requests/db/b.yaml until 2026-11-22T13:00:00Z", Request: "requests/db/b.yaml"},
				{Op: gitgrant.OpGrant, Provider: "db", Role: "ro", Principal: "carol_db", Expires: t0.Add(hour), Reason: "requests/db/c.yaml until 2026-11-22T13:00:00Z", Request: "requests/db/c.yaml"},
				{Op: gitgrant.OpReport, Provider: "db", Role: "audit", Principal: "x", Cause: gitgrant.CauseDrift, Reason: "drift: not backed by an active request or a standing entry (drift: report)"},
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			plan := Diff(cfg, Evaluate(cfg, tc.sources, t0, tc.opts), tc.observed, nil, t0)
			if diff := cmp.Diff(tc.want, plan.Actions, cmpEmpty, ignoreHolding); diff != "" {
				t.Errorf("actions (-want +got):\n%s", diff)
			}
			// The plan is a pure function: the same inputs give the same plan.
			again := Diff(cfg, Evaluate(cfg, tc.sources, t0, tc.opts), tc.observed, nil, t0)
			if diff := cmp.Diff(plan, again, cmpEmpty); diff != "" {
				t.Errorf("not deterministic:\n%s", diff)
			}
		})
	}
}

var cmpEmpty = cmp.FilterValues(func(a, b []gitgrant.Action) bool { return len(a) == 0 && len(b) == 0 }, cmp.Ignore())

// ignoreHolding leaves the ledger lines to the ledger tests.
var ignoreHolding = cmpopts.IgnoreFields(gitgrant.Action{}, "Holding")

func TestEvaluateStatusesAndNextChange(t *testing.T) {
	t.Parallel()
	cfg := loadConfig(t)
	hour := time.Hour
	pending := req("requests/db/p.yaml", "bob", "ro", hour)
	pending.Starts = t0.Add(2 * hour)
	unknown := req("requests/db/u.yaml", "mallory", "ro", hour)
	sources := []Source{
		{Request: req("requests/db/a.yaml", "alice", "rw", 2*hour), Evidence: approved(t0.Add(-hour), "bob")},
		{Request: req("requests/db/e.yaml", "alice", "rw", hour), Evidence: approved(t0.Add(-2*hour), "bob")},
		{Request: pending, Evidence: approved(t0.Add(-hour))},
		{Request: req("requests/db/r.yaml", "carol", "rw", hour), Evidence: &gitgrant.Evidence{Reasons: []string{"no approval"}}},
		{Request: req("requests/db/v.yaml", "carol", "rw", hour), CommittedAt: t0},
		{Request: unknown, Evidence: approved(t0)},
	}
	entries := Evaluate(cfg, sources, t0, Options{})
	got := map[string]gitgrant.Status{}
	for _, e := range entries {
		got[e.Path] = e.Status
	}
	want := map[string]gitgrant.Status{
		"requests/db/a.yaml": gitgrant.StatusActive,
		"requests/db/e.yaml": gitgrant.StatusExpired,
		"requests/db/p.yaml": gitgrant.StatusPending,
		"requests/db/r.yaml": gitgrant.StatusRejected,
		"requests/db/v.yaml": gitgrant.StatusUnverified,
		"requests/db/u.yaml": gitgrant.StatusRejected,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}
	plan := Diff(cfg, entries, allListed(nil), nil, t0)
	// a.yaml ends at 13:00, p.yaml starts at 14:00; v.yaml is unverified
	// and r.yaml rejected, so neither schedules anything.
	if want := t0.Add(hour); !plan.NextChange.Equal(want) {
		t.Errorf("NextChange = %v, want %v", plan.NextChange, want)
	}
}

func TestDiffNamesUnlistedRoles(t *testing.T) {
	t.Parallel()
	cfg := loadConfig(t)
	plan := Diff(cfg, nil, Observed{{"db", "ro"}: nil}, nil, t0)
	if diff := cmp.Diff([]string{"db/audit", "db/rw"}, plan.Unobserved); diff != "" {
		t.Errorf("unobserved (-want +got):\n%s", diff)
	}
}

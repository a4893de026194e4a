package reconciler

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/gitgrant/gitgrant"
)

// verified is an approved request file with its blob, merged at merged.
func verified(path, requester, role string, dur time.Duration, merged time.Time, blob string) Source {
	return Source{Request: req(path, requester, role, dur), Evidence: approved(merged, "carol"), Blob: blob, Commit: "c-" + blob}
}

// unverified is the same file while GitHub cannot be asked.
func unverified(path, requester, role string, dur time.Duration, committed time.Time, blob string) Source {
	return Source{Request: req(path, requester, role, dur), CommittedAt: committed, Blob: blob, Commit: "c-" + blob}
}

// holding is a ledger line for principal on db/role (target: the role's
// own name), backed by path at blob until end.
func holding(role, principal, path, blob string, end time.Time) gitgrant.Holding {
	return gitgrant.Holding{MemberKey: gitgrant.MemberKey{Provider: "db", Role: role, Principal: principal}, Target: role,
		End: end, Request: path, Blob: blob, Commit: "c-" + blob, Policy: "p1", GrantedAt: t0.Add(-5 * time.Hour)}
}

func ledgerOf(hs ...gitgrant.Holding) gitgrant.Ledger {
	l := gitgrant.Ledger{}
	for _, h := range hs {
		l[h.MemberKey] = h
	}
	return l
}

// revokeHeld is the revocation of the ledger holding h for cause, saying
// reason; a revocation for expiry is marked Expired.
func revokeHeld(h gitgrant.Holding, cause gitgrant.Cause, reason string) gitgrant.Action {
	return gitgrant.Action{Op: gitgrant.OpRevoke, Provider: h.Provider, Role: h.Role, Principal: h.Principal, Cause: cause,
		Expired: cause == gitgrant.CauseExpired, Reason: reason, Request: h.Request, Holding: &h}
}

func TestDiffWithLedger(t *testing.T) {
	t.Parallel()
	cfg := loadConfig(t)
	hour := time.Hour
	const alice, bob = "requests/db/alice.yaml", "requests/db/bob.yaml"
	aliceHeld := holding("rw", "alice_db", alice, "b1", t0.Add(hour))
	// aliceRW: alice's approved request, 2h of db/rw from an hour ago.
	aliceRW := func() []Source { return []Source{verified(alice, "alice", "rw", 2*hour, t0.Add(-hour), "b1")} }
	oldTarget := holding("rw", "alice_db", alice, "b0", t0.Add(hour))
	oldTarget.Target = "rw_old"
	// roleGone and providerGone are held for alice's request on a role and
	// a provider gitgrant.yaml no longer names.
	roleGone := gitgrant.Holding{MemberKey: gitgrant.MemberKey{Provider: "db", Role: "old", Principal: "alice_db"}, Target: "old_grp", End: t0.Add(hour), Request: alice, Blob: "b1"}
	providerGone := gitgrant.Holding{MemberKey: gitgrant.MemberKey{Provider: "gone", Role: "admin", Principal: "alice"}, Target: "admins", End: t0.Add(hour), Request: alice, Blob: "b1"}
	cases := []struct {
		name       string
		sources    []Source
		observed   Observed
		ledger     gitgrant.Ledger
		want       []gitgrant.Action
		wantRecord []gitgrant.Holding
		wantNext   time.Time
	}{
		{
			name:     "a grant carries the ledger line to record before the call",
			sources:  aliceRW(),
			observed: allListed(nil),
			want: []gitgrant.Action{{Op: gitgrant.OpGrant, Provider: "db", Role: "rw", Principal: "alice_db", Expires: t0.Add(hour), Reason: alice + " until 2026-11-22T13:00:00Z", Request: alice,
				Holding: &gitgrant.Holding{MemberKey: aliceHeld.MemberKey, Target: "rw", End: t0.Add(hour), Request: alice, Blob: "b1", Commit: "c-b1", GrantedAt: t0}}},
			wantNext: t0.Add(hour),
		},
		{
			name:       "desired and present but not in the ledger: recorded, no provider call",
			sources:    aliceRW(),
			observed:   listedIn("rw", "alice_db"),
			wantRecord: []gitgrant.Holding{{MemberKey: aliceHeld.MemberKey, Target: "rw", End: t0.Add(hour), Request: alice, Blob: "b1", Commit: "c-b1", GrantedAt: t0}},
			wantNext:   t0.Add(hour),
		},
		{
			name:     "desired, present and in the ledger as it is: nothing",
			sources:  aliceRW(),
			observed: listedIn("rw", "alice_db"),
			ledger:   ledgerOf(aliceHeld),
			wantNext: t0.Add(hour),
		},
		{
			name: "a second request extends it: recorded with the new backing, granted-at kept",
			sources: []Source{verified(alice, "alice", "rw", 2*hour, t0.Add(-hour), "b1"),
				verified("requests/db/alice-more.yaml", "alice", "rw", 3*hour, t0.Add(-hour), "b2")},
			observed: listedIn("rw", "alice_db"),
			ledger:   ledgerOf(aliceHeld),
			wantRecord: []gitgrant.Holding{{MemberKey: aliceHeld.MemberKey, Target: "rw", End: t0.Add(2 * hour), Request: "requests/db/alice-more.yaml", Blob: "b2", Commit: "c-b2",
				GrantedAt: aliceHeld.GrantedAt}},
			wantNext: t0.Add(hour),
		},
		{
			// Finding 11: an "I'm done" deletion revokes on a drift: report
			// role too, because gitgrant granted it.
			name:     "request file deleted early, on a drift: report role: revoked as withdrawn",
			observed: listedIn("audit", "bob_db"),
			ledger:   ledgerOf(holding("audit", "bob_db", bob, "b9", t0.Add(hour))),
			want:     []gitgrant.Action{revokeHeld(holding("audit", "bob_db", bob, "b9", t0.Add(hour)), gitgrant.CauseWithdrawn, bob+" was removed from the main branch")},
			wantNext: t0.Add(hour),
		},
		{
			name:     "window recorded in the ledger ended, on a drift: report role: revoked as expired",
			observed: listedIn("audit", "bob_db"),
			ledger:   ledgerOf(holding("audit", "bob_db", bob, "b9", t0)),
			want:     []gitgrant.Action{revokeHeld(holding("audit", "bob_db", bob, "b9", t0), gitgrant.CauseExpired, bob+" expired at 2026-11-22T12:00:00Z")},
		},
		{
			name:     "request edited to another role: the old role is withdrawn, the new one granted",
			sources:  []Source{verified(alice, "alice", "ro", 2*hour, t0.Add(-hour), "b2")},
			observed: listedIn("rw", "alice_db"),
			ledger:   ledgerOf(aliceHeld),
			want: []gitgrant.Action{
				revokeHeld(aliceHeld, gitgrant.CauseWithdrawn, alice+" changed since it was granted; the new content grants on its own"),
				{Op: gitgrant.OpGrant, Provider: "db", Role: "ro", Principal: "alice_db", Expires: t0.Add(hour), Reason: alice + " until 2026-11-22T13:00:00Z", Request: alice,
					Holding: &gitgrant.Holding{MemberKey: gitgrant.MemberKey{Provider: "db", Role: "ro", Principal: "alice_db"}, Target: "ro", End: t0.Add(hour), Request: alice, Blob: "b2", Commit: "c-b2", GrantedAt: t0}},
			},
			wantNext: t0.Add(hour),
		},
		{
			name:     "the file on main was rejected: revoked as rejected",
			sources:  []Source{{Request: req(alice, "alice", "rw", 2*hour), Evidence: &gitgrant.Evidence{MergedAt: t0.Add(-hour), Reasons: []string{"the approval was dismissed"}}, Blob: "b1"}},
			observed: listedIn("rw", "alice_db"),
			ledger:   ledgerOf(aliceHeld),
			want:     []gitgrant.Action{revokeHeld(aliceHeld, gitgrant.CauseRejected, alice+" is not approved: the approval was dismissed")},
			wantNext: t0.Add(hour),
		},
		{
			// Finding 6: nothing in gitgrant.yaml names these any more;
			// the ledger does.
			name:     "role and provider gone from the configuration: revoked as a policy change",
			sources:  aliceRW(),
			ledger:   ledgerOf(roleGone, providerGone),
			observed: listedIn("rw", "alice_db"),
			want: []gitgrant.Action{
				revokeHeld(roleGone, gitgrant.CausePolicy, "role db/old is no longer in gitgrant.yaml"),
				revokeHeld(providerGone, gitgrant.CausePolicy, "provider gone is no longer in gitgrant.yaml"),
			},
			wantRecord: []gitgrant.Holding{{MemberKey: aliceHeld.MemberKey, Target: "rw", End: t0.Add(hour), Request: alice, Blob: "b1", Commit: "c-b1", GrantedAt: t0}},
			wantNext:   t0.Add(hour),
		},
		{
			name:     "the identity now maps alice elsewhere: the old principal's holding is a policy revocation",
			sources:  aliceRW(),
			ledger:   ledgerOf(holding("rw", "alice_old", alice, "b1", t0.Add(hour))),
			observed: listedIn("rw", "alice_old"),
			want: []gitgrant.Action{
				revokeHeld(holding("rw", "alice_old", alice, "b1", t0.Add(hour)), gitgrant.CausePolicy, alice+" no longer grants db/rw to alice_old under the policy"),
				{Op: gitgrant.OpGrant, Provider: "db", Role: "rw", Principal: "alice_db", Expires: t0.Add(hour), Reason: alice + " until 2026-11-22T13:00:00Z", Request: alice,
					Holding: &gitgrant.Holding{MemberKey: aliceHeld.MemberKey, Target: "rw", End: t0.Add(hour), Request: alice, Blob: "b1", Commit: "c-b1", GrantedAt: t0}},
			},
			wantNext: t0.Add(hour),
		},
		{
			name:     "role could not be listed: the ledger's revocations still go out, drift and grants wait",
			sources:  []Source{verified("requests/db/carol.yaml", "carol", "rw", 2*hour, t0.Add(-hour), "b3")},
			observed: Observed{},
			ledger:   ledgerOf(aliceHeld),
			want:     []gitgrant.Action{revokeHeld(aliceHeld, gitgrant.CauseWithdrawn, alice+" was removed from the main branch")},
			wantNext: t0.Add(hour),
		},
		{
			name:     "a holding whose member is already gone is still revoked, so its end is recorded",
			observed: allListed(nil),
			ledger:   ledgerOf(aliceHeld),
			want:     []gitgrant.Action{revokeHeld(aliceHeld, gitgrant.CauseWithdrawn, alice+" was removed from the main branch")},
			wantNext: t0.Add(hour),
		},
		{
			name:     "a standing member is never revoked, whatever the ledger says",
			observed: listedIn("rw", "app"),
			ledger:   ledgerOf(holding("rw", "app", bob, "b9", t0.Add(-hour))),
		},
		{
			name:     "the role's target changed: revoked from the old target first; the grant follows next pass",
			sources:  aliceRW(),
			observed: allListed(nil),
			ledger:   ledgerOf(oldTarget),
			want:     []gitgrant.Action{revokeHeld(oldTarget, gitgrant.CausePolicy, "the target of db/rw changed from rw_old to rw: revoked there, granted on rw in the next pass")},
			wantNext: t0.Add(hour),
		},
		{
			// Finding 4: what gitgrant granted for this very content stays
			// while GitHub cannot be asked, until the recorded end.
			name:     "unverified, same file content as the holding: kept, neither revoked nor granted",
			sources:  []Source{unverified(alice, "alice", "rw", 4*hour, t0.Add(-hour), "b1")},
			observed: listedIn("rw", "alice_db"),
			ledger:   ledgerOf(aliceHeld),
			wantNext: t0.Add(hour),
		},
		{
			name:     "unverified and the holding's end has passed: revoked as expired, although the file asks for longer",
			sources:  []Source{unverified(alice, "alice", "rw", 4*hour, t0.Add(-hour), "b1")},
			observed: listedIn("rw", "alice_db"),
			ledger:   ledgerOf(holding("rw", "alice_db", alice, "b1", t0)),
			want:     []gitgrant.Action{revokeHeld(holding("rw", "alice_db", alice, "b1", t0), gitgrant.CauseExpired, alice+" expired at 2026-11-22T12:00:00Z")},
			wantNext: t0.Add(3 * hour),
		},
		{
			name:     "unverified edit of a granted file (a direct push extending it): withdrawn, nothing kept",
			sources:  []Source{unverified(alice, "alice", "rw", 4*hour, t0.Add(-hour), "b2")},
			observed: listedIn("rw", "alice_db"),
			ledger:   ledgerOf(aliceHeld),
			want:     []gitgrant.Action{revokeHeld(aliceHeld, gitgrant.CauseWithdrawn, alice+" changed since it was granted; the new content grants on its own")},
			wantNext: t0.Add(hour),
		},
		{
			name:     "unverified request on a drift: report role: its member is only reported, never kept by the file",
			sources:  []Source{unverified("requests/db/carol.yaml", "carol", "audit", 4*hour, t0.Add(-hour), "b3")},
			observed: listedIn("audit", "carol_db"),
			want: []gitgrant.Action{{Op: gitgrant.OpReport, Provider: "db", Role: "audit", Principal: "carol_db", Cause: gitgrant.CauseDrift,
				Reason: "requests/db/carol.yaml is unverified and gitgrant holds no grant for it: approval not verified: GitHub was not consulted or could not be reached (drift: report)", Request: "requests/db/carol.yaml"}},
			wantNext: t0.Add(3 * hour),
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			plan := Diff(cfg, Evaluate(cfg, tc.sources, t0, Options{}), tc.observed, tc.ledger, t0)
			if diff := cmp.Diff(tc.want, plan.Actions, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("actions (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantRecord, plan.Record, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("record (-want +got):\n%s", diff)
			}
			if !plan.NextChange.Equal(tc.wantNext) {
				t.Errorf("NextChange = %v, want %v", plan.NextChange, tc.wantNext)
			}
		})
	}
}

func TestDiffCountsObservedMembersPerRole(t *testing.T) {
	t.Parallel()
	cfg := loadConfig(t)
	plan := Diff(cfg, nil, Observed{{"db", "rw"}: members("app", "x"), {"db", "ro"}: nil}, nil, t0)
	if diff := cmp.Diff(map[string]int{"db/rw": 2, "db/ro": 0}, plan.ObservedByRole); diff != "" {
		t.Errorf("ObservedByRole (-want +got):\n%s", diff)
	}
	if plan.ObservedMembers != 2 {
		t.Errorf("ObservedMembers = %d, want 2", plan.ObservedMembers)
	}
}

func TestReachable(t *testing.T) {
	t.Parallel()
	cfg := loadConfig(t)
	key := func(provider, role string) gitgrant.MemberKey {
		return gitgrant.MemberKey{Provider: provider, Role: role, Principal: "alice_db"}
	}
	cases := []struct {
		name string
		h    gitgrant.Holding
		want bool
	}{
		{"same role and target", gitgrant.Holding{MemberKey: key("db", "rw"), Target: "rw"}, true},
		{"a record from before targets were kept", gitgrant.Holding{MemberKey: key("db", "rw")}, true},
		{"the role's target changed", gitgrant.Holding{MemberKey: key("db", "rw"), Target: "orders_rw"}, false},
		{"the role left", gitgrant.Holding{MemberKey: key("db", "old"), Target: "old"}, false},
		{"the provider left", gitgrant.Holding{MemberKey: key("gone", "rw"), Target: "rw"}, false},
	}
	for _, tc := range cases {
		if got := Reachable(cfg, tc.h); got != tc.want {
			t.Errorf("%s: Reachable = %v, want %v", tc.name, got, tc.want)
		}
	}
}

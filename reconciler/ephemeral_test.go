package reconciler

import (
	"strings"
	"testing"
	"time"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/providers"
)

// ephemeralConfig is the test config with db/ro granted through
// ephemeral accounts.
func ephemeralConfig(t *testing.T) *gitgrant.Config {
	return variant(t, setRole("ro", func(r *gitgrant.RoleConfig) { r.Mode = gitgrant.ModeEphemeral }))
}

func account(name, owner, path, blob string, end time.Time) gitgrant.Holding {
	h := holding("ro", name, path, blob, end)
	h.Owner = owner
	return h
}

func TestDiffEphemeral(t *testing.T) {
	t.Parallel()
	cfg := ephemeralConfig(t)
	hour := time.Hour
	const alice = "requests/db/alice.yaml"
	live := account("gg_ro_k3x9", "alice_db", alice, "b1", t0.Add(hour))
	type want struct {
		op        gitgrant.Op
		principal string // "" for a new account
		owner     string
		cause     gitgrant.Cause
	}
	cases := []struct {
		name     string
		sources  []Source
		accounts []string
		ledger   gitgrant.Ledger
		want     []want
	}{
		{
			name:    "a desired window gets a new account, named by the engine",
			sources: []Source{verified(alice, "alice", "ro", 2*hour, t0.Add(-hour), "b1")},
			want:    []want{{op: gitgrant.OpGrant, owner: "alice_db"}},
		},
		{
			name:     "its account exists: nothing to do",
			sources:  []Source{verified(alice, "alice", "ro", 2*hour, t0.Add(-hour), "b1")},
			accounts: []string{"gg_ro_k3x9"},
			ledger:   ledgerOf(live),
		},
		{
			name:    "its account is gone from the target: replaced",
			sources: []Source{verified(alice, "alice", "ro", 2*hour, t0.Add(-hour), "b1")},
			ledger:  ledgerOf(live),
			want:    []want{{op: gitgrant.OpRevoke, principal: "gg_ro_k3x9", cause: gitgrant.CauseWithdrawn}, {op: gitgrant.OpGrant, owner: "alice_db"}},
		},
		{
			name:     "the file left main: the account is dropped",
			accounts: []string{"gg_ro_k3x9"},
			ledger:   ledgerOf(live),
			want:     []want{{op: gitgrant.OpRevoke, principal: "gg_ro_k3x9", cause: gitgrant.CauseWithdrawn}},
		},
		{
			name:     "its window ended: dropped as expired",
			sources:  []Source{verified(alice, "alice", "ro", hour/2, t0.Add(-hour), "b1")},
			accounts: []string{"gg_ro_k3x9"},
			ledger:   ledgerOf(account("gg_ro_k3x9", "alice_db", alice, "b1", t0.Add(-hour/2))),
			want:     []want{{op: gitgrant.OpRevoke, principal: "gg_ro_k3x9", cause: gitgrant.CauseExpired}},
		},
		{
			name:     "an account no ledger line explains (a crash before the record) is dropped, even on a report role",
			sources:  []Source{verified(alice, "alice", "ro", 2*hour, t0.Add(-hour), "b1")},
			accounts: []string{"gg_ro_k3x9", "gg_ro_zz11"},
			ledger:   ledgerOf(live),
			want:     []want{{op: gitgrant.OpRevoke, principal: "gg_ro_zz11", cause: gitgrant.CauseDrift}},
		},
		{
			name:     "unverified (GitHub down): the same content keeps its account until its end, and nothing new",
			sources:  []Source{unverified(alice, "alice", "ro", 2*hour, t0.Add(-hour), "b1")},
			accounts: []string{"gg_ro_k3x9"},
			ledger:   ledgerOf(live),
		},
		{
			name:    "the role is no longer ephemeral: its accounts are dropped",
			ledger:  ledgerOf(account("gg_rw_k3x9", "alice_db", alice, "b1", t0.Add(hour))),
			want:    []want{{op: gitgrant.OpRevoke, principal: "gg_rw_k3x9", cause: gitgrant.CauseWithdrawn}},
			sources: nil,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var ms []providers.Member
			for _, a := range tc.accounts {
				ms = append(ms, providers.Member{Principal: a})
			}
			observed := Observed{{"db", "ro"}: ms, {"db", "rw"}: nil}
			entries := Evaluate(cfg, tc.sources, t0, Options{})
			plan := Diff(cfg, entries, observed, tc.ledger, t0)
			var got []want
			for _, a := range plan.Actions {
				w := want{op: a.Op, principal: a.Principal, cause: a.Cause}
				if a.Op == gitgrant.OpGrant {
					if a.Holding == nil || a.Holding.Owner == "" || a.Principal != "" {
						t.Errorf("grant %+v: want an empty principal and a ledger line with the owner", a)
						continue
					}
					w.owner = a.Holding.Owner
				}
				got = append(got, w)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("actions %+v, want %+v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("action %d: %+v, want %+v (%s)", i, got[i], tc.want[i], strings.Join([]string{plan.Actions[i].Reason}, ""))
				}
			}
		})
	}
}

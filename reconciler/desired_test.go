package reconciler

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/gitgrant/gitgrant"
)

// variant is the test config changed by edit, as a policy at another
// commit would be.
func variant(t *testing.T, edit func(*gitgrant.Config)) *gitgrant.Config {
	t.Helper()
	cfg := loadConfig(t)
	edit(cfg)
	return cfg
}

// setRole is a variant's edit of db's role name.
func setRole(name string, edit func(*gitgrant.RoleConfig)) func(*gitgrant.Config) {
	return func(c *gitgrant.Config) {
		r := c.Providers["db"].Roles[name]
		edit(&r)
		c.Providers["db"].Roles[name] = r
	}
}

// Rule 1, finding 1: a request holds only if the policy it was approved
// under (at its pull request's base, and at the commit it was merged onto)
// maps it as the policy now does; the stricter cap wins.
func TestEvaluateUnderSeveralConfigs(t *testing.T) {
	t.Parallel()
	cfg := loadConfig(t)
	hour := time.Hour
	const path = "requests/db/alice.yaml"
	merged := t0.Add(-hour)
	rejected := func(reasons ...string) gitgrant.Entry {
		return gitgrant.Entry{Path: path, Requester: "alice", Status: gitgrant.StatusRejected, Reasons: reasons, ByPolicy: true, Blob: "b1", Commit: "c1",
			Grants: []gitgrant.DesiredGrant{{Provider: "db", Role: "rw", Principal: "alice_db", Window: gitgrant.Window{Start: merged, End: t0.Add(hour)}}}}
	}
	active := func(end time.Time, clamped bool) gitgrant.Entry {
		return gitgrant.Entry{Path: path, Requester: "alice", Status: gitgrant.StatusActive, Approvers: []string{"bob"}, Blob: "b1", Commit: "c1",
			Grants: []gitgrant.DesiredGrant{{Provider: "db", Role: "rw", Principal: "alice_db", Window: gitgrant.Window{Start: merged, End: end}, Clamped: clamped}}}
	}
	cases := []struct {
		name             string
		emergency        bool
		base, mergedOnto *gitgrant.Config
		want             gitgrant.Entry
	}{
		{
			name: "no other policy known: judged by the config now",
			want: active(t0.Add(hour), false),
		},
		{
			name:       "the same mapping everywhere: granted",
			base:       loadConfig(t),
			mergedOnto: loadConfig(t),
			want:       active(t0.Add(hour), false),
		},
		{
			name: "the principal changed since the approval",
			base: variant(t, func(c *gitgrant.Config) { c.Identities["alice"].Principals["db"] = "alice_pg" }),
			want: rejected("the principal of alice on db is alice_pg in the policy at the pull request's base and alice_db now: file a new request"),
		},
		{
			name:       "the identity was added after the approval",
			mergedOnto: variant(t, func(c *gitgrant.Config) { delete(c.Identities, "alice") }),
			want:       rejected("alice is not in identities in the policy at the commit it was merged onto: file a new request"),
		},
		{
			name: "the role was added after the approval",
			base: variant(t, func(c *gitgrant.Config) { delete(c.Providers["db"].Roles, "rw") }),
			want: rejected("role db/rw is not declared in the policy at the pull request's base: file a new request"),
		},
		{
			name: "the role's target changed",
			base: variant(t, setRole("rw", func(r *gitgrant.RoleConfig) { r.Target = "orders_readonly" })),
			want: rejected("role db/rw targets orders_readonly in the policy at the pull request's base and rw now: file a new request"),
		},
		{
			name: "the provider is another system now",
			base: variant(t, func(c *gitgrant.Config) { p := c.Providers["db"]; p.Type = "mysql"; c.Providers["db"] = p }),
			want: rejected("provider db is of type mysql in the policy at the pull request's base and postgres now: file a new request"),
		},
		{
			name:       "the provider was not there",
			mergedOnto: variant(t, func(c *gitgrant.Config) { delete(c.Providers, "db") }),
			want:       rejected("provider db is not declared in the policy at the commit it was merged onto: file a new request"),
		},
		{
			name: "both older policies disagree: each says so",
			base: variant(t, func(c *gitgrant.Config) { c.Identities["alice"].Principals["db"] = "alice_pg" }),
			mergedOnto: variant(t, func(c *gitgrant.Config) {
				c.Identities["alice"].Principals["db"] = "alice_pg"
				delete(c.Providers["db"].Roles, "rw")
			}),
			want: rejected("the principal of alice on db is alice_pg in the policy at the pull request's base and alice_db now: file a new request",
				"role db/rw is not declared in the policy at the commit it was merged onto: file a new request",
				"the principal of alice on db is alice_pg in the policy at the commit it was merged onto and alice_db now: file a new request"),
		},
		{
			name: "a tighter role cap at the base wins",
			base: variant(t, setRole("rw", func(r *gitgrant.RoleConfig) { r.MaxDuration = gitgrant.Duration(90 * time.Minute) })),
			want: active(merged.Add(90*time.Minute), true),
		},
		{
			name:       "a tighter policy cap where it was merged wins",
			mergedOnto: variant(t, func(c *gitgrant.Config) { c.Policy.MaxDuration = gitgrant.Duration(75 * time.Minute) }),
			want:       active(merged.Add(75*time.Minute), true),
		},
		{
			name: "a looser cap elsewhere changes nothing",
			base: variant(t, setRole("rw", func(r *gitgrant.RoleConfig) { r.MaxDuration = gitgrant.Duration(48 * hour) })),
			want: active(t0.Add(hour), false),
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src := Source{Request: req(path, "alice", "rw", 2*hour), Evidence: approved(merged, "bob"), Blob: "b1", Commit: "c1", Base: tc.base, MergedOnto: tc.mergedOnto}
			got := Evaluate(cfg, []Source{src}, t0, Options{})
			if diff := cmp.Diff([]gitgrant.Entry{tc.want}, got, cmpopts.IgnoreFields(gitgrant.Entry{}, "Evidence")); diff != "" {
				t.Errorf("entry (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEvaluateBreakGlassCapUnderSeveralConfigs(t *testing.T) {
	t.Parallel()
	cfg := loadConfig(t) // break-glass max 1h
	r := req("requests/db/alice.yaml", "alice", "rw", 4*time.Hour)
	r.Emergency = true
	merged := t0.Add(-10 * time.Minute)
	base := variant(t, func(c *gitgrant.Config) { c.Policy.BreakGlass.MaxDuration = gitgrant.Duration(20 * time.Minute) })
	got := Evaluate(cfg, []Source{{Request: r, Evidence: &gitgrant.Evidence{Approved: true, Emergency: true, MergedAt: merged}, Base: base}}, t0, Options{})
	want := []gitgrant.DesiredGrant{{Provider: "db", Role: "rw", Principal: "alice_db", Window: gitgrant.Window{Start: merged, End: merged.Add(20 * time.Minute)}, Clamped: true}}
	if diff := cmp.Diff(want, got[0].Grants); diff != "" {
		t.Errorf("grants (-want +got):\n%s", diff)
	}
}

// A request rejected because the policy moved under it revokes what it
// backed as a policy change (braked), not as a rejection.
func TestPolicyDisagreementRevokesAsPolicy(t *testing.T) {
	t.Parallel()
	cfg := loadConfig(t)
	base := variant(t, func(c *gitgrant.Config) { c.Identities["alice"].Principals["db"] = "alice_pg" })
	src := Source{Request: req("requests/db/alice.yaml", "alice", "rw", 2*time.Hour), Evidence: approved(t0.Add(-time.Hour), "bob"), Blob: "b1", Base: base}
	h := gitgrant.Holding{MemberKey: gitgrant.MemberKey{Provider: "db", Role: "rw", Principal: "alice_db"}, Target: "rw", End: t0.Add(time.Hour), Request: src.Request.Path, Blob: "b1"}
	plan := Diff(cfg, Evaluate(cfg, []Source{src}, t0, Options{}), listedIn("rw", "alice_db"), gitgrant.Ledger{h.MemberKey: h}, t0)
	if len(plan.Actions) != 1 || plan.Actions[0].Cause != gitgrant.CausePolicy || plan.Actions[0].Op != gitgrant.OpRevoke {
		t.Fatalf("actions = %+v, want one policy revocation", plan.Actions)
	}
	want := "requests/db/alice.yaml no longer holds under the policy: the principal of alice on db is alice_pg in the policy at the pull request's base and alice_db now: file a new request"
	if got := plan.Actions[0].Reason; got != want {
		t.Errorf("reason = %q, want %q", got, want)
	}
}

package google

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/testing/fakeclock"
	"github.com/gitgrant/gitgrant/internal/testing/testenv"
	"github.com/gitgrant/gitgrant/providers"
	"github.com/gitgrant/gitgrant/providers/internal/httpapi"
	"github.com/gitgrant/gitgrant/providers/internal/httpapitest"
	"github.com/gitgrant/gitgrant/providers/providertest"
)

const keyPath = "/run/secrets/gitgrant-google.json"

// t0 starts the manual clocks; any date works, none is compared with the
// wall clock.
var t0 = time.Date(2031, 3, 4, 9, 0, 0, 0, time.UTC)

// tokenPrefix starts every access token the fake issues: a secret.
const tokenPrefix = "ya29.fake-access-token"

type env struct {
	fake   *fakeGoogle
	keyPEM string
	deps   providers.Deps
	// clock records the waits of the providers the env opens.
	clock *fakeclock.Recording
}

func newEnv(tb testing.TB) *env { return newEnvAt(tb, gitgrant.SystemClock) }

// newEnvAt is newEnv with a clock the fake and the provider share.
func newEnvAt(tb testing.TB, clock gitgrant.Clock) *env {
	f := newFakeGoogle(tb, clock)
	keyJSON, keyPEM := serviceAccountKey(f.tokenURL)
	rec := fakeclock.Record(clock)
	d := providertest.Deps(nil, map[string]string{keyPath: keyJSON}, rec)
	return &env{fake: f, keyPEM: keyPEM, deps: d, clock: rec}
}

func (e *env) config(kind string, roles map[string]string, settings map[string]any) gitgrant.ProviderConfig {
	rc := map[string]gitgrant.RoleConfig{}
	for role, target := range roles {
		rc[role] = gitgrant.RoleConfig{Target: target}
	}
	s := map[string]any{
		"kind":                kind,
		"api_url":             e.fake.url,
		"credentials_file":    keyPath,
		"requests_per_second": 0, // the fake's quota, when set, is the limit
	}
	if kind == KindIAM {
		s["resource"] = "projects/acme-prod"
	}
	for k, v := range settings {
		s[k] = v
	}
	return gitgrant.ProviderConfig{Name: "gcp", Type: Type, Roles: rc, Settings: s}
}

func (e *env) open(t *testing.T, cfg gitgrant.ProviderConfig) *Provider {
	t.Helper()
	return providertest.Open(t, Open, cfg, e.deps).(*Provider)
}

func principals(n int) []string {
	return providertest.Numbered("dev-%02d@acme.example", n, "o'brien.sean+ops@acme.example")
}

func harness(e *env, kind string, roles map[string]string, names []string) providertest.Harness {
	return providertest.Harness{
		Open: func(t *testing.T) providers.Provider {
			return e.open(t, e.config(kind, roles, nil))
		},
		Principals:       names,
		MissingPrincipal: "nobody@acme.example",
		HostileNames:     []string{"user:dev-00@acme.example", "group:", "serviceAccount:x", "dev-00@acme.example/../x", "a@b.c?x=1"},
		OpenWithTarget: func(t *testing.T, target string) (providers.Provider, error) {
			return Open(t.Context(), e.config(kind, map[string]string{"hostile": target}, nil), e.deps)
		},
		Down: func(t *testing.T) (providers.Provider, error) {
			cfg := e.config(kind, roles, map[string]any{"api_url": fmt.Sprintf("http://127.0.0.1:%d/", testenv.FreePort(t))})
			return Open(t.Context(), cfg, e.deps)
		},
		Secrets: []string{e.keyPEM, strings.Split(e.keyPEM, "\n")[1], tokenPrefix},
	}
}

func TestConformanceGroups(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	names := principals(22)
	e.fake.addPrincipals(names...)
	e.fake.lag = 150 * time.Millisecond // memberships show up a moment after they are made
	e.fake.addGroup("ops@acme.example")
	admins := e.fake.addGroup("admins@acme.example")
	h := harness(e, KindGroups, map[string]string{"ops": "ops@acme.example", "admin": admins}, names)
	h.Roles = []string{"ops", "admin"}
	providertest.Run(t, h)
}

func TestConformanceIAM(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	names := principals(22)
	names = append(names, "group:sre@acme.example", "serviceAccount:deployer@acme-prod.iam.gserviceaccount.com")
	e.fake.addPrincipals(names...)
	e.fake.addPrincipals("sre@acme.example", "deployer@acme-prod.iam.gserviceaccount.com", "owner@acme.example")
	// A binding gitgrant does not manage, which must survive every write.
	e.fake.addPolicy("projects/acme-prod", binding{Role: "roles/editor", Members: []string{"user:owner@acme.example"}})
	h := harness(e, KindIAM, map[string]string{"viewer": "roles/viewer", "sql": "roles/cloudsql.client"}, names)
	h.Roles = []string{"viewer", "sql"}
	providertest.Run(t, h)
	if diff := cmp.Diff([]binding{{Role: "roles/editor", Members: []string{"user:owner@acme.example"}}}, e.fake.policyBindings("projects/acme-prod")); diff != "" {
		t.Errorf("policy after the suite (-want +got):\n%s", diff)
	}
}

// TestNativeExpiryWithGitgrantStopped: the expiry gitgrant sets is what
// Google stores, and Google ends the access at that time with no gitgrant
// running: the fake's clock moves past it after the provider is closed.
func TestNativeExpiryWithGitgrantStopped(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{KindGroups, KindIAM} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.fake.addPrincipals("alice@acme.example", "bob@acme.example")
			e.fake.addGroup("ops@acme.example")
			e.fake.addPolicy("projects/acme-prod")
			roles := map[string]string{"ops": "ops@acme.example"}
			if kind == KindIAM {
				roles = map[string]string{"ops": "roles/compute.admin"}
			}
			p := e.open(t, e.config(kind, roles, nil))
			until := time.Now().Add(4 * time.Hour).Truncate(time.Second)
			for _, g := range []providers.Grant{
				{Role: "ops", Principal: "alice@acme.example", Until: until},
				{Role: "ops", Principal: "bob@acme.example", Until: until.Add(time.Hour)},
			} {
				if err := p.Grant(t.Context(), g); err != nil {
					t.Fatal(err)
				}
			}
			p.Close() // gitgrant is down from here on

			has := func(who string) bool {
				if kind == KindGroups {
					_, ok := e.fake.expiry("ops@acme.example", who)
					return ok
				}
				return e.fake.hasRole("projects/acme-prod", "user:"+who, "roles/compute.admin")
			}
			if kind == KindGroups {
				got, _ := e.fake.expiry("ops@acme.example", "alice@acme.example")
				if !got.Equal(until) {
					t.Errorf("Cloud Identity holds expireTime %v, want %v", got, until)
				}
			} else {
				want := []binding{
					{Role: "roles/compute.admin", Members: []string{"user:alice@acme.example"}, Condition: expiryCondition("user:alice@acme.example", until)},
					{Role: "roles/compute.admin", Members: []string{"user:bob@acme.example"}, Condition: expiryCondition("user:bob@acme.example", until.Add(time.Hour))},
				}
				if diff := cmp.Diff(want, e.fake.policyBindings("projects/acme-prod")); diff != "" {
					t.Errorf("IAM policy (-want +got):\n%s", diff)
				}
			}
			steps := []struct {
				advance    time.Duration
				alice, bob bool
			}{
				{0, true, true},
				{4*time.Hour - 2*time.Second, true, true},
				{3 * time.Second, false, true}, // a second past alice's until
				{time.Hour, false, false},
			}
			for _, s := range steps {
				e.fake.advance(s.advance)
				if got := [2]bool{has("alice@acme.example"), has("bob@acme.example")}; got != [2]bool{s.alice, s.bob} {
					t.Fatalf("after advancing %v: access (alice, bob) = %v, want (%v, %v)", s.advance, got, s.alice, s.bob)
				}
			}
		})
	}
}

// TestRateLimits: a 429 with Retry-After is waited out and the call
// succeeds; one longer than max_rate_limit_wait fails at once, retryable,
// saying until when.
func TestRateLimits(t *testing.T) {
	t.Parallel()
	e := newEnvAt(t, fakeclock.NewAuto(t0))
	e.fake.addPrincipals("alice@acme.example")
	e.fake.addGroup("ops@acme.example")
	p := e.open(t, e.config(KindGroups, map[string]string{"ops": "ops@acme.example"}, map[string]any{"max_rate_limit_wait": "10s"}))
	e.fake.throttle = []int{1, 2}
	if err := p.Grant(t.Context(), providers.Grant{Role: "ops", Principal: "alice@acme.example", Until: e.deps.Now().Add(time.Hour)}); err != nil {
		t.Fatalf("Grant through two 429s: %v", err)
	}
	if diff := cmp.Diff([]time.Duration{time.Second, 2 * time.Second}, e.clock.Delays()); diff != "" {
		t.Errorf("waits (-want +got):\n%s", diff)
	}
	e.fake.Mu.Lock()
	e.fake.throttle = []int{3600}
	e.fake.Mu.Unlock()
	_, err := p.Members(t.Context(), "ops")
	var sys *gitgrant.SystemError
	if !errors.As(err, &sys) || !sys.Retryable || !strings.Contains(err.Error(), "rate limited by Google until") {
		t.Errorf("Members behind a one-hour 429: err = %v, want a retryable system error saying until when", err)
	}
}

// TestTokenExpiryMidRun: Google stops accepting the access token before
// x/oauth2 thinks it has expired (clock skew, revocation); the provider
// fetches a new one through the real JWT flow and carries on.
func TestTokenExpiryMidRun(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.fake.addPrincipals("alice@acme.example", "bob@acme.example")
	e.fake.addPolicy("projects/acme-prod")
	p := e.open(t, e.config(KindIAM, map[string]string{"viewer": "roles/viewer"}, nil))
	ctx := t.Context()
	if err := p.Grant(ctx, providers.Grant{Role: "viewer", Principal: "alice@acme.example", Until: time.Now().Add(3 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	e.fake.advance(61 * time.Minute) // the first token is dead on Google's side
	if err := p.Grant(ctx, providers.Grant{Role: "viewer", Principal: "bob@acme.example", Until: time.Now().Add(3 * time.Hour)}); err != nil {
		t.Fatalf("Grant after the token expired: %v", err)
	}
	got, err := p.Members(ctx, "viewer")
	if err != nil || len(got) != 2 {
		t.Fatalf("Members = %v, %v; want alice and bob", got, err)
	}
	e.fake.CheckCalls(t, "token", 2, "one at start, one after the 401")
}

// TestMembersPages: 1,100 memberships come in three pages of up to 500.
func TestMembersPages(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.fake.addGroup("big@acme.example")
	want := providertest.Numbered("u%04d@acme.example", 1100)
	e.fake.addPrincipals(want...)
	g := e.fake.groups["big@acme.example"]
	for i, w := range want {
		g.members[w] = &fakeMember{id: fmt.Sprintf("x%d", i), key: w}
	}
	p := e.open(t, e.config(KindGroups, map[string]string{"big": "big@acme.example"}, nil))
	providertest.CheckMembers(t, p, "big", want)
	e.fake.CheckCalls(t, "memberships.list", 3, "")
}

// TestEventualConsistency: a membership shows up in lookups and lists a
// moment after it is created; Grant returns once it is visible, so the
// next Members sees it, and a second grant finds and updates it.
func TestEventualConsistency(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.fake.addPrincipals("alice@acme.example")
	e.fake.addGroup("ops@acme.example")
	e.fake.lag = 700 * time.Millisecond
	p := e.open(t, e.config(KindGroups, map[string]string{"ops": "ops@acme.example"}, nil))
	ctx := t.Context()
	until := time.Now().Add(time.Hour).Truncate(time.Second)
	steps := []struct {
		name  string
		until time.Time
	}{
		{"grant", until},
		{"grant again with a later until, at once", until.Add(time.Hour)},
	}
	for _, s := range steps {
		if err := p.Grant(ctx, providers.Grant{Role: "ops", Principal: "alice@acme.example", Until: s.until}); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		got, err := p.Members(ctx, "ops")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]providers.Member{{Principal: "alice@acme.example", Until: s.until}}, got, cmp.Comparer(time.Time.Equal)); diff != "" {
			t.Errorf("%s: Members (-want +got):\n%s", s.name, diff)
		}
	}
	if len(e.clock.Delays()) == 0 {
		t.Errorf("the provider never waited for the membership to become visible")
	}
}

// TestIAMConflictsAndForeignBindings: setIamPolicy losing to concurrent
// writers is redone; bindings gitgrant did not write are listed, kept,
// and a revoke that cannot end access through one of them says so.
func TestIAMConflictsAndForeignBindings(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.fake.addPrincipals("alice@acme.example", "bob@acme.example", "carol@acme.example")
	businessHours := &condition{Title: "business hours", Expression: `request.time.getHours("Europe/Berlin") >= 9`}
	e.fake.addPolicy("projects/acme-prod",
		binding{Role: "roles/viewer", Members: []string{"user:bob@acme.example", "user:carol@acme.example"}},
		binding{Role: "roles/viewer", Members: []string{"user:carol@acme.example"}, Condition: businessHours},
	)
	p := e.open(t, e.config(KindIAM, map[string]string{"viewer": "roles/viewer"}, nil))
	ctx := t.Context()
	until := time.Now().Add(time.Hour).Truncate(time.Second)

	e.fake.Mu.Lock()
	e.fake.conflicts = 3
	e.fake.Mu.Unlock()
	if err := p.Grant(ctx, providers.Grant{Role: "viewer", Principal: "alice@acme.example", Until: until}); err != nil {
		t.Fatalf("Grant through 3 conflicts: %v", err)
	}
	e.fake.CheckCalls(t, "setIamPolicy", 4, "3 conflicts, then success")
	got, err := p.Members(ctx, "viewer")
	if err != nil {
		t.Fatal(err)
	}
	want := []providers.Member{{Principal: "alice@acme.example", Until: until}, {Principal: "bob@acme.example"}, {Principal: "carol@acme.example"}}
	if diff := cmp.Diff(want, got, cmp.Comparer(time.Time.Equal)); diff != "" {
		t.Errorf("Members (-want +got):\n%s", diff)
	}
	// bob's unconditional binding is drift the reconciler may revoke.
	if err := p.Revoke(ctx, "viewer", "bob@acme.example"); err != nil {
		t.Errorf("Revoke(bob): %v", err)
	}
	// carol also holds the role through a condition gitgrant did not
	// write: it stays, and the revoke says so.
	err = p.Revoke(ctx, "viewer", "carol@acme.example")
	if err == nil || !strings.Contains(err.Error(), "business hours") {
		t.Errorf("Revoke(carol) = %v, want an error naming the foreign condition", err)
	}
	wantPolicy := []binding{
		{Role: "roles/viewer", Members: []string{"user:carol@acme.example"}, Condition: businessHours},
		{Role: "roles/viewer", Members: []string{"user:alice@acme.example"}, Condition: expiryCondition("user:alice@acme.example", until)},
	}
	if diff := cmp.Diff(wantPolicy, e.fake.policyBindings("projects/acme-prod")); diff != "" {
		t.Errorf("policy (-want +got):\n%s", diff)
	}
}

// TestOpenRefuses: settings the schema cannot judge are refused at Open,
// without quoting the credentials.
func TestOpenRefuses(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	open := func(cfg gitgrant.ProviderConfig) (providers.Provider, error) { return Open(t.Context(), cfg, e.deps) }
	providertest.CheckRefusals(t, e.config(KindGroups, nil, nil), open, []providertest.Refusal{
		{Name: "no kind", Settings: map[string]any{"kind": ""}, Says: "setting kind"},
		{Name: "bad resource", Settings: map[string]any{"kind": KindIAM, "resource": "projects/../x"}, Says: "setting resource"},
		{Name: "bad url", Settings: map[string]any{"api_url": "ftp://x"}, Says: "setting api_url"},
		{Name: "missing key file", Settings: map[string]any{"credentials_file": "/nope"}, Says: "credentials_file"},
		{Name: "both", Settings: map[string]any{"credentials_env": "X"}, Says: "not both"},
		{Name: "bad wait", Settings: map[string]any{"max_rate_limit_wait": "soon"}, Says: "max_rate_limit_wait"},
		{Name: "negative pace", Settings: map[string]any{"requests_per_second": -1}, Says: "requests_per_second"},
	}, e.keyPEM)
	d := e.deps
	d.ReadFile = func(string) ([]byte, error) {
		return []byte(`{"type":"service_account","private_key":"` + "SECRET-KEY-MATERIAL" + `"`), nil
	}
	_, err := Open(t.Context(), e.config(KindGroups, nil, nil), d)
	if err == nil || strings.Contains(err.Error(), "SECRET-KEY-MATERIAL") {
		t.Errorf("Open with a broken key: err = %v, want one that does not quote the key", err)
	}
}

// TestRefusedKey: a key the token endpoint refuses (deleted, disabled)
// is a non-retryable system error that quotes neither key nor response.
func TestRefusedKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.fake.addGroup("ops@acme.example")
	e.fake.refuseKey = true
	p := e.open(t, e.config(KindGroups, map[string]string{"ops": "ops@acme.example"}, nil))
	_, err := p.Members(t.Context(), "ops")
	var sys *gitgrant.SystemError
	if !errors.As(err, &sys) || sys.Retryable {
		t.Fatalf("Members with a refused key: err = %v, want a non-retryable system error", err)
	}
	for _, secret := range []string{e.keyPEM[40:80], "account not found"} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error %q quotes %q", err, secret)
		}
	}
	if !strings.Contains(err.Error(), "invalid_grant") {
		t.Errorf("error %q does not say what the token endpoint answered", err)
	}
}

// TestPacingStaysUnderQuota: paced just below the quota, the provider is
// never throttled; unpaced, it is, and still succeeds by waiting out each
// 429's Retry-After.
func TestPacingStaysUnderQuota(t *testing.T) {
	t.Parallel()
	httpapitest.CheckPacing(t, func(t *testing.T, rps float64) int {
		// One clock, moved only by the provider's own waits: the fake's
		// quota window sees exactly the pacing, whatever the machine's load.
		clk := fakeclock.NewAuto(t0)
		e := newEnvAt(t, clk)
		names := principals(9)
		e.fake.addPrincipals(names...)
		e.fake.addGroup("ops@acme.example")
		e.fake.quota.Limit = 5
		p := e.open(t, e.config(KindGroups, map[string]string{"ops": "ops@acme.example"}, map[string]any{"requests_per_second": rps}))
		if err := providertest.GrantEach(t.Context(), p, "ops", names, clk.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		// The paced calls are spaced 1/rps apart on the clock.
		if got, want := clk.Now().Sub(t0), httpapi.Interval(rps); got < want {
			t.Errorf("the clock moved %v over the grants, want at least one pacing interval (%v)", got, want)
		}
		e.fake.Mu.Lock()
		defer e.fake.Mu.Unlock()
		return e.fake.Throttled
	})
}

// TestCheckIAMPermissions: Check asks the resource which of the two
// permissions gitgrant needs the credentials hold, and names what lacks.
func TestCheckIAMPermissions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		denied  []string
		wantErr string
	}{
		{"both held", nil, ""},
		{"cannot set", []string{"resourcemanager.projects.setIamPolicy"}, "lack resourcemanager.projects.setIamPolicy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.fake.addPolicy("projects/acme-prod")
			e.fake.denied = tt.denied
			p := e.open(t, e.config(KindIAM, map[string]string{"viewer": "roles/viewer"}, nil))
			err := p.Check(t.Context())
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("Check = %v, want error %q", err, tt.wantErr)
			}
		})
	}
}

// TestTokenRefreshOnSchedule: a token close to its expiry is replaced by
// x/oauth2 before use, through the real JWT flow.
func TestTokenRefreshOnSchedule(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.fake.addGroup("ops@acme.example")
	e.fake.Tokens.TTL = 11 * time.Second // x/oauth2 renews 10 s before expiry
	p := e.open(t, e.config(KindGroups, map[string]string{"ops": "ops@acme.example"}, nil))
	for range 2 {
		if _, err := p.Members(t.Context(), "ops"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(1100 * time.Millisecond)
	}
	e.fake.CheckCalls(t, "token", 2, "")
}

// TestRevokeHandBoundMembers: members someone bound by hand without a
// condition, in forms gitgrant never grants, can still be revoked as drift.
func TestRevokeHandBoundMembers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	hand := []string{"domain:acme.example", "deleted:user:gone@acme.example?uid=123456789", "allAuthenticatedUsers",
		"principalSet://iam.googleapis.com/locations/global/workforcePools/acme/group/sre"}
	e.fake.addPolicy("projects/acme-prod", binding{Role: "roles/viewer", Members: hand})
	p := e.open(t, e.config(KindIAM, map[string]string{"viewer": "roles/viewer"}, nil))
	ms, err := p.Members(t.Context(), "viewer")
	if err != nil || len(ms) != len(hand) {
		t.Fatalf("Members = %v, %v; want the %d hand-bound members", ms, err, len(hand))
	}
	for _, m := range ms {
		if err := p.Revoke(t.Context(), "viewer", m.Principal); err != nil {
			t.Errorf("Revoke(%q): %v", m.Principal, err)
		}
		if err := p.Grant(t.Context(), providers.Grant{Role: "viewer", Principal: m.Principal}); !errors.Is(err, providers.ErrInvalidName) {
			t.Errorf("Grant(%q) = %v, want ErrInvalidName: gitgrant grants only users, groups and service accounts", m.Principal, err)
		}
	}
	if got := e.fake.policyBindings("projects/acme-prod"); len(got) != 0 {
		t.Errorf("policy after revoking every hand-bound member: %+v", got)
	}
}

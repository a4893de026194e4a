package entra

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/testing/testenv"
	"github.com/gitgrant/gitgrant/providers"
	"github.com/gitgrant/gitgrant/providers/internal/httpapitest"
	"github.com/gitgrant/gitgrant/providers/providertest"
)

const testSecret = "fake~client~secret~must~never~leak"

func userID(i int) string  { return fmt.Sprintf("%08d-0000-4000-8000-%012d", i, i) }
func groupID(i int) string { return fmt.Sprintf("9%07d-1111-4111-8111-%012d", i, i) }

// setup starts a fake tenant with groups (ids groupID(0), groupID(1), ...)
// and users (id userID(i), userPrincipalName upns[i]).
func setup(t testing.TB, c gitgrant.Clock, groups int, upns []string) *fakeGraph {
	f := newFakeGraph(t, c)
	for i := range groups {
		f.addGroup(groupID(i))
	}
	for i, u := range upns {
		f.addUser(userID(i), u)
	}
	return f
}

func config(f *fakeGraph, roles map[string]string, settings map[string]any) gitgrant.ProviderConfig {
	s := map[string]any{
		"tenant_id":         "contoso.onmicrosoft.com",
		"client_id":         "11111111-2222-3333-4444-555555555555",
		"client_secret_env": "ENTRA_CLIENT_SECRET",
		"graph_url":         f.graphURL(),
		"login_url":         f.loginURL(),
	}
	for k, v := range settings {
		if v == nil {
			delete(s, k)
		} else {
			s[k] = v
		}
	}
	return providertest.Config(Type, "entra", roles, s)
}

// deps hold the client secret, on clock c (nil: the wall clock).
func deps(c gitgrant.Clock) providers.Deps {
	return providertest.Deps(map[string]string{"ENTRA_CLIENT_SECRET": testSecret}, nil, c)
}

func open(t testing.TB, cfg gitgrant.ProviderConfig, c gitgrant.Clock) *Provider {
	return providertest.Open(t, Open, cfg, deps(c)).(*Provider)
}

func TestConformance(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		settings map[string]any
		byID     bool
	}{
		{"members by userPrincipalName", nil, false},
		{"members by object id", map[string]any{"principal": "id"}, true},
		{"PIM for Groups", map[string]any{"pim": true}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			upns := providertest.Numbered("dev%02d@contoso.com", 22, "Mixed.Case@Contoso.COM", "guest_example.org#EXT#@contoso.onmicrosoft.com")
			c := gitgrant.SystemClock
			f := setup(t, c, 2, upns)
			// Tokens live 62s and are renewed a minute early, so the suite
			// runs across several of them.
			f.Set(func() { f.Tokens.TTL = 62 * time.Second })
			principals, missing := upns, "ghost@contoso.com"
			if tt.byID {
				principals = nil
				for i := range upns {
					principals = append(principals, userID(i))
				}
				missing = "deadbeef-0000-4000-8000-000000000000"
			}
			roles := map[string]string{"admin": groupID(0), "reader": groupID(1)}
			providertest.Run(t, providertest.Harness{
				Open:             func(t *testing.T) providers.Provider { return open(t, config(f, roles, tt.settings), c) },
				Roles:            []string{"admin", "reader"},
				Principals:       principals,
				MissingPrincipal: missing,
				HostileNames:     []string{"dev00@contoso.com/../x", "dev00@contoso.com?$select=id", userID(0) + "/$ref"},
				OpenWithTarget: func(t *testing.T, target string) (providers.Provider, error) {
					return Open(t.Context(), config(f, map[string]string{"hostile": target}, tt.settings), deps(nil))
				},
				Down: func(t *testing.T) (providers.Provider, error) {
					down := fmt.Sprintf("http://127.0.0.1:%d/", testenv.FreePort(t))
					s := map[string]any{"graph_url": down + "v1.0/", "login_url": down}
					for k, v := range tt.settings {
						s[k] = v
					}
					return Open(t.Context(), config(f, roles, s), deps(nil))
				},
				Secrets: []string{testSecret, "fake-graph-access-token"},
			})
			f.Mu.Lock()
			defer f.Mu.Unlock()
			t.Logf("access tokens issued during the suite: %d", f.Tokens.Issued)
			if f.Tokens.Issued < 2 {
				t.Errorf("the suite ran on %d token(s); want it to renew them", f.Tokens.Issued)
			}
		})
	}
}

// TestNativeExpiryWithPIM: gitgrant asks PIM for the grant's end; when
// that time comes, Entra ends the membership by itself, with gitgrant
// making no call at all.
func TestNativeExpiryWithPIM(t *testing.T) {
	t.Parallel()
	c := httpapitest.ManualClock()
	f := setup(t, c, 1, []string{"alice@contoso.com", "bob@contoso.com"})
	p := open(t, config(f, map[string]string{"ops": groupID(0)}, map[string]any{"pim": true}), c)
	ctx := t.Context()
	t0 := c.Now()
	aliceUntil, bobUntil := t0.Add(time.Hour), t0.Add(4*time.Hour)
	for _, g := range []providers.Grant{
		{Role: "ops", Principal: "alice@contoso.com", Until: aliceUntil},
		{Role: "ops", Principal: "bob@contoso.com", Until: bobUntil},
	} {
		if err := p.Grant(ctx, g); err != nil {
			t.Fatalf("Grant(%+v): %v", g, err)
		}
	}
	if !p.NativeExpiry() {
		t.Fatal("NativeExpiry() = false after PIM answered")
	}
	f.Mu.Lock()
	asked := f.ends
	f.Mu.Unlock()
	wantAsked := []string{"alice@contoso.com " + aliceUntil.Format(time.RFC3339), "bob@contoso.com " + bobUntil.Format(time.RFC3339)}
	if diff := cmp.Diff(wantAsked, asked); diff != "" {
		t.Fatalf("endDateTimes gitgrant set (-want +got):\n%s", diff)
	}

	// gitgrant stops here. Just before alice's end she is still a member;
	// just after, Entra has removed her.
	calls := len(f.Log())
	c.Advance(aliceUntil.Sub(c.Now()) - time.Second)
	if diff := cmp.Diff([]string{"alice@contoso.com", "bob@contoso.com"}, f.memberUPNs(groupID(0))); diff != "" {
		t.Errorf("a second before the end, members (-want +got):\n%s", diff)
	}
	c.Advance(2 * time.Second)
	if diff := cmp.Diff([]string{"bob@contoso.com"}, f.memberUPNs(groupID(0))); diff != "" {
		t.Errorf("a second after the end, members (-want +got):\n%s", diff)
	}
	f.Mu.Lock()
	ended := f.ended
	f.Mu.Unlock()
	if diff := cmp.Diff([]string{"alice@contoso.com " + aliceUntil.Format(time.RFC3339)}, ended); diff != "" {
		t.Errorf("assignments Entra ended (-want +got):\n%s", diff)
	}
	if n := len(f.Log()); n != calls {
		t.Errorf("gitgrant made %d calls while stopped: %v", n-calls, f.Log()[calls:])
	}

	// When gitgrant comes back, it sees what Entra did, and bob's end.
	ms, err := p.Members(ctx, "ops")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]providers.Member{{Principal: "bob@contoso.com", Until: bobUntil}}, ms); diff != "" {
		t.Errorf("Members (-want +got):\n%s", diff)
	}
}

func TestMembersPages(t *testing.T) {
	t.Parallel()
	upns := providertest.Numbered("user%03d@contoso.com", 250)
	c := httpapitest.ManualClock()
	f := setup(t, c, 1, upns)
	f.Set(func() {
		for id := range f.users {
			f.groups[groupID(0)].members[id] = 0
		}
	})
	p := open(t, config(f, map[string]string{"big": groupID(0)}, nil), c)
	providertest.CheckMembers(t, p, "big", upns)
	want := []string{
		"POST /contoso.onmicrosoft.com/oauth2/v2.0/token",
		"GET /groups/" + groupID(0) + "/members?$select=id,userPrincipalName&$top=999",
		"GET /groups/" + groupID(0) + "/members?$select=id,userPrincipalName&$top=100&$skiptoken=" + userID(99),
		"GET /groups/" + groupID(0) + "/members?$select=id,userPrincipalName&$top=100&$skiptoken=" + userID(199),
	}
	f.CheckLog(t, want)
}

// TestRequests pins what each operation sends, including the wait for a
// new membership to show (the fake's reads miss it once).
func TestRequests(t *testing.T) {
	t.Parallel()
	g := "/"
	gid, uid := groupID(0), userID(0)
	pimInst := g + pimInstances + "?$filter=groupId%20eq%20%27" + gid + "%27%20and%20principalId%20eq%20%27" + uid + "%27"
	fresh := func(t *testing.T, settings map[string]any) (*Provider, *httpapitest.Fake) {
		c := httpapitest.ManualClock()
		f := setup(t, c, 1, []string{"alice@contoso.com"})
		return open(t, config(f, map[string]string{"ops": gid}, settings), c), &f.Fake
	}
	exchanges := []httpapitest.Exchange[*Provider]{
		{Name: "grant", Do: func(ctx context.Context, p *Provider) error {
			return p.Grant(ctx, providers.Grant{Role: "ops", Principal: "alice@contoso.com"})
		}, Want: []string{
			"GET " + g + "users/alice@contoso.com?$select=id,userPrincipalName",
			"POST " + g + "groups/" + gid + "/members/$ref",
			"POST " + g + "users/" + uid + "/checkMemberGroups",
			"POST " + g + "users/" + uid + "/checkMemberGroups",
		}},
		{Name: "grant twice", Do: func(ctx context.Context, p *Provider) error {
			for range 2 {
				if err := p.Grant(ctx, providers.Grant{Role: "ops", Principal: "alice@contoso.com"}); err != nil {
					return err
				}
			}
			return nil
		}, Want: []string{
			"GET " + g + "users/alice@contoso.com?$select=id,userPrincipalName",
			"POST " + g + "groups/" + gid + "/members/$ref",
			"POST " + g + "users/" + uid + "/checkMemberGroups",
			"POST " + g + "users/" + uid + "/checkMemberGroups",
			"POST " + g + "groups/" + gid + "/members/$ref", // already exists: success
			"POST " + g + "users/" + uid + "/checkMemberGroups",
		}},
		{Name: "revoke", Do: func(ctx context.Context, p *Provider) error { return p.Revoke(ctx, "ops", "alice@contoso.com") }, Want: []string{
			"GET " + g + "users/alice@contoso.com?$select=id,userPrincipalName",
			"DELETE " + g + "groups/" + gid + "/members/" + uid + "/$ref",
		}},
		{Name: "grant with PIM", Settings: map[string]any{"pim": true}, Do: func(ctx context.Context, p *Provider) error {
			return p.Grant(ctx, providers.Grant{Role: "ops", Principal: "alice@contoso.com", Until: time.Date(2026, 11, 23, 13, 0, 0, 0, time.UTC)})
		}, Want: []string{
			"GET " + g + "users/alice@contoso.com?$select=id,userPrincipalName",
			"GET " + pimInst,
			"POST " + g + pimRequests,
			"GET " + pimInst,
			"GET " + pimInst,
		}},
		{Name: "revoke with PIM", Settings: map[string]any{"pim": true}, Do: func(ctx context.Context, p *Provider) error {
			return p.Revoke(ctx, "ops", "alice@contoso.com")
		}, Want: []string{
			"GET " + g + "users/alice@contoso.com?$select=id,userPrincipalName",
			"POST " + g + pimRequests,
			"DELETE " + g + "groups/" + gid + "/members/" + uid + "/$ref",
		}},
	}
	for i := range exchanges {
		exchanges[i].Want = append([]string{"POST /contoso.onmicrosoft.com/oauth2/v2.0/token"}, exchanges[i].Want...)
	}
	httpapitest.CheckRequests(t, fresh, exchanges)
}

// TestThrottling: a 429 is waited out for as long as Retry-After says, a
// spent budget likewise, and a wait longer than allowed is not started.
func TestThrottling(t *testing.T) {
	t.Parallel()
	httpapitest.CheckLimited(t, "Microsoft Graph", []httpapitest.Limited{
		{Name: "429 with Retry-After", Force429: 2, Grants: 1, Refusals: 2, MinTime: 6 * time.Second},
		{Name: "budget spent", Quota: 10, Grants: 4, Refusals: 1, MinTime: time.Second},
		{Name: "longer than max_rate_limit_wait", Force429: 1, Grants: 1, MaxWait: "1s", Fails: true},
	}, func(t *testing.T, lc httpapitest.Limited) (*httpapitest.Fake, func() error, func() int) {
		c := httpapitest.ManualClock()
		upns := providertest.Numbered("u%d@contoso.com", lc.Grants)
		f := setup(t, c, 1, upns)
		f.Set(func() { f.force429, f.budget.Limit, f.lag = lc.Force429, lc.Quota, 0 })
		s := map[string]any{}
		if lc.MaxWait != "" {
			s["max_rate_limit_wait"] = lc.MaxWait
		}
		p := open(t, config(f, map[string]string{"ops": groupID(0)}, s), c)
		return &f.Fake, func() error { return providertest.GrantEach(t.Context(), p, "ops", upns, time.Time{}) },
			func() int { return len(f.memberUPNs(groupID(0))) }
	})
}

// TestTokenLifetime: the token is renewed when it runs out, and a token
// Graph refuses early is replaced once.
func TestTokenLifetime(t *testing.T) {
	t.Parallel()
	c := httpapitest.ManualClock()
	who := [3]string{"a@contoso.com", "b@contoso.com", "c@contoso.com"}
	f := setup(t, c, 1, who[:])
	p := open(t, config(f, map[string]string{"ops": groupID(0)}, nil), c)
	f.CheckTokenRenewal(t, c, func(who string) error {
		return p.Grant(t.Context(), providers.Grant{Role: "ops", Principal: who})
	}, who)
}

func TestErrors(t *testing.T) {
	t.Parallel()
	c := httpapitest.ManualClock()
	f := setup(t, c, 1, []string{"alice@contoso.com"})
	roles := map[string]string{"ops": groupID(0), "gone": groupID(7)}
	p := open(t, config(f, roles, nil), c)
	wrong := providertest.Deps(map[string]string{"ENTRA_CLIENT_SECRET": "not-the-secret"}, nil, c)
	pw := providertest.Open(t, Open, config(f, roles, nil), wrong)
	ctx := t.Context()
	providertest.CheckFailures(t, []providertest.FailureCase{
		{Name: "unknown user", Do: func() error { return p.Grant(ctx, providers.Grant{Role: "ops", Principal: "ghost@contoso.com"}) }, Want: providertest.Failure{NotFound: true, Says: `"ghost@contoso.com" does not exist in the tenant`}},
		{Name: "spelt otherwise", Do: func() error { return p.Grant(ctx, providers.Grant{Role: "ops", Principal: "ALICE@contoso.com"}) }, Want: providertest.Failure{Invalid: true, Says: `as "alice@contoso.com"`}},
		{Name: "an id where names are used", Do: func() error { return p.Grant(ctx, providers.Grant{Role: "ops", Principal: userID(0)}) }, Want: providertest.Failure{Invalid: true}},
		{Name: "missing group on Members", Do: func() error { _, err := p.Members(ctx, "gone"); return err }, Want: providertest.Failure{NotFound: true}},
		{Name: "missing group on Grant", Do: func() error { return p.Grant(ctx, providers.Grant{Role: "gone", Principal: "alice@contoso.com"}) }, Want: providertest.Failure{NotFound: true}},
		{Name: "missing group on Check", Do: func() error { return p.Check(ctx) }, Want: providertest.Failure{NotFound: true}},
		{Name: "apostrophe", Do: func() error { return p.Revoke(ctx, "ops", "o'brien@contoso.com") }, Want: providertest.Failure{Invalid: true}},
		{Name: "wrong secret", Do: func() error { _, err := pw.Members(ctx, "ops"); return err }, Want: providertest.Failure{System: true, Says: "AADSTS7000215"}},
		f.PastTheContext(ctx, p, "ops", func() { f.force429 = 1 }, "rate limited"),
	}, testSecret, "not-the-secret", "fake-graph-access-token")
}

func TestOpenRejectsBadSettings(t *testing.T) {
	t.Parallel()
	open := func(cfg gitgrant.ProviderConfig) (providers.Provider, error) {
		return Open(t.Context(), cfg, deps(nil))
	}
	providertest.CheckRefusals(t, config(&fakeGraph{url: "https://example.invalid"}, nil, nil), open, []providertest.Refusal{
		{Name: "tenant missing", Settings: map[string]any{"tenant_id": nil}, Says: "setting tenant_id"},
		{Name: "tenant with a slash", Settings: map[string]any{"tenant_id": "a/../b"}, Says: "setting tenant_id"},
		{Name: "client_id not a GUID", Settings: map[string]any{"client_id": "app"}, Says: "setting client_id"},
		{Name: "graph_url not a URL", Settings: map[string]any{"graph_url": "graph.microsoft.com"}, Says: "setting graph_url"},
		{Name: "bad principal", Settings: map[string]any{"principal": "mail"}, Says: "setting principal"},
		{Name: "bad wait", Settings: map[string]any{"max_rate_limit_wait": "soon"}, Says: "max_rate_limit_wait"},
		{Name: "no secret", Settings: map[string]any{"client_secret_env": nil}, Says: "client_secret_env or client_secret_file"},
		{Name: "secret unset", Settings: map[string]any{"client_secret_env": "UNSET"}, Says: "UNSET"},
		{Name: "both secrets", Settings: map[string]any{"client_secret_file": "/run/secret"}, Says: "not both"},
		{Name: "pim as a string", Settings: map[string]any{"pim": "yes"}, Says: "setting pim must be true or false"},
	}, testSecret)
}

// TestPIMMembers: with PIM, Members joins the active assignments (with
// their ends) to the direct members: an assignment that directory reads do
// not show yet still counts, a member added outside PIM shows without an
// end (drift to revoke), and a group assigned through PIM by its id.
func TestPIMMembers(t *testing.T) {
	t.Parallel()
	c := httpapitest.ManualClock()
	f := setup(t, c, 1, []string{"alice@contoso.com", "bob@contoso.com"})
	end := c.Now().Add(time.Hour)
	nested := "77777777-0000-4000-8000-000000000000"
	f.Set(func() {
		g := f.groups[groupID(0)]
		g.pim[userID(0)] = &fakeSchedule{end: end, user: "alice@contoso.com"}
		g.members[userID(0)] = 5 // replication has not caught up
		g.members[userID(1)] = 0 // added outside PIM
		g.pim[nested] = &fakeSchedule{}
	})
	p := open(t, config(f, map[string]string{"ops": groupID(0)}, map[string]any{"pim": true}), c)
	got, err := p.Members(t.Context(), "ops")
	if err != nil {
		t.Fatal(err)
	}
	want := []providers.Member{
		{Principal: nested},
		{Principal: "alice@contoso.com", Until: end},
		{Principal: "bob@contoso.com"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Members (-want +got):\n%s", diff)
	}
}

// TestLogsHoldNoSecrets: the waits gitgrant logs say what it waits for,
// and neither they nor anything else logged carries a credential.
func TestLogsHoldNoSecrets(t *testing.T) {
	t.Parallel()
	c := httpapitest.ManualClock()
	who := []string{"a@contoso.com", "b@contoso.com"}
	f := setup(t, c, 1, who)
	f.Set(func() { f.force429 = 1 })
	httpapitest.CheckLogs(t, c, deps(nil), func(d providers.Deps) providers.Provider {
		return providertest.Open(t, Open, config(f, map[string]string{"ops": groupID(0)}, map[string]any{"pim": true}), d)
	}, "ops", who, testSecret, "fake-graph-access-token")
}

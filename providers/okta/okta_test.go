package okta

import (
	"context"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/testing/testenv"
	"github.com/gitgrant/gitgrant/providers"
	"github.com/gitgrant/gitgrant/providers/internal/httpapitest"
	"github.com/gitgrant/gitgrant/providers/providertest"
)

const (
	testAPIToken = "00abcdefGHIJKLmnop-api-token-that-must-never-leak"
	testClientID = "0oa1serviceapp"
)

// setup starts a fake org with the given groups (all OKTA_GROUP) and
// users (id u<i>, login and email <name>@example.com).
func setup(t testing.TB, c gitgrant.Clock, groups []string, names []string) *fakeOkta {
	f := newFakeOkta(t, c)
	key, _ := httpapitest.RSAKey()
	f.Set(func() {
		f.apiToken = testAPIToken
		f.clientID = testClientID
		f.publicKey = &key.PublicKey
	})
	for _, g := range groups {
		f.addGroup(g, "OKTA_GROUP")
	}
	for i, n := range names {
		f.addUser(fmt.Sprintf("00u%05d", i), n, n)
	}
	return f
}

// config is a provider entry whose roles map to group ids. auth is
// "app" (private-key JWT) or "token" (SSWS).
func config(orgURL, auth string, roles map[string]string) gitgrant.ProviderConfig {
	settings := map[string]any{"org_url": orgURL}
	if auth == "token" {
		settings["api_token_env"] = "OKTA_API_TOKEN"
	} else {
		settings["client_id"] = testClientID
		settings["private_key_env"] = "OKTA_PRIVATE_KEY"
		settings["key_id"] = "kid-1"
	}
	return providertest.Config(Type, "okta", roles, settings)
}

// secrets are what no error or log may show: the API token, the service
// app's key and any access token.
func secrets() []string {
	_, pemKey := httpapitest.RSAKey()
	return []string{testAPIToken, pemKey, "fake-access-token"}
}

// deps hold the credentials, on clock c (nil: the wall clock).
func deps(c gitgrant.Clock) providers.Deps {
	_, pemKey := httpapitest.RSAKey()
	return providertest.Deps(map[string]string{"OKTA_API_TOKEN": testAPIToken, "OKTA_PRIVATE_KEY": pemKey}, nil, c)
}

// open opens a provider on the fake's clock.
func open(t testing.TB, cfg gitgrant.ProviderConfig, c gitgrant.Clock) *Provider {
	return providertest.Open(t, Open, cfg, deps(c)).(*Provider)
}

func TestConformance(t *testing.T) {
	t.Parallel()
	for _, auth := range []string{"app", "token"} {
		t.Run(auth, func(t *testing.T) {
			t.Parallel()
			principals := providertest.Numbered("dev%02d@example.com", 22, "o.brien+ops@example.com", "Mixed.Case@Example.COM")
			c := gitgrant.SystemClock
			f := setup(t, c, []string{"00gadmins", "00greaders"}, principals)
			// Tokens live 62s and are renewed a minute early, so the suite
			// runs across several of them.
			f.Set(func() { f.Tokens.TTL = 62 * time.Second })
			roles := map[string]string{"admin": "00gadmins", "reader": "00greaders"}
			providertest.Run(t, providertest.Harness{
				Open:             func(t *testing.T) providers.Provider { return open(t, config(f.url, auth, roles), c) },
				Roles:            []string{"admin", "reader"},
				Principals:       principals,
				MissingPrincipal: "ghost@example.com",
				HostileNames:     []string{"dev00@example.com/../00gadmins", "dev00@example.com?x=1", "00u00000"},
				OpenWithTarget: func(t *testing.T, target string) (providers.Provider, error) {
					return Open(t.Context(), config(f.url, auth, map[string]string{"hostile": target}), deps(nil))
				},
				Down: func(t *testing.T) (providers.Provider, error) {
					return Open(t.Context(), config(fmt.Sprintf("http://127.0.0.1:%d", testenv.FreePort(t)), auth, roles), deps(nil))
				},
				Secrets: secrets(),
			})
			f.Mu.Lock()
			defer f.Mu.Unlock()
			t.Logf("access tokens issued during the suite: %d", f.Tokens.Issued)
			if auth == "app" && f.Tokens.Issued < 2 {
				t.Errorf("the suite ran on %d token(s); want it to renew them", f.Tokens.Issued)
			}
		})
	}
}

// TestMembersPages: every page is followed through the Link header.
func TestMembersPages(t *testing.T) {
	t.Parallel()
	logins := providertest.Numbered("user%03d@example.com", 450)
	c := httpapitest.ManualClock()
	f := setup(t, c, []string{"00gbig"}, logins)
	f.Set(func() {
		f.lag = 0
		for uid := range f.users {
			f.groups["00gbig"].members[uid] = 0
		}
	})
	p := open(t, config(f.url, "token", map[string]string{"big": "00gbig"}), c)
	providertest.CheckMembers(t, p, "big", logins)
	want := []string{
		"GET /api/v1/groups/00gbig/users?limit=1000",
		"GET /api/v1/groups/00gbig/users?after=00u00199&limit=200",
		"GET /api/v1/groups/00gbig/users?after=00u00399&limit=200",
	}
	f.CheckLog(t, want)
}

// TestRequests pins what each operation sends, including the wait for a
// new membership to show (the fake's reads miss it once).
func TestRequests(t *testing.T) {
	t.Parallel()
	fresh := func(t *testing.T, settings map[string]any) (*Provider, *httpapitest.Fake) {
		c := httpapitest.ManualClock()
		f := setup(t, c, []string{"00gops"}, []string{"alice@example.com"})
		cfg := config(f.url, "token", map[string]string{"ops": "00gops"})
		maps.Copy(cfg.Settings, settings)
		return open(t, cfg, c), &f.Fake
	}
	// The same grant finds alice by login or by email, as principal says.
	grantAlice := func(ctx context.Context, p *Provider) error {
		return p.Grant(ctx, providers.Grant{Role: "ops", Principal: "alice@example.com"})
	}
	httpapitest.CheckRequests(t, fresh, []httpapitest.Exchange[*Provider]{
		{Name: "grant by login", Do: grantAlice, Want: []string{
			"GET /api/v1/users/alice@example.com",
			"PUT /api/v1/groups/00gops/users/00u00000",
			"GET /api/v1/users/00u00000/groups?limit=1000",
			"GET /api/v1/users/00u00000/groups?limit=1000",
		}},
		{Name: "grant by email", Settings: map[string]any{"principal": "email"}, Do: grantAlice, Want: []string{
			"GET /api/v1/users?filter=profile.email+eq+%22alice%40example.com%22&limit=2",
			"PUT /api/v1/groups/00gops/users/00u00000",
			"GET /api/v1/users/00u00000/groups?limit=1000",
			"GET /api/v1/users/00u00000/groups?limit=1000",
		}},
		{Name: "revoke a non-member", Do: func(ctx context.Context, p *Provider) error {
			return p.Revoke(ctx, "ops", "alice@example.com")
		}, Want: []string{
			"GET /api/v1/users/alice@example.com",
			"DELETE /api/v1/groups/00gops/users/00u00000",
		}},
		{Name: "revoke someone unknown", Do: func(ctx context.Context, p *Provider) error {
			return p.Revoke(ctx, "ops", "ghost@example.com")
		}, Want: []string{
			"GET /api/v1/users/ghost@example.com",
		}},
		{Name: "check", Do: func(ctx context.Context, p *Provider) error { return p.Check(ctx) }, Want: []string{
			"GET /api/v1/groups/00gops",
		}},
	})
}

// TestRateLimits: a spent window is waited out before the next request
// (no 429 drawn), a 429 is waited out until X-Rate-Limit-Reset, and a wait
// longer than allowed is not started.
func TestRateLimits(t *testing.T) {
	t.Parallel()
	httpapitest.CheckLimited(t, "Okta", []httpapitest.Limited{
		{Name: "under the limit", Quota: 100, Grants: 5},
		{Name: "window spent: wait for the reset", Quota: 6, Grants: 10, MinTime: time.Minute},
		{Name: "429 waited out", Force429: 2, Grants: 1, Refusals: 2},
		{Name: "longer than max_rate_limit_wait", Quota: 3, Grants: 3, MaxWait: "10s", Fails: true},
	}, func(t *testing.T, lc httpapitest.Limited) (*httpapitest.Fake, func() error, func() int) {
		c := httpapitest.ManualClock()
		logins := providertest.Numbered("u%d@example.com", lc.Grants)
		f := setup(t, c, []string{"00gops"}, logins)
		f.Set(func() { f.quota.Limit, f.force429 = lc.Quota, lc.Force429 })
		cfg := config(f.url, "token", map[string]string{"ops": "00gops"})
		if lc.MaxWait != "" {
			cfg.Settings["max_rate_limit_wait"] = lc.MaxWait
		}
		p := open(t, cfg, c)
		return &f.Fake, func() error { return providertest.GrantEach(t.Context(), p, "ops", logins, time.Time{}) },
			func() int { return len(f.memberLogins("00gops")) }
	})
}

// TestTokenLifetime: a service app's token is renewed when it runs out,
// and a token Okta refuses early (revoked) is replaced once.
func TestTokenLifetime(t *testing.T) {
	t.Parallel()
	c := httpapitest.ManualClock()
	who := [3]string{"a@example.com", "b@example.com", "c@example.com"}
	f := setup(t, c, []string{"00gops"}, who[:])
	p := open(t, config(f.url, "app", map[string]string{"ops": "00gops"}), c)
	f.CheckTokenRenewal(t, c, func(who string) error {
		return p.Grant(t.Context(), providers.Grant{Role: "ops", Principal: who})
	}, who)
	if diff := cmp.Diff(who[:], f.memberLogins("00gops")); diff != "" {
		t.Errorf("members (-want +got):\n%s", diff)
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	c := httpapitest.ManualClock()
	f := setup(t, c, []string{"00gops", "00gapp"}, []string{"alice@example.com", "twin@example.com"})
	f.Set(func() {
		f.groups["00gapp"].typ = "APP_GROUP"
		f.users["00u00001"].email = "alice@example.com" // two users share an email
	})
	roles := map[string]string{"ops": "00gops", "gone": "00gnosuch", "app": "00gapp"}
	p := open(t, config(f.url, "app", roles), c)
	emailCfg := config(f.url, "token", roles)
	emailCfg.Settings["principal"] = "email"
	pe := open(t, emailCfg, c)
	wrongApp := config(f.url, "app", roles)
	wrongApp.Settings["client_id"] = "0oa-someone-else"
	pw := open(t, wrongApp, c)
	ctx := t.Context()

	providertest.CheckFailures(t, []providertest.FailureCase{
		{Name: "unknown user", Do: func() error { return p.Grant(ctx, providers.Grant{Role: "ops", Principal: "ghost@example.com"}) }, Want: providertest.Failure{NotFound: true, Says: `"ghost@example.com" does not exist in Okta`}},
		{Name: "login spelt otherwise", Do: func() error { return p.Grant(ctx, providers.Grant{Role: "ops", Principal: "ALICE@example.com"}) }, Want: providertest.Failure{Invalid: true, Says: `as "alice@example.com"`}},
		{Name: "email of two users", Do: func() error { return pe.Grant(ctx, providers.Grant{Role: "ops", Principal: "alice@example.com"}) }, Want: providertest.Failure{Invalid: true, Says: "more than one"}},
		{Name: "missing group on Members", Do: func() error { _, err := p.Members(ctx, "gone"); return err }, Want: providertest.Failure{NotFound: true}},
		{Name: "missing group on Grant", Do: func() error { return p.Grant(ctx, providers.Grant{Role: "gone", Principal: "alice@example.com"}) }, Want: providertest.Failure{NotFound: true}},
		{Name: "Check: missing and app groups", Do: func() error { return p.Check(ctx) }, Want: providertest.Failure{NotFound: true, Says: "type APP_GROUP"}},
		{Name: "login with a slash", Do: func() error { return p.Revoke(ctx, "ops", "a/../b") }, Want: providertest.Failure{Invalid: true}},
		{Name: "client the org does not know", Do: func() error { _, err := pw.Members(ctx, "ops"); return err }, Want: providertest.Failure{System: true, Says: "invalid_client"}},
		{Name: "server error", Do: func() error {
			f.Set(func() { f.failures = 1 })
			_, err := p.Members(ctx, "ops")
			return err
		}, Want: providertest.Failure{System: true, Retryable: true}},
		// The window resets a minute from now on the manual clock.
		f.PastTheContext(ctx, p, "ops", func() { f.force429 = 1 }, "rate limit"),
	}, secrets()...)
	if got := f.memberLogins("00gops"); len(got) != 0 {
		t.Errorf("members after failed grants: %v", got)
	}
}

func TestOpenRejectsBadSettings(t *testing.T) {
	t.Parallel()
	open := func(cfg gitgrant.ProviderConfig) (providers.Provider, error) {
		return Open(t.Context(), cfg, deps(nil))
	}
	providertest.CheckRefusals(t, config("https://example.okta.com", "app", nil), open, []providertest.Refusal{
		{Name: "org_url missing", Settings: map[string]any{"org_url": nil}, Says: "setting org_url"},
		{Name: "org_url with a password", Settings: map[string]any{"org_url": "https://u:p@example.okta.com"}, Says: "setting org_url"},
		{Name: "bad principal", Settings: map[string]any{"principal": "id"}, Says: "setting principal"},
		{Name: "bad wait", Settings: map[string]any{"max_rate_limit_wait": "soon"}, Says: "max_rate_limit_wait"},
		{Name: "no credentials", Settings: map[string]any{"client_id": nil, "private_key_env": nil, "key_id": nil}, Says: "set client_id"},
		{Name: "both credentials", Settings: map[string]any{"api_token_env": "OKTA_API_TOKEN"}, Says: "not both"},
		{Name: "key variable unset", Settings: map[string]any{"private_key_env": "UNSET"}, Says: "UNSET"},
		{Name: "key not PEM", Settings: map[string]any{"private_key_env": "OKTA_API_TOKEN"}, Says: "not PEM"},
		{Name: "client_id missing", Settings: map[string]any{"client_id": nil}, Says: "client_id is required"},
		{Name: "unknown setting", Settings: map[string]any{"group_prefix": "x"}, Says: `unknown setting "group_prefix"`},
	}, secrets()...)
}

// TestLogsHoldNoSecrets: the waits gitgrant logs say what it waits for,
// and neither they nor anything else logged carries a credential.
func TestLogsHoldNoSecrets(t *testing.T) {
	t.Parallel()
	c := httpapitest.ManualClock()
	who := []string{"a@example.com", "b@example.com"}
	f := setup(t, c, []string{"00gops"}, who)
	f.Set(func() { f.force429 = 1 })
	httpapitest.CheckLogs(t, c, deps(nil), func(d providers.Deps) providers.Provider {
		return providertest.Open(t, Open, config(f.url, "app", map[string]string{"ops": "00gops"}), d)
	}, "ops", who, append(secrets(), "PRIVATE KEY", "SSWS")...)
}

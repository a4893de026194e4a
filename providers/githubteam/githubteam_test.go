package githubteam

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/ghfake"
	"github.com/gitgrant/gitgrant/internal/testing/fakeclock"
	"github.com/gitgrant/gitgrant/internal/testing/testenv"
	"github.com/gitgrant/gitgrant/providers"
	"github.com/gitgrant/gitgrant/providers/providertest"
)

const testToken = "ghs_test-token-that-must-never-leak"

func config(apiURL string, roles map[string]string) gitgrant.ProviderConfig {
	return providertest.Config(Type, "github", roles, map[string]any{
		"org":       "acme",
		"api_url":   apiURL,
		"token_env": "GITGRANT_TEAM_TOKEN",
	})
}

// deps hold the token, on clock c (nil: the wall clock).
func deps(c gitgrant.Clock) providers.Deps {
	return providertest.Deps(map[string]string{"GITGRANT_TEAM_TOKEN": testToken}, nil, c)
}

// open opens a provider whose clock records the waits it asks for and
// waits for real (go-github refuses requests until a limit it has seen
// resets).
func open(t *testing.T, cfg gitgrant.ProviderConfig) (*Provider, *fakeclock.Recording) {
	t.Helper()
	rec := fakeclock.Record(gitgrant.SystemClock)
	return providertest.Open(t, Open, cfg, deps(rec)).(*Provider), rec
}

func TestConformance(t *testing.T) {
	t.Parallel()
	principals := providertest.Numbered("dev-%02d", 24)
	fake, apiURL := newFakeGitHub(t, principals, "prod-deployers", "admins")
	fake.AddToken(testToken)
	fake.AddUser("outside-collaborator")
	cfg := config(apiURL, map[string]string{"deployer": "prod-deployers", "admin": "admins"})
	providertest.Run(t, providertest.Harness{
		Open: func(t *testing.T) providers.Provider {
			p, _ := open(t, cfg)
			return p
		},
		Roles:            []string{"deployer", "admin"},
		Principals:       principals,
		MissingPrincipal: "ghost-user",
		OpenWithTarget: func(t *testing.T, target string) (providers.Provider, error) {
			return Open(t.Context(), config(apiURL, map[string]string{"hostile": target}), deps(nil))
		},
		Down: func(t *testing.T) (providers.Provider, error) {
			c := config(fmt.Sprintf("http://127.0.0.1:%d/api/v3/", testenv.FreePort(t)), map[string]string{"deployer": "prod-deployers"})
			return Open(t.Context(), c, deps(nil))
		},
		Secrets: []string{testToken},
	})
}

// TestMembersPages: every page is read, per_page=100 keeps it to three
// requests for 250 members.
func TestMembersPages(t *testing.T) {
	t.Parallel()
	logins := providertest.Numbered("user-%03d", 250)
	fake, apiURL := newFakeGitHub(t, logins, "big")
	for _, l := range logins {
		fake.AddTeamMember("acme", "big", l)
	}
	p, _ := open(t, config(apiURL, map[string]string{"big": "big"}))
	providertest.CheckMembers(t, p, "big", logins)
	want := []string{
		"GET /orgs/acme/teams/big/members?per_page=100&role=all",
		"GET /orgs/acme/teams/big/members?page=2&per_page=100&role=all",
		"GET /orgs/acme/teams/big/members?page=3&per_page=100&role=all",
	}
	if diff := cmp.Diff(want, fake.log()); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}

// TestMemberships covers what GitHub adds to plain membership: invitations
// of users outside the organisation, maintainers, and logins in another
// case.
func TestMemberships(t *testing.T) {
	t.Parallel()
	fake, apiURL := newFakeGitHub(t, []string{"Alice", "bob", "lead"}, "ops")
	fake.AddUser("outsider")
	fake.SetTeamMember("acme", "ops", "lead", "maintainer", "active")
	p, _ := open(t, config(apiURL, map[string]string{"ops": "ops"}))
	ctx := t.Context()

	steps := []struct {
		name    string
		do      func() error
		state   []string // the fake's memberships, login:role:state
		members []string // what Members reports
	}{
		{"start", func() error { return nil }, []string{"lead:maintainer:active"}, []string{"lead"}},
		{"grant alice (spelt as in the org)", func() error { return p.Grant(ctx, providers.Grant{Role: "ops", Principal: "Alice"}) },
			[]string{"Alice:member:active", "lead:maintainer:active"}, []string{"Alice", "lead"}},
		{"grant bob spelt otherwise: refused, nothing changes", func() error {
			err := p.Grant(ctx, providers.Grant{Role: "ops", Principal: "bob"})
			if err != nil {
				return err
			}
			if err := p.Grant(ctx, providers.Grant{Role: "ops", Principal: "BOB"}); !errors.Is(err, providers.ErrInvalidName) || !strings.Contains(err.Error(), `"bob"`) {
				return fmt.Errorf("Grant(BOB) = %v, want ErrInvalidName naming GitHub's spelling", err)
			}
			return p.Revoke(ctx, "ops", "bob")
		}, []string{"Alice:member:active", "lead:maintainer:active"}, []string{"Alice", "lead"}},
		{"grant the maintainer: no demotion", func() error { return p.Grant(ctx, providers.Grant{Role: "ops", Principal: "lead"}) },
			[]string{"Alice:member:active", "lead:maintainer:active"}, []string{"Alice", "lead"}},
		{"grant an outsider: invitation, not yet a member", func() error { return p.Grant(ctx, providers.Grant{Role: "ops", Principal: "outsider"}) },
			[]string{"Alice:member:active", "lead:maintainer:active", "outsider:member:pending"}, []string{"Alice", "lead"}},
		{"grant the outsider again", func() error { return p.Grant(ctx, providers.Grant{Role: "ops", Principal: "outsider"}) },
			[]string{"Alice:member:active", "lead:maintainer:active", "outsider:member:pending"}, []string{"Alice", "lead"}},
		{"revoke the invitation", func() error { return p.Revoke(ctx, "ops", "outsider") },
			[]string{"Alice:member:active", "lead:maintainer:active"}, []string{"Alice", "lead"}},
		{"revoke alice in lower case", func() error { return p.Revoke(ctx, "ops", "alice") },
			[]string{"lead:maintainer:active"}, []string{"lead"}},
		{"revoke bob, never a member", func() error { return p.Revoke(ctx, "ops", "bob") },
			[]string{"lead:maintainer:active"}, []string{"lead"}},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if diff := cmp.Diff(s.state, fake.state("ops")); diff != "" {
			t.Fatalf("after %s, memberships (-want +got):\n%s", s.name, diff)
		}
		ms, err := p.Members(ctx, "ops")
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, m := range ms {
			names = append(names, m.Principal)
		}
		if diff := cmp.Diff(s.members, names); diff != "" {
			t.Fatalf("after %s, Members (-want +got):\n%s", s.name, diff)
		}
	}
}

// TestRateLimits: each kind of limit is waited out for as long as GitHub
// asks, and a wait longer than allowed or than the context has is not
// started at all.
func TestRateLimits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		limits   []string
		maxWait  string
		deadline time.Duration // 0: none
		wantErr  bool
		minWait  time.Duration // of the first recorded wait, less the moment it took to start it
		maxWaitD time.Duration
	}{
		{name: "primary", limits: []string{"primary"}, minWait: time.Second, maxWaitD: 3 * time.Second},
		{name: "primary as 429 with X-RateLimit-Reset", limits: []string{"primary429"}, minWait: time.Second, maxWaitD: 3 * time.Second},
		{name: "secondary with Retry-After", limits: []string{"secondary:1"}, minWait: time.Second, maxWaitD: time.Second},
		{name: "429 with Retry-After", limits: []string{"429:1"}, minWait: time.Second, maxWaitD: time.Second},
		{name: "twice in a row", limits: []string{"429:1", "secondary:1"}, minWait: time.Second, maxWaitD: time.Second},
		{name: "longer than max_rate_limit_wait", limits: []string{"secondary:3600"}, maxWait: "1m", wantErr: true},
		{name: "longer than the context", limits: []string{"429:30"}, deadline: 5 * time.Second, wantErr: true},
		{name: "waiting disabled", limits: []string{"429:1"}, maxWait: "0s", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fake, apiURL := newFakeGitHub(t, []string{"alice"}, "ops")
			cfg := config(apiURL, map[string]string{"ops": "ops"})
			if tt.maxWait != "" {
				cfg.Settings["max_rate_limit_wait"] = tt.maxWait
			}
			p, rec := open(t, cfg)
			fake.limit(tt.limits...)
			ctx := t.Context()
			if tt.deadline > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.deadline)
				defer cancel()
			}
			err := p.Grant(ctx, providers.Grant{Role: "ops", Principal: "alice"})
			if tt.wantErr {
				var sys *gitgrant.SystemError
				if !errors.As(err, &sys) || !sys.Retryable || !strings.Contains(err.Error(), "rate limited by GitHub until") {
					t.Fatalf("Grant: err = %v, want a retryable SystemError saying until when", err)
				}
				if waits := rec.Delays(); len(waits) != 0 {
					t.Errorf("asked to wait %v before giving up; want no wait", waits)
				}
				if got := fake.state("ops"); len(got) != 0 {
					t.Errorf("memberships = %v, want none", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("Grant: %v", err)
			}
			waits := rec.Delays()
			if len(waits) != len(tt.limits) {
				t.Fatalf("waits = %v, want %d", waits, len(tt.limits))
			}
			if w := waits[0]; w < tt.minWait-100*time.Millisecond || w > tt.maxWaitD {
				t.Errorf("first wait = %v, want between %v and %v", w, tt.minWait, tt.maxWaitD)
			}
			if diff := cmp.Diff([]string{"alice:member:active"}, fake.state("ops")); diff != "" {
				t.Errorf("memberships (-want +got):\n%s", diff)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	fake, apiURL := newFakeGitHub(t, []string{"alice"}, "ops")
	fake.AddToken(testToken)
	p, _ := open(t, config(apiURL, map[string]string{"ops": "ops", "gone": "no-such-team"}))

	wrongToken := config(apiURL, map[string]string{"ops": "ops"})
	wp := providertest.Open(t, Open, wrongToken, providertest.Deps(map[string]string{"GITGRANT_TEAM_TOKEN": "ghs_wrong"}, nil, nil))

	tests := []struct {
		name                string
		do                  func() error
		notFound, system    bool
		retryable, invalid  bool
		wantInMessageIfFail string
	}{
		{name: "unknown user", do: func() error { return p.Grant(t.Context(), providers.Grant{Role: "ops", Principal: "ghost"}) }, notFound: true},
		{name: "missing team on Members", do: func() error { _, err := p.Members(t.Context(), "gone"); return err }, notFound: true},
		{name: "missing team on Grant", do: func() error { return p.Grant(t.Context(), providers.Grant{Role: "gone", Principal: "alice"}) }, notFound: true},
		{name: "missing team on Check", do: func() error { return p.Check(t.Context()) }, notFound: true},
		{name: "login with a slash", do: func() error { return p.Revoke(t.Context(), "ops", "../admin") }, invalid: true},
		{name: "bad token", do: func() error { _, err := wp.Members(t.Context(), "ops"); return err }, system: true},
		{name: "server error", do: func() error {
			fake.Inject(ghfake.Fault{Status: http.StatusBadGateway})
			_, err := p.Members(t.Context(), "ops")
			return err
		}, system: true, retryable: true},
	}
	for _, tt := range tests {
		err := tt.do()
		if err == nil {
			t.Errorf("%s: no error", tt.name)
			continue
		}
		if strings.Contains(err.Error(), testToken) {
			t.Errorf("%s: error contains the token", tt.name)
		}
		if got := errors.Is(err, providers.ErrNotFound); got != tt.notFound {
			t.Errorf("%s: %v: ErrNotFound = %v, want %v", tt.name, err, got, tt.notFound)
		}
		if got := errors.Is(err, providers.ErrInvalidName); got != tt.invalid {
			t.Errorf("%s: %v: ErrInvalidName = %v, want %v", tt.name, err, got, tt.invalid)
		}
		var sys *gitgrant.SystemError
		if got := errors.As(err, &sys); got != tt.system {
			t.Errorf("%s: %v: SystemError = %v, want %v", tt.name, err, got, tt.system)
		} else if got && sys.Retryable != tt.retryable {
			t.Errorf("%s: %v: Retryable = %v, want %v", tt.name, err, sys.Retryable, tt.retryable)
		}
	}
}

// headerTransport marks requests, to show which HTTP client was used.
type headerTransport struct{ base http.RoundTripper }

func (h headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer from-deps-client")
	return h.base.RoundTrip(r)
}

// TestCredentials: a configured token is sent as a bearer token; without
// one the client from Deps is used as it is.
func TestCredentials(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		settings map[string]any
		token    string // what the fake requires
	}{
		{"token_env", map[string]any{"token_env": "GITGRANT_TEAM_TOKEN"}, testToken},
		{"token_file", map[string]any{"token_file": "/run/secrets/gh"}, "ghs_from_file"},
		{"deps client", map[string]any{}, "from-deps-client"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fake, apiURL := newFakeGitHub(t, []string{"alice"}, "ops")
			fake.AddToken(tt.token)
			cfg := config(apiURL, map[string]string{"ops": "ops"})
			delete(cfg.Settings, "token_env")
			for k, v := range tt.settings {
				cfg.Settings[k] = v
			}
			d := deps(nil)
			d.ReadFile = func(name string) ([]byte, error) {
				if name == "/run/secrets/gh" {
					return []byte("ghs_from_file\n"), nil
				}
				return nil, errors.New("no such file")
			}
			d.HTTPClient = &http.Client{Transport: headerTransport{http.DefaultTransport}}
			if len(tt.settings) > 0 {
				d.HTTPClient = http.DefaultClient
			}
			p, err := Open(t.Context(), cfg, d)
			if err != nil {
				t.Fatal(err)
			}
			if err := p.(providers.Checker).Check(t.Context()); err != nil {
				t.Errorf("Check: %v", err)
			}
		})
	}
}

func TestNewRejectsBadSettings(t *testing.T) {
	t.Parallel()
	open := func(cfg gitgrant.ProviderConfig) (providers.Provider, error) {
		return Open(t.Context(), cfg, deps(nil))
	}
	providertest.CheckRefusals(t, config("https://ghe.example.com/api/v3/", nil), open, []providertest.Refusal{
		{Name: "org missing", Settings: map[string]any{"org": nil}, Says: "setting org"},
		{Name: "org with a slash", Settings: map[string]any{"org": "acme/../x"}, Says: "setting org"},
		{Name: "api_url not a URL", Settings: map[string]any{"api_url": "ghe.example.com"}, Says: "setting api_url"},
		{Name: "max wait not a duration", Settings: map[string]any{"max_rate_limit_wait": "soon"}, Says: "max_rate_limit_wait"},
		{Name: "token variable unset", Settings: map[string]any{"token_env": "UNSET_VARIABLE"}, Says: "UNSET_VARIABLE"},
		{Name: "both token references", Settings: map[string]any{"token_file": "/run/secrets/gh"}, Says: "not both"},
	}, testToken)
}

// TestCheckChildTeams: GitHub lists a child team's members as the parent's,
// so Check refuses a managed team that has children.
func TestCheckChildTeams(t *testing.T) {
	t.Parallel()
	fake, apiURL := newFakeGitHub(t, []string{"alice"}, "ops", "ops-oncall", "admins")
	p, _ := open(t, config(apiURL, map[string]string{"ops": "ops", "admins": "admins"}))
	if err := p.Check(t.Context()); err != nil {
		t.Fatalf("Check without child teams: %v", err)
	}
	fake.SetChildTeams("acme", "ops", "ops-oncall")
	err := p.Check(t.Context())
	if err == nil || !strings.Contains(err.Error(), "team acme/ops has child teams (ops-oncall)") {
		t.Fatalf("Check = %v, want it to name ops and its child team", err)
	}
	if strings.Contains(err.Error(), "admins") {
		t.Errorf("Check blames admins, which has no child teams: %v", err)
	}
}

// TestRequests pins the requests each operation sends.
func TestRequests(t *testing.T) {
	t.Parallel()
	fake, apiURL := newFakeGitHub(t, []string{"alice"}, "ops")
	p, _ := open(t, config(apiURL, map[string]string{"ops": "ops"}))
	ctx := t.Context()
	steps := []struct {
		name string
		do   func() error
		want []string
	}{
		{"grant", func() error { return p.Grant(ctx, providers.Grant{Role: "ops", Principal: "alice"}) }, []string{
			"GET /users/alice",
			"GET /orgs/acme/teams/ops/memberships/alice",
			"PUT /orgs/acme/teams/ops/memberships/alice",
		}},
		{"grant again", func() error { return p.Grant(ctx, providers.Grant{Role: "ops", Principal: "alice"}) }, []string{
			"GET /users/alice",
			"GET /orgs/acme/teams/ops/memberships/alice",
		}},
		{"revoke", func() error { return p.Revoke(ctx, "ops", "alice") }, []string{
			"DELETE /orgs/acme/teams/ops/memberships/alice",
		}},
	}
	for _, s := range steps {
		before := len(fake.log())
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if diff := cmp.Diff(s.want, fake.log()[before:]); diff != "" {
			t.Errorf("%s: requests (-want +got):\n%s", s.name, diff)
		}
	}
}

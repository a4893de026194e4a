// Package okta grants temporary membership of Okta groups through the Okta
// management API. A role is a group (its id); a principal is an Okta user,
// named by login (default) or primary email. gitgrant authenticates as an
// OAuth 2.0 service app with a private-key JWT, or with an API token.
package okta

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/jwtsign"
	"github.com/gitgrant/gitgrant/providers"
	"github.com/gitgrant/gitgrant/providers/internal/httpapi"
)

// Type is the provider type in gitgrant.yaml.
const Type = "okta"

const (
	defaultMaxWait = 5 * time.Minute
	// defaultConfirmWait bounds how long a grant waits for the new
	// membership to show in Okta's reads.
	defaultConfirmWait = 30 * time.Second
	// pageSize is asked for when listing; Okta may answer with fewer and a
	// Link to the rest.
	pageSize   = 1000
	maxNameLen = 100
)

var defaultScopes = []string{"okta.groups.manage", "okta.users.read"}

var (
	// Okta object ids (00g..., 00u...) are 20 letters and digits; allow
	// some room, nothing that could leave a path segment.
	groupIDPattern = regexp.MustCompile(`^[A-Za-z0-9]{1,64}$`)
	// Logins are usually email addresses; Okta also allows other forms.
	// Nothing outside these characters reaches a request.
	loginPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+@-]*$`)
	emailPattern = regexp.MustCompile(`^[A-Za-z0-9._+-]+@[A-Za-z0-9][A-Za-z0-9.-]*$`)
)

// Settings are an okta provider entry's settings in gitgrant.yaml, as
// okta.schema.json beside this file describes them.
type Settings struct {
	OrgURL           string `json:"org_url"`
	ClientID         string `json:"client_id"`
	PrivateKeyEnv    string `json:"private_key_env"`
	PrivateKeyFile   string `json:"private_key_file"`
	KeyID            string `json:"key_id"`
	Scopes           string `json:"scopes"`
	APITokenEnv      string `json:"api_token_env"`
	APITokenFile     string `json:"api_token_file"`
	Principal        string `json:"principal"`
	MaxRateLimitWait string `json:"max_rate_limit_wait"`
}

// Provider manages the groups of one okta provider entry.
type Provider struct {
	cfg         gitgrant.ProviderConfig
	api         *httpapi.Client
	dir         *httpapi.Directory[user]
	byEmail     bool // principals are primary emails, not logins
	confirmWait time.Duration
}

var (
	_ providers.Provider = (*Provider)(nil)
	_ providers.Checker  = (*Provider)(nil)
)

// Open opens an okta provider. It reads the credentials at once and
// fetches a token only when the first request needs one.
var Open = providers.Typed(openWith)

// openWith opens the provider from its decoded settings.
func openWith(ctx context.Context, cfg gitgrant.ProviderConfig, s Settings, deps providers.Deps) (providers.Provider, error) {
	bad := providers.Named(cfg.Name).Errorf
	base, err := httpapi.BaseURL(s.OrgURL)
	if err != nil {
		return nil, bad("setting org_url must be the org's URL, such as https://example.okta.com")
	}
	maxWait, err := providers.ParseWait(cfg.Name, "max_rate_limit_wait", s.MaxRateLimitWait, defaultMaxWait)
	if err != nil {
		return nil, err
	}
	principal, err := providers.Choice(cfg.Name, "principal", s.Principal, "login", "email")
	if err != nil {
		return nil, err
	}
	auth, err := openAuth(cfg.Name, s, deps, base)
	if err != nil {
		return nil, err
	}
	p := &Provider{
		cfg: cfg,
		api: httpapi.New(httpapi.Config{
			API: "Okta", System: Type + " " + cfg.Name, Provider: cfg.Name, BaseURL: base, Auth: auth, MaxWait: maxWait,
			// Okta's windows are a minute long: a 429 that does not say
			// when its window resets waits that long.
			Backoff: httpapi.Backoff{First: time.Minute, Max: time.Minute},
			Problem: problem,
			// Errors name a call "grant ops (group 00g1)", or "read users of the org".
			Target: "group", Whole: "the org",
		}, deps),
		byEmail:     principal == "email",
		confirmWait: defaultConfirmWait,
	}
	p.dir = &httpapi.Directory[user]{Client: p.api, Provider: cfg.Name, System: "Okta", Group: p.group, Lookup: p.lookup, Name: p.principalOf}
	return p, nil
}

// problem reads Okta's error object.
func problem(body []byte) (string, string) {
	var e struct {
		Code    string `json:"errorCode"`
		Summary string `json:"errorSummary"`
	}
	json.Unmarshal(body, &e)
	return e.Code, e.Summary
}

// openAuth picks the credentials: an API token, or a service app's client
// id and private key; exactly one of the two.
func openAuth(name string, s Settings, deps providers.Deps, base *url.URL) (httpapi.Authorizer, error) {
	token := providers.SecretRef{Name: "api_token", Env: s.APITokenEnv, File: s.APITokenFile}
	key := providers.SecretRef{Name: "private_key", Env: s.PrivateKeyEnv, File: s.PrivateKeyFile}
	switch app := s.ClientID != "" || key.Set(); {
	case token.Set() && app:
		return nil, fmt.Errorf("provider %s: set api_token_env/_file or client_id with private_key_env/_file, not both", name)
	case token.Set():
		t, err := token.Read(name, deps)
		if err != nil {
			return nil, err
		}
		return httpapi.Static("SSWS " + t), nil
	case app:
		if s.ClientID == "" {
			return nil, fmt.Errorf("provider %s: setting client_id is required with private_key_env/_file", name)
		}
		pemText, err := key.Read(name, deps)
		if err != nil {
			return nil, err
		}
		k, err := jwtsign.ParseRSAKey([]byte(pemText))
		if err != nil {
			return nil, fmt.Errorf("provider %s: private key: %v", name, err)
		}
		scopes := defaultScopes
		if s.Scopes != "" {
			scopes = strings.Fields(s.Scopes)
		}
		sa := &serviceApp{
			clientID: s.ClientID, keyID: s.KeyID, tokenURL: base.JoinPath("oauth2/v1/token").String(),
			scopes: scopes, key: k, clock: gitgrant.ClockOr(deps.Clock),
		}
		return httpapi.NewTokenSource(httpapi.TokenConfig{Fetch: sa.token, Describe: true}, deps), nil
	}
	return nil, fmt.Errorf("provider %s: set client_id with private_key_env or private_key_file (a service app), or api_token_env or api_token_file", name)
}

// call sends one request, counted against the rate limit of Okta's
// endpoint, and decodes the answer into out.
func (p *Provider) call(ctx context.Context, endpoint, method, path string, out any) (http.Header, error) {
	return p.api.Do(ctx, httpapi.Call{Method: method, Path: path, Bucket: endpoint}, out)
}

// user is the part of Okta's user object gitgrant reads.
type user struct {
	ID      string `json:"id"`
	Status  string `json:"status"`
	Profile struct {
		Login string `json:"login"`
		Email string `json:"email"`
	} `json:"profile"`
}

func (p *Provider) principalOf(u user) string {
	if p.byEmail {
		return u.Profile.Email
	}
	return u.Profile.Login
}

// Members lists the group's members, every page.
func (p *Provider) Members(ctx context.Context, role string) ([]providers.Member, error) {
	gid, err := p.group(role)
	if err != nil {
		return nil, err
	}
	var members []providers.Member
	next := fmt.Sprintf("api/v1/groups/%s/users?limit=%d", gid, pageSize)
	for next != "" {
		var users []user
		h, err := p.call(ctx, "group-users", http.MethodGet, next, &users)
		if err != nil {
			return nil, p.api.FailOn("list members of", role, gid, err)
		}
		for _, u := range users {
			members = append(members, providers.Member{Principal: p.principalOf(u)})
		}
		next = httpapi.NextLink(h)
	}
	return providers.SortMembers(members), nil
}

// Grant adds the user to the group, then waits until Okta's reads show the
// membership, so that a list right after a grant agrees with it. Adding a
// member again is a no-op in Okta. g.Until is not enforced by Okta (group
// memberships do not expire); the reconciler revokes.
func (p *Provider) Grant(ctx context.Context, g providers.Grant) error {
	gid, u, err := p.dir.ForGrant(ctx, g)
	if err != nil {
		return err
	}
	if _, err := p.call(ctx, "group-users-write", http.MethodPut, fmt.Sprintf("api/v1/groups/%s/users/%s", gid, u.ID), nil); err != nil {
		// The user exists, so a 404 means the group does not.
		return p.api.FailOn("grant", g.Role, gid, err)
	}
	return p.confirm(ctx, g.Role, gid, u.ID)
}

// confirm reads the user's groups until gid is among them, pausing between
// reads for at most confirmWait in all; time spent waiting for rate limits
// does not count, since Okta was not asked then.
func (p *Provider) confirm(ctx context.Context, role, gid, uid string) error {
	what := p.api.On("grant", role, gid)
	return p.api.Confirm(ctx, httpapi.Backoff{First: 250 * time.Millisecond, Max: 4 * time.Second}, p.confirmWait, what, func() (bool, error) {
		next := fmt.Sprintf("api/v1/users/%s/groups?limit=%d", uid, pageSize)
		for next != "" {
			var groups []struct {
				ID string `json:"id"`
			}
			h, err := p.call(ctx, "user-groups", http.MethodGet, next, &groups)
			if err != nil {
				return false, err
			}
			for _, g := range groups {
				if g.ID == gid {
					return true, nil
				}
			}
			next = httpapi.NextLink(h)
		}
		return false, nil
	})
}

// lookup finds a user by login (GET /api/v1/users/{login}) or by primary
// email (a filter on profile.email). Not found is ErrNotFound.
func (p *Provider) lookup(ctx context.Context, principal string) (user, error) {
	if err := p.checkPrincipal(principal); err != nil {
		return user{}, err
	}
	if !p.byEmail {
		var u user
		_, err := p.call(ctx, "users", http.MethodGet, "api/v1/users/"+url.PathEscape(principal), &u)
		if httpapi.IsStatus(err, http.StatusNotFound) {
			return user{}, fmt.Errorf("user %q does not exist in Okta: %w", principal, providers.ErrNotFound)
		}
		return u, err
	}
	// The pattern keeps quotes and backslashes out of the filter.
	q := url.Values{"filter": {fmt.Sprintf(`profile.email eq "%s"`, principal)}, "limit": {"2"}}
	var users []user
	if _, err := p.call(ctx, "users", http.MethodGet, "api/v1/users?"+q.Encode(), &users); err != nil {
		return user{}, err
	}
	switch len(users) {
	case 0:
		return user{}, fmt.Errorf("no Okta user has the primary email %q: %w", principal, providers.ErrNotFound)
	case 1:
		return users[0], nil
	}
	return user{}, fmt.Errorf("more than one Okta user has the primary email %q; use principal: login: %w", principal, providers.ErrInvalidName)
}

// Revoke removes the user from the group. A user who does not exist (or
// whom Okta knows by another name), or is not a member (404), holds
// nothing: success.
func (p *Provider) Revoke(ctx context.Context, role, principal string) error {
	gid, err := p.group(role)
	if err != nil {
		return err
	}
	u, held, err := p.dir.Holder(ctx, role, gid, principal)
	if err != nil || !held {
		return err
	}
	_, err = p.call(ctx, "group-users-write", http.MethodDelete, fmt.Sprintf("api/v1/groups/%s/users/%s", gid, u.ID), nil)
	return p.api.FailOn("revoke", role, gid, httpapi.Gone(err))
}

// Check gets a token and reads every managed group, which must be an
// Okta-mastered group (OKTA_GROUP): Okta refuses API changes to groups
// imported from an application or directory.
func (p *Provider) Check(ctx context.Context) error {
	connect := httpapi.Call{Method: http.MethodGet, Path: "api/v1/users?limit=1", Bucket: "users"}
	return p.api.CheckRoles(ctx, p.cfg, "read users of", connect, func(role string) error { return p.checkGroup(ctx, role) })
}

// checkGroup reads role's group, which must be one whose members the API
// can change.
func (p *Provider) checkGroup(ctx context.Context, role string) error {
	gid, err := p.group(role)
	if err != nil {
		return err
	}
	var g struct {
		Type    string `json:"type"`
		Profile struct {
			Name string `json:"name"`
		} `json:"profile"`
	}
	if _, err := p.call(ctx, "groups", http.MethodGet, "api/v1/groups/"+gid, &g); err != nil {
		return p.api.FailOn("read group of", role, gid, err)
	}
	if g.Type != "OKTA_GROUP" {
		return fmt.Errorf("provider %s: role %s: group %s (%s) is of type %s; only OKTA_GROUP membership can be changed through the API",
			p.cfg.Name, role, gid, g.Profile.Name, g.Type)
	}
	return nil
}

// Close has nothing to release: the HTTP client belongs to the caller.
func (p *Provider) Close() error { return nil }

// Calls is how many API requests the provider has sent, for figures.
func (p *Provider) Calls() int64 { return p.api.Calls() }

// group returns the id of role's group. Only declared roles are managed.
func (p *Provider) group(role string) (string, error) {
	return providers.ValidTarget(p.cfg, role, groupIDPattern.MatchString, "an Okta group id (00g...)")
}

func (p *Provider) checkPrincipal(s string) error {
	pattern, what := loginPattern, "an Okta login"
	if p.byEmail {
		pattern, what = emailPattern, "an email address"
	}
	if !pattern.MatchString(s) || len(s) > maxNameLen {
		return fmt.Errorf("%q is not %s: %w", s, what, providers.ErrInvalidName)
	}
	return nil
}

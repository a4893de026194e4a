// Package entra grants temporary membership of Microsoft Entra ID groups
// through Microsoft Graph. A role is a group (its object id); a principal
// is a user, named by userPrincipalName (default) or object id. With PIM
// for Groups enabled (pim: true), a grant is an active assignment that
// Entra itself ends at the grant's Until (native expiry).
package entra

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/providers"
	"github.com/gitgrant/gitgrant/providers/internal/httpapi"
)

// Type is the provider type in gitgrant.yaml.
const Type = "entra"

const (
	defaultGraphURL = "https://graph.microsoft.com/v1.0/"
	defaultLoginURL = "https://login.microsoftonline.com/"
	defaultMaxWait  = 5 * time.Minute
	// defaultConfirmWait bounds the pauses of a grant waiting for the new
	// membership to show in Graph's reads (directory replication).
	defaultConfirmWait = 60 * time.Second
	// userCacheTTL bounds how long a user's id and name are remembered.
	userCacheTTL = 10 * time.Minute
	maxNameLen   = 256
	pageSize     = 999
)

var (
	guidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	// userPrincipalNames: a local part (guests carry #EXT#) and a
	// verified domain. Quotes, slashes and the like never reach a path.
	upnPattern    = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._+#-]*@[A-Za-z0-9][A-Za-z0-9.-]*$`)
	tenantPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.-]*$`)
)

// Settings are an entra provider entry's settings in gitgrant.yaml, as
// entra.schema.json beside this file describes them.
type Settings struct {
	TenantID         string `json:"tenant_id"`
	ClientID         string `json:"client_id"`
	ClientSecretEnv  string `json:"client_secret_env"`
	ClientSecretFile string `json:"client_secret_file"`
	Principal        string `json:"principal"`
	PIM              bool   `json:"pim"`
	Justification    string `json:"justification"`
	GraphURL         string `json:"graph_url"`
	LoginURL         string `json:"login_url"`
	MaxRateLimitWait string `json:"max_rate_limit_wait"`
}

// Provider manages the groups of one entra provider entry.
type Provider struct {
	cfg           gitgrant.ProviderConfig
	api           *httpapi.Client
	dir           *httpapi.Directory[user]
	graph         *url.URL // the Graph root, for the @odata.id of a new member
	clock         gitgrant.Clock
	byID          bool // principals are object ids, not userPrincipalNames
	pim           bool
	justification string
	confirmWait   time.Duration
	// pimAnswered is set once Graph answered a PIM request: only then is
	// native expiry a promise (not against an unreachable tenant).
	pimAnswered atomic.Bool

	mu    sync.Mutex
	users map[string]cachedUser // by lower-case userPrincipalName and by id
}

type cachedUser struct {
	user
	until time.Time
}

// user is the part of Graph's user gitgrant reads, and an entry of a
// group's members: a user, or another directory object (group, device,
// service principal) that has no userPrincipalName.
type user struct {
	ID  string `json:"id"`
	UPN string `json:"userPrincipalName"`
}

var (
	_ providers.Provider      = (*Provider)(nil)
	_ providers.Checker       = (*Provider)(nil)
	_ providers.NativeExpirer = (*Provider)(nil)
)

// Open opens an entra provider. It reads the client secret at once and
// fetches a token when the first request needs one.
var Open = providers.Typed(openWith)

// openWith opens the provider from its decoded settings.
func openWith(ctx context.Context, cfg gitgrant.ProviderConfig, s Settings, deps providers.Deps) (providers.Provider, error) {
	bad := providers.Named(cfg.Name).Errorf
	if !tenantPattern.MatchString(s.TenantID) || len(s.TenantID) > 100 {
		return nil, bad("setting tenant_id must be the directory (tenant) id or a verified domain, not %q", s.TenantID)
	}
	if !guidPattern.MatchString(s.ClientID) {
		return nil, bad("setting client_id must be the application (client) id, a GUID")
	}
	graphURL, err := httpapi.BaseURL(cmp.Or(s.GraphURL, defaultGraphURL))
	if err != nil {
		return nil, bad("setting graph_url must be an http(s) URL such as %s", defaultGraphURL)
	}
	loginURL, err := httpapi.BaseURL(cmp.Or(s.LoginURL, defaultLoginURL))
	if err != nil {
		return nil, bad("setting login_url must be an http(s) URL such as %s", defaultLoginURL)
	}
	maxWait, err := providers.ParseWait(cfg.Name, "max_rate_limit_wait", s.MaxRateLimitWait, defaultMaxWait)
	if err != nil {
		return nil, err
	}
	principal, err := providers.Choice(cfg.Name, "principal", s.Principal, "userPrincipalName", "id")
	if err != nil {
		return nil, err
	}
	secret, err := providers.SecretRef{Name: "client_secret", Env: s.ClientSecretEnv, File: s.ClientSecretFile}.Read(cfg.Name, deps)
	if err != nil {
		return nil, err
	}
	// The token's audience is the Graph host: https://graph.microsoft.com
	// or a national cloud's.
	scope := (&url.URL{Scheme: graphURL.Scheme, Host: graphURL.Host, Path: "/.default"}).String()
	credentials := clientcredentials.Config{
		ClientID:     s.ClientID,
		ClientSecret: secret,
		TokenURL:     loginURL.JoinPath(s.TenantID, "oauth2/v2.0/token").String(),
		Scopes:       []string{scope},
		AuthStyle:    oauth2.AuthStyleInParams,
	}
	tokens := httpapi.NewTokenSource(httpapi.TokenConfig{Fetch: credentials.Token, Secrets: []string{secret}, Describe: true}, deps)
	p := &Provider{
		cfg: cfg,
		api: httpapi.New(httpapi.Config{
			API: "Microsoft Graph", System: Type + " " + cfg.Name, Provider: cfg.Name, BaseURL: graphURL, Auth: tokens, MaxWait: maxWait,
			// Graph's advice when a 429 does not say how long.
			Backoff: httpapi.Backoff{First: 2 * time.Second, Max: 30 * time.Second},
			Problem: httpapi.ErrorEnvelope("code"),
			// Errors name a call "grant ops (group 00g1)", or "read users of the tenant".
			Target: "group", Whole: "the tenant",
		}, deps),
		graph:         graphURL,
		clock:         gitgrant.ClockOr(deps.Clock),
		byID:          principal == "id",
		pim:           s.PIM,
		justification: cmp.Or(s.Justification, "gitgrant access request"),
		confirmWait:   defaultConfirmWait,
		users:         map[string]cachedUser{},
	}
	p.dir = &httpapi.Directory[user]{Client: p.api, Provider: cfg.Name, System: "Entra", Group: p.group, Lookup: p.lookup, Name: p.name}
	return p, nil
}

// NativeExpiry is true with PIM for Groups, once the tenant has answered a
// PIM request: Entra then ends each assignment at its endDateTime.
func (p *Provider) NativeExpiry() bool { return p.pim && p.pimAnswered.Load() }

// name is how Members names a user: by userPrincipalName, or by object id
// with principal: id or when it has none (a group, a service principal).
func (p *Provider) name(u user) string {
	if p.byID || u.UPN == "" {
		return u.ID
	}
	return u.UPN
}

// Members lists the group's direct members, every page. With PIM, the
// active assignments are listed too, with the time Entra ends them: an
// assignment that directory reads do not show yet still counts, and a
// member added outside PIM shows without an end.
func (p *Provider) Members(ctx context.Context, role string) ([]providers.Member, error) {
	gid, err := p.group(role)
	if err != nil {
		return nil, err
	}
	direct, err := list[user](ctx, p, fmt.Sprintf("groups/%s/members?$select=id,userPrincipalName&$top=%d", gid, pageSize))
	if err != nil {
		return nil, p.api.FailOn("list members of", role, gid, err)
	}
	ends := map[string]time.Time{}
	if p.pim {
		instances, err := p.assignments(ctx, gid, "")
		if err != nil {
			return nil, p.api.FailOn("list PIM assignments of", role, gid, err)
		}
		for _, in := range instances {
			ends[in.PrincipalID] = in.end()
		}
	}
	var out []providers.Member
	for _, m := range direct {
		end, ok := ends[m.ID]
		delete(ends, m.ID)
		if ok {
			p.remember(m)
		}
		out = append(out, providers.Member{Principal: p.name(m), Until: end})
	}
	for _, id := range slices.Sorted(maps.Keys(ends)) {
		u, err := p.lookup(ctx, id)
		switch {
		case errors.Is(err, providers.ErrNotFound):
			u = user{ID: id} // not a user (PIM also assigns groups): named by its id
		case err != nil:
			return nil, p.api.FailOn("list PIM assignments of", role, gid, err)
		}
		out = append(out, providers.Member{Principal: p.name(u), Until: ends[id]})
	}
	return providers.SortMembers(out), nil
}

// Grant adds the user to the group (with PIM: an active assignment until
// g.Until), then waits until Graph's reads show it, so that a list right
// after a grant agrees with it.
func (p *Provider) Grant(ctx context.Context, g providers.Grant) error {
	gid, u, err := p.dir.ForGrant(ctx, g)
	if err != nil {
		return err
	}
	if p.pim {
		return p.grantPIM(ctx, g, gid, u.ID)
	}
	ref := map[string]string{"@odata.id": p.graph.JoinPath("directoryObjects", u.ID).String()}
	err = p.do(ctx, http.MethodPost, fmt.Sprintf("groups/%s/members/$ref", gid), ref, nil)
	if err != nil && !alreadyMember(err) {
		// The user exists, so a 404 means the group does not.
		return p.api.FailOn("grant", g.Role, gid, err)
	}
	return p.confirm(ctx, g.Role, gid, func() (bool, error) {
		var res struct {
			Value []string `json:"value"`
		}
		err := p.do(ctx, http.MethodPost, fmt.Sprintf("users/%s/checkMemberGroups", u.ID), map[string][]string{"groupIds": {gid}}, &res)
		return slices.Contains(res.Value, gid), err
	})
}

// confirm calls visible until it says yes, pausing between calls for at
// most confirmWait in all (throttling waits do not count).
func (p *Provider) confirm(ctx context.Context, role, gid string, visible func() (bool, error)) error {
	what := p.api.On("grant", role, gid)
	return p.api.Confirm(ctx, httpapi.Backoff{First: 250 * time.Millisecond, Max: 8 * time.Second}, p.confirmWait, what, visible)
}

// Revoke removes the user from the group (with PIM: ends the active
// assignment, then removes a direct membership left from outside PIM).
// A user who does not exist, or is not a member (404), holds nothing.
func (p *Provider) Revoke(ctx context.Context, role, principal string) error {
	gid, err := p.group(role)
	if err != nil {
		return err
	}
	// Members names a member that is not a user (a nested group, a
	// service principal) by its object id: that is removed as it is.
	id := strings.ToLower(principal)
	if !guidPattern.MatchString(principal) {
		u, held, err := p.dir.Holder(ctx, role, gid, principal)
		if err != nil || !held {
			return err
		}
		id = u.ID
	}
	if p.pim {
		if err := p.removePIM(ctx, gid, id); err != nil {
			return p.api.FailOn("revoke", role, gid, err)
		}
	}
	err = p.do(ctx, http.MethodDelete, fmt.Sprintf("groups/%s/members/%s/$ref", gid, id), nil, nil)
	return p.api.FailOn("revoke", role, gid, httpapi.Gone(err))
}

// Check gets a token and reads every managed group; with PIM, also its
// assignments, which needs the PIM permission.
func (p *Provider) Check(ctx context.Context) error {
	connect := httpapi.Call{Method: http.MethodGet, Path: "users?$top=1&$select=id"}
	return p.api.CheckRoles(ctx, p.cfg, "read users of", connect, func(role string) error { return p.checkGroup(ctx, role) })
}

func (p *Provider) checkGroup(ctx context.Context, role string) error {
	gid, err := p.group(role)
	if err != nil {
		return err
	}
	var g struct {
		DisplayName           string   `json:"displayName"`
		GroupTypes            []string `json:"groupTypes"`
		OnPremisesSyncEnabled *bool    `json:"onPremisesSyncEnabled"`
	}
	if err := p.do(ctx, http.MethodGet, "groups/"+gid+"?$select=id,displayName,groupTypes,onPremisesSyncEnabled", nil, &g); err != nil {
		return p.api.FailOn("read group of", role, gid, err)
	}
	switch {
	case slices.Contains(g.GroupTypes, "DynamicMembership"):
		return fmt.Errorf("provider %s: role %s: group %s (%s) has dynamic membership, which cannot be granted", p.cfg.Name, role, gid, g.DisplayName)
	case g.OnPremisesSyncEnabled != nil && *g.OnPremisesSyncEnabled:
		return fmt.Errorf("provider %s: role %s: group %s (%s) is synced from on-premises Active Directory; manage it there", p.cfg.Name, role, gid, g.DisplayName)
	}
	if p.pim {
		if _, err := p.assignments(ctx, gid, ""); err != nil {
			return p.api.FailOn("read PIM assignments of", role, gid, err)
		}
	}
	return nil
}

// Close has nothing to release: the HTTP client belongs to the caller.
func (p *Provider) Close() error { return nil }

// Calls is how many API requests the provider has sent, for figures.
func (p *Provider) Calls() int64 { return p.api.Calls() }

// group returns the object id of role's group. Only declared roles are
// managed.
func (p *Provider) group(role string) (string, error) {
	gid, err := providers.ValidTarget(p.cfg, role, guidPattern.MatchString, "a group object id")
	return strings.ToLower(gid), err
}

// lookup finds a user by userPrincipalName or object id (GET /users/{x}).
// Not found is ErrNotFound. Answers are remembered for a few minutes.
func (p *Provider) lookup(ctx context.Context, principal string) (user, error) {
	switch {
	case guidPattern.MatchString(principal):
	case !p.byID && upnPattern.MatchString(principal) && len(principal) <= maxNameLen:
	default:
		what := "a userPrincipalName or object id"
		if p.byID {
			what = "an object id"
		}
		return user{}, fmt.Errorf("%q is not %s: %w", principal, what, providers.ErrInvalidName)
	}
	key := strings.ToLower(principal)
	p.mu.Lock()
	c, ok := p.users[key]
	p.mu.Unlock()
	if ok && p.clock.Now().Before(c.until) {
		return c.user, nil
	}
	var u user
	err := p.do(ctx, http.MethodGet, "users/"+url.PathEscape(principal)+"?$select=id,userPrincipalName", nil, &u)
	if httpapi.IsStatus(err, http.StatusNotFound) {
		return user{}, fmt.Errorf("user %q does not exist in the tenant: %w", principal, providers.ErrNotFound)
	}
	if err != nil {
		return user{}, err
	}
	p.remember(u)
	return u, nil
}

func (p *Provider) remember(u user) {
	if u.ID == "" {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	c := cachedUser{user: u, until: p.clock.Now().Add(userCacheTTL)}
	p.users[strings.ToLower(u.ID)] = c
	if u.UPN != "" {
		p.users[strings.ToLower(u.UPN)] = c
	}
}

// Package githubteam grants temporary membership of GitHub teams (for
// example the team allowed to deploy to production, or an admin team) in
// one organisation, through the GitHub REST API. A role is a team slug; a
// principal is a GitHub login.
package githubteam

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/google/go-github/v60/github"
	"golang.org/x/oauth2"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/providers"
	"github.com/gitgrant/gitgrant/providers/internal/httpapi"
)

// Type is the provider type in gitgrant.yaml.
const Type = "github-team"

const (
	defaultAPIURL = "https://api.github.com/"
	// defaultMaxWait bounds how long one call waits for a rate limit to
	// reset before giving up with a retryable error.
	defaultMaxWait = 5 * time.Minute
	// defaultSecondaryWait is used when a secondary rate limit does not say
	// when to come back; GitHub's documentation asks for at least a minute.
	defaultSecondaryWait = time.Minute
	perPage              = 100
)

var (
	// GitHub logins are letters, digits and hyphens (older accounts break
	// today's rules on where hyphens go); Enterprise Managed Users add
	// "_shortcode". Nothing else can reach a URL path.
	loginPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]*$`)
	// Team slugs are lower-case names with hyphens and underscores. Dots
	// are refused so that no slug can be "..".
	slugPattern = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_-]*$`)
	// Organisation logins follow the login rules without underscores.
	orgPattern = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9]|-[A-Za-z0-9])*$`)
)

const maxNameLen = 100

// Settings are a github-team provider entry's settings in gitgrant.yaml,
// as github-team.schema.json beside this file describes them.
type Settings struct {
	Org              string `json:"org"`
	TokenEnv         string `json:"token_env"`
	TokenFile        string `json:"token_file"`
	APIURL           string `json:"api_url"`
	MaxRateLimitWait string `json:"max_rate_limit_wait"`
}

// Provider manages the teams of one github-team provider entry.
type Provider struct {
	cfg    gitgrant.ProviderConfig
	org    string
	client *github.Client
	logger *slog.Logger
	clock  gitgrant.Clock
	limits *httpapi.Limiter
}

var (
	_ providers.Provider = (*Provider)(nil)
	_ providers.Checker  = (*Provider)(nil)
)

// Open opens a github-team provider. With token_env or token_file it
// authenticates with that token; without, it uses deps.HTTPClient as it is,
// which the command sets up with gitgrant's own GitHub credentials (a
// GITHUB_TOKEN or a GitHub App installation token).
var Open = providers.Typed(openWith)

// openWith opens the provider from its decoded settings.
func openWith(ctx context.Context, cfg gitgrant.ProviderConfig, s Settings, deps providers.Deps) (providers.Provider, error) {
	bad := providers.Named(cfg.Name).Errorf
	org := s.Org
	if !orgPattern.MatchString(org) || len(org) > maxNameLen {
		return nil, bad("setting org must be an organisation login, not %q", org)
	}
	base, err := httpapi.BaseURL(cmp.Or(s.APIURL, defaultAPIURL))
	if err != nil {
		return nil, bad("setting api_url must be an http(s) URL such as https://ghe.example.com/api/v3/")
	}
	maxWait, err := providers.ParseWait(cfg.Name, "max_rate_limit_wait", s.MaxRateLimitWait, defaultMaxWait)
	if err != nil {
		return nil, err
	}

	httpClient := deps.HTTPClient
	if httpClient == nil {
		httpClient = http.DefaultClient
	}
	if ref := (providers.SecretRef{Name: "token", Env: s.TokenEnv, File: s.TokenFile}); ref.Set() {
		token, err := ref.Read(cfg.Name, deps)
		if err != nil {
			return nil, err
		}
		// The oauth2 transport wraps the given client's, so that tests and
		// proxies configured in deps still apply. The client must outlive
		// ctx, which only carries that base client here.
		base := context.WithValue(context.WithoutCancel(ctx), oauth2.HTTPClient, httpClient)
		httpClient = oauth2.NewClient(base, oauth2.StaticTokenSource(&oauth2.Token{AccessToken: token}))
	}
	client := github.NewClient(httpClient)
	client.BaseURL = base
	logger := httpapi.Logger(deps, cfg.Name)
	return &Provider{
		cfg:    cfg,
		org:    org,
		client: client,
		logger: logger,
		clock:  gitgrant.ClockOr(deps.Clock),
		limits: httpapi.NewLimiter("GitHub", maxWait, deps.Clock, logger),
	}, nil
}

// Members lists the team's members, every page. Pending invitations are
// not members: GitHub does not list them, and they grant nothing until
// accepted. GitHub includes members of child teams, so a managed team
// should have none (see docs/providers/github-team.md).
func (p *Provider) Members(ctx context.Context, role string) ([]providers.Member, error) {
	slug, err := p.team(role)
	if err != nil {
		return nil, err
	}
	var members []providers.Member
	opts := &github.TeamListTeamMembersOptions{Role: "all", ListOptions: github.ListOptions{PerPage: perPage}}
	for {
		var users []*github.User
		resp, err := p.call(ctx, func() (*github.Response, error) {
			var resp *github.Response
			var err error
			users, resp, err = p.client.Teams.ListTeamMembersBySlug(ctx, p.org, slug, opts)
			return resp, err
		})
		if err != nil {
			return nil, p.wrap("list members of", role, slug, err)
		}
		for _, u := range users {
			members = append(members, providers.Member{Principal: u.GetLogin()})
		}
		if resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	return providers.SortMembers(members), nil
}

// Grant makes the user a member of the team. The login must be spelt as
// GitHub spells it: Members reports that spelling, and a principal that
// differs only in case would look like someone else, to be revoked as
// drift on the next run. Someone who already belongs (as member or
// maintainer, active or invited) is left as they are, so a grant never
// demotes a maintainer. A user outside the organisation is invited; the
// pending invitation counts as granted. g.Until is not enforced by GitHub;
// the reconciler revokes.
func (p *Provider) Grant(ctx context.Context, g providers.Grant) error {
	slug, err := p.team(g.Role)
	if err != nil {
		return err
	}
	if err := p.checkUser(ctx, g, slug); err != nil {
		return err
	}
	_, err = p.call(ctx, func() (*github.Response, error) {
		_, resp, err := p.client.Teams.GetTeamMembershipBySlug(ctx, p.org, slug, g.Principal)
		return resp, err
	})
	if err == nil {
		return nil // already a member or invited
	}
	if !isNotFound(err) {
		return p.wrap("grant", g.Role, slug, err)
	}
	var m *github.Membership
	_, err = p.call(ctx, func() (*github.Response, error) {
		var resp *github.Response
		var err error
		m, resp, err = p.client.Teams.AddTeamMembershipBySlug(ctx, p.org, slug, g.Principal, &github.TeamAddTeamMembershipOptions{Role: "member"})
		return resp, err
	})
	if err != nil {
		// The user exists, so a 404 means the team does not.
		return p.wrap("grant", g.Role, slug, err)
	}
	if m.GetState() == "pending" {
		p.logger.InfoContext(ctx, "github-team: invited to the organisation; membership starts when the invitation is accepted",
			"team", slug, "login", g.Principal)
	}
	return nil
}

// checkUser makes sure the login exists and is spelt as GitHub spells it.
func (p *Provider) checkUser(ctx context.Context, g providers.Grant, slug string) error {
	if err := p.checkLogin(g.Principal); err != nil {
		return err
	}
	var user *github.User
	_, err := p.call(ctx, func() (*github.Response, error) {
		var resp *github.Response
		var err error
		user, resp, err = p.client.Users.Get(ctx, g.Principal)
		return resp, err
	})
	switch {
	case isNotFound(err):
		return fmt.Errorf("provider %s: grant %s: GitHub user %q does not exist: %w", p.cfg.Name, g.Role, g.Principal, providers.ErrNotFound)
	case err != nil:
		return p.wrap("grant", g.Role, slug, err)
	case user.GetLogin() != g.Principal:
		return providers.SpeltOtherwise(p.cfg.Name, g.Role, "GitHub", g.Principal, user.GetLogin())
	}
	return nil
}

// Revoke removes the user from the team, or withdraws a pending
// invitation to it. Not being a member (404) is success.
func (p *Provider) Revoke(ctx context.Context, role, principal string) error {
	slug, err := p.team(role)
	if err != nil {
		return err
	}
	if err := p.checkLogin(principal); err != nil {
		return err
	}
	_, err = p.call(ctx, func() (*github.Response, error) {
		return p.client.Teams.RemoveTeamMembershipBySlug(ctx, p.org, slug, principal)
	})
	if err != nil && !isNotFound(err) {
		return p.wrap("revoke", role, slug, err)
	}
	return nil
}

// Check reads every managed team and makes sure it has no child teams,
// whose members GitHub would list as the team's own. It cannot prove the
// right to change membership without changing it.
func (p *Provider) Check(ctx context.Context) error {
	return providers.CheckRoles(p.cfg, providers.RoleChecks{
		Connect: func() error {
			_, err := p.call(ctx, func() (*github.Response, error) {
				_, resp, err := p.client.Organizations.Get(ctx, p.org)
				return resp, err
			})
			if err != nil {
				return p.wrap("read organisation", "", "", err)
			}
			return nil
		},
		Role: func(role string) error { return p.checkTeam(ctx, role) },
		Last: providers.Unreachable,
	})
}

func (p *Provider) checkTeam(ctx context.Context, role string) error {
	slug, err := p.team(role)
	if err != nil {
		return err
	}
	var children []*github.Team
	_, err = p.call(ctx, func() (*github.Response, error) {
		var resp *github.Response
		var err error
		children, resp, err = p.client.Teams.ListChildTeamsByParentSlug(ctx, p.org, slug, &github.ListOptions{PerPage: perPage})
		return resp, err
	})
	if err != nil {
		return p.wrap("read child teams of", role, slug, err)
	}
	if len(children) > 0 {
		var names []string
		for _, c := range children {
			names = append(names, c.GetSlug())
		}
		return fmt.Errorf("provider %s: role %s: team %s/%s has child teams (%s), whose members GitHub lists as its own: they would be revoked as drift",
			p.cfg.Name, role, p.org, slug, strings.Join(names, ", "))
	}
	return nil
}

// Close has nothing to release: the HTTP client belongs to the caller.
func (p *Provider) Close() error { return nil }

// team returns the slug of role's team. Only declared roles are managed.
func (p *Provider) team(role string) (string, error) {
	valid := func(slug string) bool { return slugPattern.MatchString(slug) && len(slug) <= maxNameLen }
	return providers.ValidTarget(p.cfg, role, valid, "a team slug")
}

func (p *Provider) checkLogin(login string) error {
	if !loginPattern.MatchString(login) || len(login) > maxNameLen {
		return fmt.Errorf("provider %s: %q is not a GitHub login: %w", p.cfg.Name, login, providers.ErrInvalidName)
	}
	return nil
}

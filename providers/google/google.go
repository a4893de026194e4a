// Package google grants temporary access in Google: membership of Cloud
// Identity (Google Workspace) groups, and GCP IAM role bindings on a
// project, folder or organisation. Both carry their expiry into Google
// itself (a membership's expireTime, a binding's request.time condition),
// so access ends on time even when gitgrant is down.
//
// One provider entry manages one kind: `kind: groups` (a role's target is
// a group) or `kind: iam` (a role's target is an IAM role on `resource`).
// It speaks the REST APIs with net/http and JSON, authenticated by
// golang.org/x/oauth2/google; the generated google.golang.org/api clients
// would add megabytes of code for five methods.
package google

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"time"

	"golang.org/x/oauth2"
	googleauth "golang.org/x/oauth2/google"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/providers"
	"github.com/gitgrant/gitgrant/providers/internal/httpapi"
)

// Type is the provider type in gitgrant.yaml.
const Type = "google"

// Kinds of access one provider entry manages.
const (
	KindGroups = "groups"
	KindIAM    = "iam"
)

const (
	defaultCloudIdentityURL   = "https://cloudidentity.googleapis.com/"
	defaultResourceManagerURL = "https://cloudresourcemanager.googleapis.com/"
	scopeGroups               = "https://www.googleapis.com/auth/cloud-identity.groups"
	scopeCloudPlatform        = "https://www.googleapis.com/auth/cloud-platform"
	defaultMaxWait            = 5 * time.Minute
	// Default pacing: well under Cloud Identity's and Resource Manager's
	// default per-minute quotas, with room for other callers.
	defaultRequestsPerSecond = 5
	maxNameLen               = 254
)

var (
	// emailPattern accepts the addresses Google accounts, groups and
	// service accounts have; anything else (quotes, spaces, control
	// characters, path tricks) is refused before a request is built.
	emailPattern    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+'-]*@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$`)
	groupIDPattern  = regexp.MustCompile(`^groups/[A-Za-z0-9]+$`)
	iamRolePattern  = regexp.MustCompile(`^(roles/[A-Za-z0-9_.]+|(projects|organizations)/[A-Za-z0-9_.:-]+/roles/[A-Za-z0-9_.]+)$`)
	resourcePattern = regexp.MustCompile(`^(projects/[a-z0-9][a-z0-9.:-]{0,99}|folders/[0-9]{1,30}|organizations/[0-9]{1,30})$`)
)

// Settings are a google provider entry's settings in gitgrant.yaml, as
// google.schema.json beside this file describes them.
type Settings struct {
	Kind              string   `json:"kind"`
	Resource          string   `json:"resource"`
	CredentialsFile   string   `json:"credentials_file"`
	CredentialsEnv    string   `json:"credentials_env"`
	APIURL            string   `json:"api_url"`
	RequestsPerSecond *float64 `json:"requests_per_second"`
	MaxRateLimitWait  string   `json:"max_rate_limit_wait"`
}

// Provider manages the groups or IAM roles of one google provider entry.
type Provider struct {
	cfg   gitgrant.ProviderConfig
	kind  string
	api   *httpapi.Client
	clock gitgrant.Clock
	log   *slog.Logger
	// groups: resolved group resource names by target.
	groups *groupCache
	// iam: the resource whose policy holds the bindings, and a lock that
	// keeps this provider's own read-modify-writes from racing each other.
	resource string
	iamLock  chan struct{}
}

var (
	_ providers.Provider      = (*Provider)(nil)
	_ providers.Checker       = (*Provider)(nil)
	_ providers.NativeExpirer = (*Provider)(nil)
)

// Open opens a google provider. Credentials: a service-account key or a
// workload identity federation configuration (JSON) from credentials_file
// or credentials_env; without either, Application Default Credentials.
var Open = providers.Typed(openWith)

// openWith opens the provider from its decoded settings.
func openWith(ctx context.Context, cfg gitgrant.ProviderConfig, s Settings, deps providers.Deps) (providers.Provider, error) {
	bad := providers.Named(cfg.Name).Errorf
	p := &Provider{cfg: cfg, kind: s.Kind, clock: gitgrant.ClockOr(deps.Clock), log: httpapi.Logger(deps, cfg.Name)}
	var scope, defaultURL string
	switch p.kind {
	case KindGroups:
		scope, defaultURL = scopeGroups, defaultCloudIdentityURL
		p.groups = &groupCache{names: map[string]string{}}
	case KindIAM:
		scope, defaultURL = scopeCloudPlatform, defaultResourceManagerURL
		p.resource = s.Resource
		if !resourcePattern.MatchString(p.resource) {
			return nil, bad("setting resource must be projects/PROJECT_ID, folders/NUMBER or organizations/NUMBER, not %q", p.resource)
		}
		p.iamLock = make(chan struct{}, 1)
	default:
		return nil, bad("setting kind must be %q or %q, not %q", KindGroups, KindIAM, p.kind)
	}
	base, err := httpapi.BaseURL(cmp.Or(s.APIURL, defaultURL))
	if err != nil {
		return nil, bad("setting api_url must be an http(s) URL such as %s", defaultURL)
	}
	maxWait, err := providers.ParseWait(cfg.Name, "max_rate_limit_wait", s.MaxRateLimitWait, defaultMaxWait)
	if err != nil {
		return nil, err
	}
	rps := float64(defaultRequestsPerSecond)
	if s.RequestsPerSecond != nil {
		if rps = *s.RequestsPerSecond; rps < 0 {
			return nil, bad("setting requests_per_second must be a number, at least 0")
		}
	}
	newSource, err := credentials(ctx, cfg.Name, s, deps, scope)
	if err != nil {
		return nil, err
	}
	tokens := httpapi.NewTokenSource(httpapi.TokenConfig{
		Fetch: func(context.Context) (*oauth2.Token, error) {
			// A fresh source for each token: after a refused token, the
			// next comes from Google, not from a cache.
			src, err := newSource()
			if err != nil {
				return nil, &httpapi.TokenError{Transport: err}
			}
			return src.Token()
		},
		// As x/oauth2 does: Google's tokens live an hour.
		Early: 10 * time.Second,
	}, deps)
	p.api = httpapi.New(httpapi.Config{
		API: "Google", System: Type + " " + cfg.Name, Provider: cfg.Name, BaseURL: base, Auth: tokens,
		MaxWait: maxWait, Interval: httpapi.Interval(rps),
		RateLimitRetries: 8, ServerRetries: 3,
		Backoff: httpapi.Backoff{First: 2 * time.Second, Max: 2 * time.Second},
		// Google's status (NOT_FOUND, ALREADY_EXISTS, ...) is the code.
		Problem: httpapi.ErrorEnvelope("status"),
	}, deps)
	return p, nil
}

func (p *Provider) system() string { return Type + " " + p.cfg.Name }

// credentials returns a function that makes a fresh token source from
// the configured credentials. The JSON is read once, here, and kept only
// in memory; neither it nor a token ever reaches an error or a log.
func credentials(ctx context.Context, name string, s Settings, deps providers.Deps, scope string) (func() (oauth2.TokenSource, error), error) {
	// The token requests use deps.HTTPClient (tests, proxies) and must
	// outlive ctx, which only carries that client here.
	httpClient := deps.HTTPClient
	if httpClient == nil {
		httpClient = http.DefaultClient
	}
	tokenCtx := context.WithValue(context.WithoutCancel(ctx), oauth2.HTTPClient, httpClient)
	ref := providers.SecretRef{Name: "credentials", Env: s.CredentialsEnv, File: s.CredentialsFile}
	if !ref.Set() {
		// Application Default Credentials: GOOGLE_APPLICATION_CREDENTIALS,
		// gcloud's file, or the metadata server (GKE workload identity).
		return func() (oauth2.TokenSource, error) {
			creds, err := googleauth.FindDefaultCredentials(tokenCtx, scope)
			if err != nil {
				return nil, fmt.Errorf("application default credentials: %w", err)
			}
			return creds.TokenSource, nil
		}, nil
	}
	raw, err := ref.Read(name, deps)
	if err != nil {
		return nil, err
	}
	// Only the two kinds of configuration this provider documents are
	// accepted: a key of the service account gitgrant acts as, or a
	// workload identity federation configuration (GitHub OIDC, AWS, ...).
	var kind struct {
		Type googleauth.CredentialsType `json:"type"`
	}
	if json.Unmarshal([]byte(raw), &kind) != nil || (kind.Type != googleauth.ServiceAccount && kind.Type != googleauth.ExternalAccount) {
		return nil, fmt.Errorf("provider %s: the credentials JSON must have type %q or %q", name, googleauth.ServiceAccount, googleauth.ExternalAccount)
	}
	parse := func() (oauth2.TokenSource, error) {
		creds, err := googleauth.CredentialsFromJSONWithType(tokenCtx, []byte(raw), kind.Type, scope)
		if err != nil {
			// The parser's errors can quote the input: say only what
			// kind of problem it was.
			return nil, fmt.Errorf("provider %s: the credentials JSON is not a service-account key or an external_account configuration", name)
		}
		return creds.TokenSource, nil
	}
	if _, err := parse(); err != nil {
		return nil, err
	}
	return parse, nil
}

// NativeExpiry reports that Google ends grants at their Until by itself,
// as long as the API has been reachable.
func (p *Provider) NativeExpiry() bool { return p.api.Reachable() }

// Members lists the principals holding role now, with the expiry Google
// enforces for each.
func (p *Provider) Members(ctx context.Context, role string) ([]providers.Member, error) {
	if p.kind == KindGroups {
		return p.groupMembers(ctx, role)
	}
	return p.iamMembers(ctx, role)
}

// Grant gives g.Principal g.Role until g.Until (zero: without expiry).
func (p *Provider) Grant(ctx context.Context, g providers.Grant) error {
	if p.kind == KindGroups {
		return p.groupGrant(ctx, g)
	}
	return p.iamGrant(ctx, g)
}

// Revoke takes role away from principal.
func (p *Provider) Revoke(ctx context.Context, role, principal string) error {
	if p.kind == KindGroups {
		return p.groupRevoke(ctx, role, principal)
	}
	return p.iamRevoke(ctx, role, principal)
}

// Check proves, without changing anything, that the credentials work:
// for groups it reads every managed group; for iam it asks the resource
// which of the two permissions gitgrant needs the caller holds.
func (p *Provider) Check(ctx context.Context) error {
	if p.kind == KindGroups {
		return p.groupCheck(ctx)
	}
	return p.iamCheck(ctx)
}

// Close has nothing to release: the HTTP client belongs to the caller.
func (p *Provider) Close() error { return nil }

// Calls is how many API requests the provider has sent, for figures.
func (p *Provider) Calls() int64 { return p.api.Calls() }

// declared returns role's target, refusing roles gitgrant.yaml does not
// declare.
func (p *Provider) declared(role string) (string, error) {
	return providers.DeclaredTarget(p.cfg, role)
}

func (p *Provider) invalid(what, name string) error {
	return fmt.Errorf("provider %s: %q is not %s: %w", p.cfg.Name, name, what, providers.ErrInvalidName)
}

func validEmail(s string) bool {
	return len(s) <= maxNameLen && emailPattern.MatchString(s)
}

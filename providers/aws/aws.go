// Package aws grants temporary access to AWS accounts through IAM
// Identity Center: an account assignment of a permission set, in one
// account, to a user or group of the Identity Center directory. It uses
// the official SDK (aws-sdk-go-v2 ssoadmin and identitystore) with the
// standard credential chain: environment, shared profile, web identity
// (GitHub OIDC), container and instance roles.
//
// Identity Center has no expiring assignment, so the provider does not
// claim native expiry: gitgrant itself revokes at the end of the window.
package aws

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/identitystore"
	"github.com/aws/aws-sdk-go-v2/service/ssoadmin"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/providers"
	"github.com/gitgrant/gitgrant/providers/internal/httpapi"
)

// Type is the provider type in gitgrant.yaml.
const Type = "aws"

const (
	// defaultMaxWait bounds how long a grant or revoke polls the
	// asynchronous assignment status before giving up (retryable).
	defaultMaxWait = 2 * time.Minute
	// defaultRequestsPerSecond paces calls below Identity Center's
	// per-account API throttling, with room for other callers.
	defaultRequestsPerSecond = 10
	// retryAttempts is how often the SDK tries one call through
	// throttling and 5xx, with its exponential backoff capped at 20s.
	retryAttempts = 8
	listPageSize  = 100
)

// Principal attributes the provider can match a principal by.
const (
	MatchUserName = "user_name"
	MatchEmail    = "email"
)

var (
	instancePattern = regexp.MustCompile(`^arn:aws[a-z-]*:sso:::instance/(sso)?ins-[A-Za-z0-9.-]{16}$`)
	storePattern    = regexp.MustCompile(`^d-[0-9a-f]{10}$|^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	// A role's target: <permission set ARN>@<account id>.
	targetPattern = regexp.MustCompile(`^(arn:aws[a-z-]*:sso:::permissionSet/(?:sso)?ins-[A-Za-z0-9.-]{16}/ps-[A-Za-z0-9.-]{16})@([0-9]{12})$`)
	regionPattern = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]$`)
)

// Settings are an aws provider entry's settings in gitgrant.yaml, as
// aws.schema.json beside this file describes them.
type Settings struct {
	InstanceARN       string   `json:"instance_arn"`
	IdentityStoreID   string   `json:"identity_store_id"`
	Region            string   `json:"region"`
	Profile           string   `json:"profile"`
	MatchBy           string   `json:"match_by"`
	EndpointURL       string   `json:"endpoint_url"`
	RequestsPerSecond *float64 `json:"requests_per_second"`
	MaxAttempts       *int     `json:"max_attempts"`
	MaxWait           string   `json:"max_wait"`
}

// Provider manages the account assignments of one aws provider entry.
type Provider struct {
	cfg      gitgrant.ProviderConfig
	instance string
	store    string
	matchBy  string
	admin    *ssoadmin.Client
	ids      *identitystore.Client
	creds    aws.CredentialsProvider
	maxWait  time.Duration
	logger   *slog.Logger
	clock    gitgrant.Clock
	calls    *callCounter

	mu     sync.Mutex
	byName map[string]principal // principal as written -> resolved
	byID   map[string]string    // principal id -> principal as written
	busy   map[string]chan struct{}
}

type principal struct {
	id, kind string // kind: USER or GROUP
}

var (
	_ providers.Provider = (*Provider)(nil)
	_ providers.Checker  = (*Provider)(nil)
)

// Open opens an aws provider with the SDK's default credential chain.
var Open = providers.Typed(openDefault)

func openDefault(ctx context.Context, cfg gitgrant.ProviderConfig, s Settings, deps providers.Deps) (providers.Provider, error) {
	var opts []func(*config.LoadOptions) error
	if r := s.Region; r != "" {
		if !regionPattern.MatchString(r) {
			return nil, fmt.Errorf("provider %s: setting region must be an AWS region such as eu-west-1, not %q", cfg.Name, r)
		}
		opts = append(opts, config.WithRegion(r))
	}
	if s.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(s.Profile))
	}
	// The SDK's own client honours AWS_CA_BUNDLE and the proxy
	// variables; a plain *http.Client cannot take a CA bundle, so only a
	// client the caller made on purpose replaces it.
	if deps.HTTPClient != nil && deps.HTTPClient != http.DefaultClient {
		opts = append(opts, config.WithHTTPClient(deps.HTTPClient))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		// The loader names files and profiles, never key material.
		return nil, &gitgrant.SystemError{System: "aws " + cfg.Name, Op: "load the AWS configuration", Err: err}
	}
	return openWith(cfg, s, deps, awsCfg)
}

// openWith opens the provider with a loaded AWS configuration; tests
// give it static credentials and the fake's endpoint.
func openWith(cfg gitgrant.ProviderConfig, s Settings, deps providers.Deps, awsCfg aws.Config) (*Provider, error) {
	bad := providers.Named(cfg.Name).Errorf
	matchBy, err := providers.Choice(cfg.Name, "match_by", s.MatchBy, MatchUserName, MatchEmail)
	if err != nil {
		return nil, err
	}
	p := &Provider{
		cfg:      cfg,
		instance: s.InstanceARN,
		store:    s.IdentityStoreID,
		matchBy:  matchBy,
		clock:    gitgrant.ClockOr(deps.Clock),
		calls:    &callCounter{},
		byName:   map[string]principal{},
		byID:     map[string]string{},
		busy:     map[string]chan struct{}{},
		logger:   httpapi.Logger(deps, cfg.Name),
	}
	if !instancePattern.MatchString(p.instance) {
		return nil, bad("setting instance_arn must be an IAM Identity Center instance ARN such as arn:aws:sso:::instance/ssoins-0123456789abcdef, not %q", p.instance)
	}
	if !storePattern.MatchString(p.store) {
		return nil, bad("setting identity_store_id must be an identity store id such as d-0123456789, not %q", p.store)
	}
	if awsCfg.Region == "" {
		return nil, bad("no AWS region: set region, or AWS_REGION in the environment")
	}
	if p.maxWait, err = providers.ParseWait(cfg.Name, "max_wait", s.MaxWait, defaultMaxWait); err != nil || p.maxWait == 0 {
		return nil, bad("setting max_wait must be a positive duration such as 2m, not %q", s.MaxWait)
	}
	rps := float64(defaultRequestsPerSecond)
	if s.RequestsPerSecond != nil {
		if rps = *s.RequestsPerSecond; rps < 0 {
			return nil, bad("setting requests_per_second must be a number, at least 0")
		}
	}
	p.calls.pace = httpapi.NewPacer(httpapi.Interval(rps), deps.Clock)
	attempts := retryAttempts
	if s.MaxAttempts != nil {
		if attempts = *s.MaxAttempts; attempts < 1 || attempts > 20 {
			return nil, bad("setting max_attempts must be a whole number from 1 to 20")
		}
	}

	// Throttling and 5xx are retried by the SDK with capped exponential
	// backoff; its client-side retry quota is off, because the pacer
	// already keeps gitgrant under the limits and a long reconcile must
	// not run out of retries.
	awsCfg.Retryer = func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = attempts
			o.RateLimiter = ratelimit.None
		})
	}
	endpoint := s.EndpointURL
	p.creds = awsCfg.Credentials
	p.admin = ssoadmin.NewFromConfig(awsCfg, func(o *ssoadmin.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
		o.APIOptions = append(o.APIOptions, p.calls.middleware)
	})
	p.ids = identitystore.NewFromConfig(awsCfg, func(o *identitystore.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
		o.APIOptions = append(o.APIOptions, p.calls.middleware)
	})
	return p, nil
}

// Close has nothing to release: the SDK's HTTP client is shared.
func (p *Provider) Close() error { return nil }

// Calls is how many API requests (attempts included) the provider sent.
func (p *Provider) Calls() int64 { return p.calls.n.Load() }

// target returns the permission set ARN and account id of role.
func (p *Provider) target(role string) (string, string, error) {
	t, err := providers.DeclaredTarget(p.cfg, role)
	if err != nil {
		return "", "", err
	}
	m := targetPattern.FindStringSubmatch(t)
	if m == nil {
		return "", "", fmt.Errorf("provider %s: role %s: target %q is not PERMISSION_SET_ARN@ACCOUNT_ID: %w", p.cfg.Name, role, t, providers.ErrInvalidName)
	}
	return m[1], m[2], nil
}

func (p *Provider) system() string { return "aws " + p.cfg.Name }

// Package providers defines how gitgrant talks to target systems: the
// Provider interface every system implements, optional capabilities found
// by type assertion, a registry keyed by provider type, and helpers for
// reading settings and secrets. Each system lives in its own subpackage;
// providers/all wires them into the command's registry, one line each.
//
// # Typed settings
//
// A provider type owns its settings. Its package declares a Settings
// struct with a json tag per key, and beside it <type>.schema.json, the
// JSON Schema gitgrant.yaml is validated against when it is loaded (with
// additionalProperties: false). This package embeds every such schema
// (SettingsSchema), so the schema package and `gitgrant schema provider`
// find a new type's without a list to extend. The type's Factory decodes
// the settings strictly (Decode) before the provider sees them:
//
//	// Open opens a <type> provider.
//	var Open = providers.Typed(openWith)
//
//	func openWith(ctx context.Context, cfg gitgrant.ProviderConfig, s Settings, deps providers.Deps) (providers.Provider, error) {
//
// openWith then judges what the schema cannot (a URL's parts, a duration with
// ParseWait, ...), saying what is wrong with Named(cfg.Name).Errorf. A
// secret is two settings, name_env and name_file, read
// with SecretRef{Name: "name", Env: s.NameEnv, File: s.NameFile}.Read. The
// provider's tests call providertest.SettingsMatchSchema, which keeps the
// struct and the schema naming the same keys.
//
// Adding a provider type touches its own package (code, Settings,
// <type>.schema.json, tests), one line in providers/all, and its page in
// docs/providers/.
package providers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gitgrant/gitgrant"
	"maps"
)

// Grant is one membership to create: principal gets role until Until.
// Role is the gitgrant role name as declared in gitgrant.yaml; the provider
// maps it to its target name (gitgrant.ProviderConfig.RoleTarget).
type Grant struct {
	Role      string
	Principal string
	// Until is when access must end. Providers with native expiry make the
	// target system enforce it; the others ignore it (the reconciler
	// revokes). Zero means no end (standing access; not used for requests).
	Until time.Time
	// Request is the request file that backs the grant, when the caller
	// knows it. Providers that can label what they create (Kubernetes
	// annotations) record it for people looking at the target system;
	// none depends on it.
	Request string
}

// Member is one principal holding a managed role.
type Member struct {
	Principal string
	// Until is the expiry the target system itself enforces, when it has
	// one (native expiry); zero otherwise.
	Until time.Time
}

// SortMembers sorts members by principal, the order Members returns them
// in, and returns them.
func SortMembers(members []Member) []Member {
	slices.SortFunc(members, func(a, b Member) int { return strings.Compare(a.Principal, b.Principal) })
	return members
}

// Provider manages membership of the roles one provider declares.
//
// Grant and Revoke are idempotent: granting a membership that exists (even
// with a different expiry, which is then updated where the system has one)
// and revoking one that does not exist are success. Errors that come from
// the system being unreachable wrap *gitgrant.SystemError; a principal or
// role that does not exist in the target wraps ErrNotFound.
type Provider interface {
	// Members lists the principals that hold role now.
	Members(ctx context.Context, role string) ([]Member, error)
	// Grant gives g.Principal g.Role.
	Grant(ctx context.Context, g Grant) error
	// Revoke takes role away from principal.
	Revoke(ctx context.Context, role, principal string) error
	// Close releases connections.
	Close() error
}

// NativeExpirer is implemented by providers whose target system ends a
// grant at Grant.Until by itself, so access ends even if gitgrant is down
// (brief rule 10).
type NativeExpirer interface {
	NativeExpiry() bool
}

// SessionTerminator is implemented by providers that can end a principal's
// live sessions, so that a revoked role stops working at once rather than
// at the next login. Providers call it from Revoke when configured to.
type SessionTerminator interface {
	TerminateSessions(ctx context.Context, principal string) error
}

// Account is a login created for one request (an ephemeral account).
type Account struct {
	// Name is the login: the role's readable prefix and a random suffix,
	// chosen by gitgrant and recorded in the ledger before it is created.
	Name string
	// Secret is its password. gitgrant encrypts it to the requester and
	// forgets it: it never reaches a log, an error, git or metrics.
	Secret string `json:"-"`
	// Connect says where to use it, without any secret: host, port and
	// database, as a DSN and a client command would need them.
	Connect Connection
}

// Connection is where an ephemeral account connects.
type Connection struct {
	Host     string `json:"host"`
	Port     int    `json:"port,omitempty"`
	Database string `json:"database,omitempty"`
	// Kind is the client family: "postgres" or "mysql".
	Kind string `json:"kind"`
}

// WithAccountHost returns c moved to an account_host setting (host or
// host:port) when one is set: where requesters connect when that is not
// the server gitgrant reaches (a proxy, a public name).
func (c Connection) WithAccountHost(provider, h string) (Connection, error) {
	if h == "" {
		return c, nil
	}
	c.Host, c.Port = h, 0
	if host, port, err := net.SplitHostPort(h); err == nil {
		n, err := strconv.Atoi(port)
		if err != nil || n <= 0 || n > 65535 {
			return c, fmt.Errorf("provider %s: account_host %q: the port is not a number from 1 to 65535", provider, h)
		}
		c.Host, c.Port = host, n
	}
	return c, nil
}

// Ephemeral is implemented by providers that can give a role to a login
// created for one request and drop it afterwards (a role with
// `mode: ephemeral`). Drop and List are idempotent like Grant and Revoke.
type Ephemeral interface {
	// IsEphemeral says whether role is configured with mode: ephemeral.
	IsEphemeral(role string) bool
	// AccountPrefix is the readable prefix of role's accounts; only logins
	// with it are ever listed or dropped.
	AccountPrefix(role string) string
	// CreateAccount creates login name (AccountPrefix plus a suffix) with
	// a strong random password and role granted, expiring by itself at
	// until where the system can (PostgreSQL VALID UNTIL, a MariaDB event),
	// and returns it with its secret. A name that exists is an error.
	CreateAccount(ctx context.Context, role, name string, until time.Time) (Account, error)
	// DropAccount ends the login's sessions and drops it; objects it owns
	// are reassigned, or the login is kept without its access (no login,
	// no role, no sessions) and the error wraps ErrOwnsObjects with what
	// to do. Dropping a login that is gone is success. A name that is not
	// one of role's accounts (gitgrant.CheckAccountName) is ErrInvalidName.
	DropAccount(ctx context.Context, role, name string) error
	// Accounts lists the logins of role: its prefix and a suffix gitgrant
	// could have made, whether they can still log in or not. Members of
	// an ephemeral role leaves them out: they are not memberships.
	Accounts(ctx context.Context, role string) ([]string, error)
}

// Canonicalizer is implemented by providers whose target system has more
// than one spelling of a principal (MySQL: 'alice'@'%' is alice, and host
// names ignore case). CanonicalPrincipal returns the spelling Members
// reports, so that the principal gitgrant.yaml names and the member the
// system lists compare equal; an error means the principal is unusable.
type Canonicalizer interface {
	CanonicalPrincipal(principal string) (string, error)
}

// Checker is implemented by providers that can verify connectivity and
// their own permissions without changing anything.
type Checker interface {
	Check(ctx context.Context) error
}

// ErrNotFound says a principal or role does not exist in the target system.
// Retrying does not help; someone has to create it or fix gitgrant.yaml.
var ErrNotFound = errors.New("not found in the target system")

// ErrInvalidName says a principal or role name cannot be used safely with
// the target system (for example it contains characters the system cannot
// quote). It is never retried.
var ErrInvalidName = errors.New("name cannot be used with this provider")

// Deps is what a provider may take from its surroundings. Tests replace
// each part; nothing is read from globals.
type Deps struct {
	Getenv     func(string) string
	ReadFile   func(string) ([]byte, error)
	HTTPClient *http.Client
	Logger     *slog.Logger
	// Clock is the time every wait and expiry is judged by; nil is the
	// wall clock.
	Clock gitgrant.Clock
}

// Now is the time on the deps' clock.
func (d Deps) Now() time.Time { return gitgrant.ClockOr(d.Clock).Now() }

// Sleep waits dur on the deps' clock, or until ctx ends: the wait every
// provider needs between retries and for rate-limit windows.
func (d Deps) Sleep(ctx context.Context, dur time.Duration) error {
	return gitgrant.Sleep(ctx, d.Clock, dur)
}

// FitsDeadline says whether a wait of d can end before ctx's deadline;
// see gitgrant.FitsDeadline.
func FitsDeadline(ctx context.Context, d time.Duration) bool { return gitgrant.FitsDeadline(ctx, d) }

// DefaultDeps reads the process environment and files, and logs nowhere.
func DefaultDeps() Deps {
	return Deps{
		Getenv:     os.Getenv,
		ReadFile:   os.ReadFile,
		HTTPClient: http.DefaultClient,
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		Clock:      gitgrant.SystemClock,
	}
}

// Factory opens a provider from its configuration. It validates the
// settings the schema cannot (a referenced variable that is unset, a
// template without its placeholder) and may connect lazily.
type Factory func(ctx context.Context, cfg gitgrant.ProviderConfig, deps Deps) (Provider, error)

// Registry maps a provider type (the `type:` of a provider entry) to its
// factory. The command wires the full set; tests build their own.
type Registry map[string]Factory

// Open creates the provider cfg describes.
func (r Registry) Open(ctx context.Context, cfg gitgrant.ProviderConfig, deps Deps) (Provider, error) {
	f, ok := r[cfg.Type]
	if !ok {
		return nil, fmt.Errorf("provider %s: type %q is not available in this build (have: %s)", cfg.Name, cfg.Type, strings.Join(r.Types(), ", "))
	}
	return f(ctx, cfg, deps)
}

// Types lists the registered types, sorted.
func (r Registry) Types() []string {
	out := make([]string, 0, len(r))
	for t := range r {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// Unavailable wraps an error from a system that could not be reached or
// answered with a server-side failure, for the exit code and retries.
func Unavailable(system, op string, err error) error {
	return &gitgrant.SystemError{System: system, Op: op, Err: err, Retryable: true}
}

// FromHTTPStatus classifies an HTTP API's error answer the way the
// reconciler acts on it: 404 is ErrNotFound (the object is missing or the
// credentials cannot see it); 401 and 403 are system errors a retry will
// not fix (a bad credential, a missing permission); 429 and 5xx are
// retryable; anything else is plain. provider and what name the call.
func FromHTTPStatus(system, provider, what string, status int, err error) error {
	switch {
	case status == http.StatusNotFound:
		return fmt.Errorf("provider %s: %s: not found, or the credentials cannot see it: %w", provider, what, ErrNotFound)
	case status == http.StatusUnauthorized, status == http.StatusForbidden:
		return &gitgrant.SystemError{System: system, Op: what, Err: err}
	case status >= 500, status == http.StatusTooManyRequests:
		return Unavailable(system, what, err)
	}
	return fmt.Errorf("provider %s: %s: %w", provider, what, err)
}

// RoleChecks are what a provider's Check does, without changing anything.
type RoleChecks struct {
	// Connect proves that the credentials work at all, for an entry that
	// declares no role yet; nil proves nothing.
	Connect func() error
	// Role checks one declared role.
	Role func(role string) error
	// Last says after which error of Role to stop, since the other roles
	// would say the same: the system is unreachable (Unreachable), or
	// refuses gitgrant altogether (IsSystem). nil never stops.
	Last func(error) bool
}

// CheckRoles checks each role cfg declares, in name order, and joins what
// they report; with no role declared, it connects.
func CheckRoles(cfg gitgrant.ProviderConfig, c RoleChecks) error {
	if len(cfg.Roles) == 0 {
		if c.Connect == nil {
			return nil
		}
		return c.Connect()
	}
	var errs []error
	for _, role := range slices.Sorted(maps.Keys(cfg.Roles)) {
		if err := c.Role(role); err != nil {
			errs = append(errs, err)
			if c.Last != nil && c.Last(err) {
				break
			}
		}
	}
	return errors.Join(errs...)
}

// Unreachable reports whether err says that a system could not be reached
// or failed on its side: a retryable SystemError.
func Unreachable(err error) bool {
	var sys *gitgrant.SystemError
	return errors.As(err, &sys) && sys.Retryable
}

// IsSystem reports whether err is a SystemError: the system is
// unreachable or refuses gitgrant's credentials.
func IsSystem(err error) bool {
	var sys *gitgrant.SystemError
	return errors.As(err, &sys)
}

// SpeltOtherwise is the error of a grant to a principal that the system
// (as people name it: "Okta") knows by another spelling, such as in
// another case: Members would report that spelling, and the grant would
// look like drift to revoke on the next run. identities must use it.
func SpeltOtherwise(provider, role, system, asked, spelt string) error {
	return fmt.Errorf("provider %s: grant %s: %s spells %q as %q; use that spelling in identities: %w", provider, role, system, asked, spelt, ErrInvalidName)
}

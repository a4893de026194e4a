// Package fake is an in-memory provider for tests of the engine: safe for
// concurrent use, with an injectable clock for native expiry, a record of
// every call, and a hook that makes chosen calls fail.
package fake

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/providers"
)

// Op names a provider call, for hooks and the call record.
type Op string

const (
	OpMembers Op = "members"
	OpGrant   Op = "grant"
	OpRevoke  Op = "revoke"
	OpCheck   Op = "check"
	OpSession Op = "terminate-sessions"
)

// Call is one call the provider received.
type Call struct {
	Op        Op
	Role      string
	Principal string
	Until     time.Time
}

// Options configure a Provider.
type Options struct {
	// Name appears in errors; default "fake".
	Name string
	// Roles are the roles it manages. Others are ErrNotFound.
	Roles []string
	// Principals exist in the "target"; granting anyone else is
	// ErrNotFound. Nil means every well-formed name exists.
	Principals []string
	// NativeExpiry makes grants end at their Until by themselves, judged by
	// Now, and makes the provider claim native expiry.
	NativeExpiry bool
	// Clock is the clock for native expiry; default the wall clock.
	Clock gitgrant.Clock
	// Fail, when set, is called before every call; a non-nil result is
	// returned instead of doing the call. Use Down or a SystemError to
	// simulate an outage, or fail only a chosen principal.
	Fail func(Call) error
	// FailContext is Fail with the call's context, for a system that
	// hangs: a hook that waits for ctx.Done and returns ctx.Err() is a
	// call that never answers before its deadline.
	FailContext func(ctx context.Context, c Call) error
	// Ephemeral are the roles granted through accounts made for one
	// request: their members are accounts named "gg_<role>_…", created
	// with a random secret by CreateAccount.
	Ephemeral []string
}

// Provider is the in-memory provider. Its zero value is not usable; call New.
type Provider struct {
	opts       Options
	principals map[string]bool

	mu      sync.Mutex
	members map[string]map[string]time.Time // role -> principal -> until
	calls   []Call
	closed  bool
}

var (
	_ providers.Provider          = (*Provider)(nil)
	_ providers.NativeExpirer     = (*Provider)(nil)
	_ providers.Checker           = (*Provider)(nil)
	_ providers.SessionTerminator = (*Provider)(nil)
	_ providers.Ephemeral         = (*Provider)(nil)
)

// New returns an empty provider managing opts.Roles.
func New(opts Options) *Provider {
	if opts.Name == "" {
		opts.Name = "fake"
	}
	opts.Clock = gitgrant.ClockOr(opts.Clock)
	p := &Provider{opts: opts, members: map[string]map[string]time.Time{}}
	for _, r := range opts.Roles {
		p.members[r] = map[string]time.Time{}
	}
	if opts.Principals != nil {
		p.principals = map[string]bool{}
		for _, pr := range opts.Principals {
			p.principals[pr] = true
		}
	}
	return p
}

// Down returns an error like the one a provider returns when its system
// cannot be reached, for Options.Fail.
func Down(name string) error {
	return providers.Unavailable(name, "connect", errors.New("connection refused (simulated)"))
}

// Set replaces the members of role, for seeding drift in tests. A zero
// until means no native expiry.
func (p *Provider) Set(role string, members map[string]time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := map[string]time.Time{}
	for k, v := range members {
		m[k] = v
	}
	p.members[role] = m
}

// Calls returns the calls received so far, in order.
func (p *Provider) Calls() []Call {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.calls)
}

// validName is the fake's idea of a name any target could store.
func validName(s string) error {
	if s == "" || len(s) > 256 || !utf8.ValidString(s) {
		return fmt.Errorf("%w: %q", providers.ErrInvalidName, s)
	}
	for _, r := range s {
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return fmt.Errorf("%w: %q", providers.ErrInvalidName, s)
		}
	}
	return nil
}

// begin records c and runs the failure hook; it returns the role's
// members with p.mu held, or an error with it released.
func (p *Provider) begin(ctx context.Context, c Call) (map[string]time.Time, error) {
	p.mu.Lock()
	p.calls = append(p.calls, c)
	closed := p.closed
	p.mu.Unlock()
	if closed {
		return nil, errors.New("fake provider is closed")
	}
	if p.opts.Fail != nil {
		if err := p.opts.Fail(c); err != nil {
			return nil, err
		}
	}
	if p.opts.FailContext != nil {
		if err := p.opts.FailContext(ctx, c); err != nil {
			return nil, err
		}
	}
	if c.Op == OpCheck || c.Op == OpSession {
		p.mu.Lock()
		return nil, nil
	}
	if err := validName(c.Role); err != nil {
		return nil, err
	}
	p.mu.Lock()
	m, ok := p.members[c.Role]
	if !ok {
		p.mu.Unlock()
		return nil, fmt.Errorf("provider %s: role %q is not declared: %w", p.opts.Name, c.Role, providers.ErrNotFound)
	}
	p.expire(m)
	return m, nil
}

// expire drops grants whose native expiry has passed.
func (p *Provider) expire(m map[string]time.Time) {
	if !p.opts.NativeExpiry {
		return
	}
	now := p.opts.Clock.Now()
	for pr, until := range m {
		if !until.IsZero() && !now.Before(until) {
			delete(m, pr)
		}
	}
}

// Members lists role's members, sorted.
func (p *Provider) Members(ctx context.Context, role string) ([]providers.Member, error) {
	m, err := p.begin(ctx, Call{Op: OpMembers, Role: role})
	if err != nil {
		return nil, err
	}
	defer p.mu.Unlock()
	out := make([]providers.Member, 0, len(m))
	for pr, until := range m {
		if !p.opts.NativeExpiry {
			until = time.Time{}
		}
		out = append(out, providers.Member{Principal: pr, Until: until})
	}
	return providers.SortMembers(out), nil
}

// Grant adds or updates a membership.
func (p *Provider) Grant(ctx context.Context, g providers.Grant) error {
	if err := validName(g.Principal); err != nil {
		p.record(Call{Op: OpGrant, Role: g.Role, Principal: g.Principal, Until: g.Until})
		return err
	}
	m, err := p.begin(ctx, Call{Op: OpGrant, Role: g.Role, Principal: g.Principal, Until: g.Until})
	if err != nil {
		return err
	}
	defer p.mu.Unlock()
	if p.principals != nil && !p.principals[g.Principal] {
		return fmt.Errorf("provider %s: principal %q: %w", p.opts.Name, g.Principal, providers.ErrNotFound)
	}
	m[g.Principal] = g.Until
	return nil
}

// Revoke removes a membership; one that does not exist is success.
func (p *Provider) Revoke(ctx context.Context, role, principal string) error {
	c := Call{Op: OpRevoke, Role: role, Principal: principal}
	if err := validName(principal); err != nil {
		p.record(c)
		return err
	}
	return p.remove(ctx, c)
}

// remove records c and takes c.Principal out of c.Role's members; one
// that is not there is success.
func (p *Provider) remove(ctx context.Context, c Call) error {
	m, err := p.begin(ctx, c)
	if err != nil {
		return err
	}
	defer p.mu.Unlock()
	delete(m, c.Principal)
	return nil
}

func (p *Provider) record(c Call) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, c)
}

// NativeExpiry reports Options.NativeExpiry.
func (p *Provider) NativeExpiry() bool { return p.opts.NativeExpiry }

// Check succeeds unless the failure hook says otherwise.
func (p *Provider) Check(ctx context.Context) error {
	if _, err := p.begin(ctx, Call{Op: OpCheck}); err != nil {
		return err
	}
	p.mu.Unlock()
	return nil
}

// TerminateSessions only records the call.
func (p *Provider) TerminateSessions(ctx context.Context, principal string) error {
	if _, err := p.begin(ctx, Call{Op: OpSession, Principal: principal}); err != nil {
		return err
	}
	p.mu.Unlock()
	return nil
}

// Close makes every later call fail.
func (p *Provider) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	return nil
}

// Factory opens a fresh fake provider managing cfg's roles, for registries
// built in tests. Every call to it returns a new, empty provider.
func Factory(ctx context.Context, cfg gitgrant.ProviderConfig, deps providers.Deps) (providers.Provider, error) {
	roles := make([]string, 0, len(cfg.Roles))
	for r := range cfg.Roles {
		roles = append(roles, r)
	}
	return New(Options{Name: cfg.Name, Roles: roles}), nil
}

// Ops of the ephemeral calls.
const (
	OpCreate Op = "create"
	OpDrop   Op = "drop"
)

// IsEphemeral implements providers.Ephemeral.
func (p *Provider) IsEphemeral(role string) bool {
	for _, r := range p.opts.Ephemeral {
		if r == role {
			return true
		}
	}
	return false
}

// AccountPrefix implements providers.Ephemeral.
func (p *Provider) AccountPrefix(role string) string { return "gg_" + role + "_" }

// CreateAccount implements providers.Ephemeral: the account is a member
// of role until until, with a random secret.
func (p *Provider) CreateAccount(ctx context.Context, role, name string, until time.Time) (providers.Account, error) {
	if !strings.HasPrefix(name, p.AccountPrefix(role)) {
		return providers.Account{}, fmt.Errorf("%w: %q lacks the prefix %q", providers.ErrInvalidName, name, p.AccountPrefix(role))
	}
	m, err := p.begin(ctx, Call{Op: OpCreate, Role: role, Principal: name, Until: until})
	if err != nil {
		return providers.Account{}, err
	}
	defer p.mu.Unlock()
	if _, exists := m[name]; exists {
		return providers.Account{}, fmt.Errorf("account %s exists", name)
	}
	secret := make([]byte, 24)
	rand.Read(secret)
	m[name] = until
	return providers.Account{Name: name, Secret: hex.EncodeToString(secret), Connect: providers.Connection{Host: p.opts.Name + ".example", Kind: "postgres"}}, nil
}

// DropAccount implements providers.Ephemeral.
func (p *Provider) DropAccount(ctx context.Context, role, name string) error {
	return p.remove(ctx, Call{Op: OpDrop, Role: role, Principal: name})
}

// Accounts implements providers.Ephemeral.
func (p *Provider) Accounts(ctx context.Context, role string) ([]string, error) {
	ms, err := p.Members(ctx, role)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, m := range ms {
		if strings.HasPrefix(m.Principal, p.AccountPrefix(role)) {
			out = append(out, m.Principal)
		}
	}
	return out, nil
}

// Holders lists role's members as the system has them, sorted, without
// recording a call or consulting the failure hooks: what a test sees when
// it looks at the target itself.
func (p *Provider) Holders(role string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := p.members[role]
	p.expire(m)
	out := make([]string, 0, len(m))
	for pr := range m {
		out = append(out, pr)
	}
	slices.Sort(out)
	return out
}

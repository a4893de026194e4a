// Package providertest is the conformance suite every gitgrant provider
// passes. It checks the contract of providers.Provider against the real
// target system: idempotent grants and revokes, listing, native expiry where
// the provider claims it, concurrent use, hostile names, missing principals
// and an unreachable system.
//
// Use it from a provider's tests:
//
//	func TestConformance(t *testing.T) {
//		roles, principals := createTestRolesAndUsers(t) // unique names, dropped in t.Cleanup
//		providertest.Run(t, providertest.Harness{
//			Open:             func(t *testing.T) providers.Provider { return openProvider(t, roles) },
//			Roles:            []string{"reader", "writer"},
//			Principals:       principals,
//			MissingPrincipal: "gitgrant_test_nobody",
//			Down:             func(t *testing.T) (providers.Provider, error) { return openAgainstClosedPort(t) },
//			Secrets:          []string{"the-password-in-the-dsn"},
//		})
//	}
//
// The subtests share the harness's roles and principals, so they run one
// after another; each starts by checking that every role is empty and ends
// by revoking what it granted. Run the suites of different providers in
// parallel instead.
package providertest

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/providers"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// Harness describes the system under test.
type Harness struct {
	// Open returns a provider that manages Roles on the system under test.
	// It is called once or more per subtest; the suite closes what it gets.
	// The provider must be safe for concurrent use: the Concurrent subtest
	// shares one between goroutines, as the reconciler does.
	Open func(t *testing.T) providers.Provider
	// Roles are gitgrant role names the provider manages (declared in its
	// config). Each must exist in the target and have no members when the
	// suite starts. At least one; two or more also check that roles do not
	// leak into each other.
	Roles []string
	// Principals exist in the target and may be granted every role, in the
	// form Members returns them. At least two; the concurrency test uses all
	// of them, so twenty or more exercise it well. Including names that need
	// quoting (quotes, semicolons, spaces, Unicode) proves they are quoted.
	Principals []string
	// MissingPrincipal is a well-formed principal that does not exist in the
	// target: granting it must fail with an error wrapping
	// providers.ErrNotFound. Empty skips that check (for systems that cannot
	// tell).
	MissingPrincipal string
	// HostileNames are tried as principals and roles on top of the built-in
	// list (quotes, semicolons, backslashes, control characters, Unicode,
	// 300+ characters, empty).
	HostileNames []string
	// OpenWithTarget, when set, opens a provider whose role "hostile" maps to
	// target in the system (gitgrant.RoleConfig.Target), to prove that a
	// hostile target from gitgrant.yaml is rejected (an error wrapping
	// providers.ErrInvalidName, from opening or from each call) or quoted
	// safely (ErrNotFound, since no such role exists).
	OpenWithTarget func(t *testing.T, target string) (providers.Provider, error)
	// Down opens a provider pointed at a system that is not reachable, for
	// example a closed port. Opening may fail; either way every error must
	// wrap *gitgrant.SystemError so that the CLI exits 3. Nil skips.
	Down func(t *testing.T) (providers.Provider, error)
	// Secrets must never appear in any error the provider returns (for
	// example the password inside a DSN).
	Secrets []string
	// ExpiryLead is how far in the future the native-expiry test sets
	// Until; default 3s. ExpiryWait bounds how long it then waits for the
	// system to end the grant; default 60s.
	ExpiryLead, ExpiryWait time.Duration
	// UntilPrecision is how far a native expiry reported by Members may be
	// from the Until that was granted; default 1s.
	UntilPrecision time.Duration
	// Concurrency is how many goroutines share one provider in the
	// concurrency test; default 20.
	Concurrency int
}

// builtinHostile are names no provider may turn into a grant of something
// else. Each must be rejected (ErrInvalidName), or quoted safely so that
// it refers to a principal that does not exist (ErrNotFound).
var builtinHostile = []string{
	"",
	"'",
	`"`,
	"`",
	`x'; DROP ROLE postgres; --`,
	`x"; DROP TABLE users; --`,
	"x`; DROP DATABASE mysql; --",
	`' OR '1'='1`,
	`back\slash\`,
	`\'; SELECT 1; --`,
	"new\nline",
	"tab\there",
	"nul\x00byte",
	"$(touch /tmp/gitgrant-pwned)",
	"`touch /tmp/gitgrant-pwned`",
	"a;b|c&d>e",
	"*",
	"%",
	"_",
	"ユーザー",
	"\u202eevil",
	"emoji\U0001F600",
	"\xff\xfe invalid utf-8",
	strings.Repeat("a", 300),
	strings.Repeat("é", 200),
	"user@host",
	"'x'@'%' OR 1=1",
	"cn=admin,dc=example,dc=org",
	"../../etc/passwd",
	"public",
	"PUBLIC",
	"none",
	"CURRENT_USER",
}

// Run runs the conformance suite against h.
func Run(t *testing.T, h Harness) {
	t.Helper()
	h.defaults(t)
	t.Run("GrantListRevokeIdempotent", func(t *testing.T) { testLifecycle(t, h) })
	t.Run("RolesAreSeparate", func(t *testing.T) { testRolesSeparate(t, h) })
	t.Run("UndeclaredRole", func(t *testing.T) { testUndeclaredRole(t, h) })
	t.Run("MissingPrincipal", func(t *testing.T) { testMissingPrincipal(t, h) })
	t.Run("NativeExpiry", func(t *testing.T) { testNativeExpiry(t, h) })
	t.Run("Concurrent", func(t *testing.T) { testConcurrent(t, h) })
	t.Run("HostileNames", func(t *testing.T) { testHostileNames(t, h) })
	t.Run("HostileTargets", func(t *testing.T) { testHostileTargets(t, h) })
	t.Run("Check", func(t *testing.T) { testCheck(t, h) })
	t.Run("SystemDown", func(t *testing.T) { testDown(t, h) })
}

func (h *Harness) defaults(t *testing.T) {
	t.Helper()
	if h.Open == nil || len(h.Roles) == 0 || len(h.Principals) < 2 {
		t.Fatal("providertest: Harness needs Open, at least one role and at least two principals")
	}
	if h.ExpiryLead <= 0 {
		h.ExpiryLead = 3 * time.Second
	}
	if h.ExpiryWait <= 0 {
		h.ExpiryWait = 60 * time.Second
	}
	if h.UntilPrecision <= 0 {
		h.UntilPrecision = time.Second
	}
	if h.Concurrency <= 0 {
		h.Concurrency = 20
	}
}

// open opens a provider, checks that every role starts empty, and on
// cleanup revokes every member it finds so that the next subtest starts
// clean too.
func (h *Harness) open(t *testing.T) providers.Provider {
	t.Helper()
	p := h.Open(t)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for _, role := range h.Roles {
			ms, err := p.Members(ctx, role)
			if err != nil {
				t.Errorf("cleanup: Members(%q): %v", role, err)
			}
			for _, m := range ms {
				if err := p.Revoke(ctx, role, m.Principal); err != nil {
					t.Errorf("cleanup: Revoke(%q, %q): %v", role, m.Principal, err)
				}
			}
		}
		if err := p.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	for _, role := range h.Roles {
		if got := h.members(t, p, role); len(got) != 0 {
			t.Fatalf("role %q must start without members, has %v", role, got)
		}
	}
	return p
}

// members lists principal names of role, sorted, failing the test on error.
func (h *Harness) members(t *testing.T, p providers.Provider, role string) []string {
	t.Helper()
	ms, err := p.Members(t.Context(), role)
	if err != nil {
		t.Fatalf("Members(%q): %v", role, err)
	}
	h.noSecrets(t, err)
	names := make([]string, 0, len(ms))
	for _, m := range ms {
		names = append(names, m.Principal)
	}
	slices.Sort(names)
	return names
}

func (h *Harness) noSecrets(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range h.Secrets {
		if s != "" && strings.Contains(err.Error(), s) {
			t.Errorf("an error contains a secret: %q", err)
		}
	}
}

func sorted(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

// nativeExpiry reports whether p claims that the target ends grants itself.
func nativeExpiry(p providers.Provider) bool {
	ne, ok := p.(providers.NativeExpirer)
	return ok && ne.NativeExpiry()
}

func testLifecycle(t *testing.T, h Harness) {
	p := h.open(t)
	ctx := t.Context()
	role := h.Roles[0]
	a, b := h.Principals[0], h.Principals[1]
	until := time.Now().Add(time.Hour)

	steps := []struct {
		name string
		do   func() error
		want []string
	}{
		{"grant a", func() error { return p.Grant(ctx, providers.Grant{Role: role, Principal: a, Until: until}) }, []string{a}},
		{"grant a again", func() error { return p.Grant(ctx, providers.Grant{Role: role, Principal: a, Until: until}) }, []string{a}},
		{"grant a with a later until", func() error {
			return p.Grant(ctx, providers.Grant{Role: role, Principal: a, Until: until.Add(time.Hour)})
		}, []string{a}},
		{"grant b", func() error { return p.Grant(ctx, providers.Grant{Role: role, Principal: b, Until: until}) }, []string{a, b}},
		{"revoke a", func() error { return p.Revoke(ctx, role, a) }, []string{b}},
		{"revoke a again", func() error { return p.Revoke(ctx, role, a) }, []string{b}},
		{"revoke b", func() error { return p.Revoke(ctx, role, b) }, []string{}},
		{"revoke b again", func() error { return p.Revoke(ctx, role, b) }, []string{}},
		{"standing grant (zero until)", func() error { return p.Grant(ctx, providers.Grant{Role: role, Principal: b}) }, []string{b}},
		{"revoke standing", func() error { return p.Revoke(ctx, role, b) }, []string{}},
	}
	for _, s := range steps {
		err := s.do()
		h.noSecrets(t, err)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if diff := cmp.Diff(sorted(s.want), h.members(t, p, role), cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("after %s, members (-want +got):\n%s", s.name, diff)
		}
	}

	// A provider without native expiry reports no Until; one with it
	// reports the Until it was given.
	if err := p.Grant(ctx, providers.Grant{Role: role, Principal: a, Until: until}); err != nil {
		t.Fatalf("grant: %v", err)
	}
	ms, err := p.Members(ctx, role)
	if err != nil || len(ms) != 1 {
		t.Fatalf("Members = %v, %v; want one member", ms, err)
	}
	if native := nativeExpiry(p); native {
		if d := ms[0].Until.Sub(until).Abs(); d > h.UntilPrecision {
			t.Errorf("native expiry: Members reports Until %v, granted %v", ms[0].Until, until)
		}
	} else if !ms[0].Until.IsZero() {
		t.Errorf("provider does not claim native expiry, yet Members reports Until %v", ms[0].Until)
	}
}

func testRolesSeparate(t *testing.T, h Harness) {
	if len(h.Roles) < 2 {
		t.Skip("the harness declares one role")
	}
	p := h.open(t)
	ctx := t.Context()
	r0, r1 := h.Roles[0], h.Roles[1]
	a, b := h.Principals[0], h.Principals[1]
	for _, g := range []providers.Grant{{Role: r0, Principal: a}, {Role: r1, Principal: b}, {Role: r1, Principal: a}} {
		if err := p.Grant(ctx, g); err != nil {
			t.Fatalf("Grant(%+v): %v", g, err)
		}
	}
	if err := p.Revoke(ctx, r1, a); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	want := map[string][]string{r0: {a}, r1: {b}}
	for role, w := range want {
		if diff := cmp.Diff(sorted(w), h.members(t, p, role)); diff != "" {
			t.Errorf("members of %q (-want +got):\n%s", role, diff)
		}
	}
}

func testUndeclaredRole(t *testing.T, h Harness) {
	p := h.open(t)
	ctx := t.Context()
	const role = "gitgrant-undeclared-role"
	if _, err := p.Members(ctx, role); !errors.Is(err, providers.ErrNotFound) && !errors.Is(err, providers.ErrInvalidName) {
		t.Errorf("Members of an undeclared role: err = %v, want ErrNotFound or ErrInvalidName", err)
	}
	if err := p.Grant(ctx, providers.Grant{Role: role, Principal: h.Principals[0]}); !errors.Is(err, providers.ErrNotFound) && !errors.Is(err, providers.ErrInvalidName) {
		t.Errorf("Grant of an undeclared role: err = %v, want ErrNotFound or ErrInvalidName", err)
	}
}

func testMissingPrincipal(t *testing.T, h Harness) {
	if h.MissingPrincipal == "" {
		t.Skip("the harness sets no MissingPrincipal")
	}
	p := h.open(t)
	ctx := t.Context()
	role := h.Roles[0]
	err := p.Grant(ctx, providers.Grant{Role: role, Principal: h.MissingPrincipal, Until: time.Now().Add(time.Hour)})
	h.noSecrets(t, err)
	if !errors.Is(err, providers.ErrNotFound) {
		t.Errorf("Grant(missing principal %q): err = %v, want one wrapping providers.ErrNotFound", h.MissingPrincipal, err)
	}
	var sys *gitgrant.SystemError
	if errors.As(err, &sys) && sys.Retryable {
		t.Errorf("Grant(missing principal): %v is marked retryable; retrying cannot help", err)
	}
	// Someone who does not exist holds nothing: revoking is a no-op.
	if err := p.Revoke(ctx, role, h.MissingPrincipal); err != nil {
		t.Errorf("Revoke(missing principal): %v, want nil (already gone)", err)
	}
	if got := h.members(t, p, role); len(got) != 0 {
		t.Errorf("members after a failed grant: %v", got)
	}
}

func testNativeExpiry(t *testing.T, h Harness) {
	p := h.open(t)
	if !nativeExpiry(p) {
		t.Skip("the provider does not claim native expiry")
	}
	ctx := t.Context()
	role := h.Roles[0]
	short, long := h.Principals[0], h.Principals[1]
	until := time.Now().Add(h.ExpiryLead)
	// long is first granted with the short expiry, then granted again with
	// a later one: the earlier expiry must no longer apply.
	for _, g := range []providers.Grant{
		{Role: role, Principal: short, Until: until},
		{Role: role, Principal: long, Until: until},
		{Role: role, Principal: long, Until: until.Add(time.Hour)},
	} {
		if err := p.Grant(ctx, g); err != nil {
			t.Fatalf("Grant(%+v): %v", g, err)
		}
	}
	deadline := time.Now().Add(h.ExpiryLead + h.ExpiryWait)
	for {
		got := h.members(t, p, role)
		if !slices.Contains(got, short) {
			if diff := cmp.Diff([]string{long}, got); diff != "" {
				t.Errorf("after native expiry, members (-want +got):\n%s", diff)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the target did not end %q's grant within %v of its Until", short, h.ExpiryWait)
		}
		time.Sleep(250 * time.Millisecond)
	}
	// Give a stale expiry of long's first grant time to fire, then check it
	// did not: the re-grant replaced it.
	time.Sleep(time.Until(until.Add(2 * time.Second)))
	ms, err := p.Members(ctx, role)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 1 || ms[0].Principal != long || ms[0].Until.Sub(until.Add(time.Hour)).Abs() > h.UntilPrecision {
		t.Errorf("members = %+v, want only %q until %v", ms, long, until.Add(time.Hour))
	}
}

func testConcurrent(t *testing.T, h Harness) {
	p := h.open(t)
	ctx := t.Context()
	type pair struct{ role, principal string }
	var pairs []pair
	for _, r := range h.Roles {
		for _, pr := range h.Principals {
			pairs = append(pairs, pair{r, pr})
		}
	}
	// Every operation is issued twice, so that two callers race on the same
	// membership, which idempotency must absorb.
	parallel := func(ops []func() error) []error {
		work := make(chan int)
		errs := make([]error, len(ops))
		var wg sync.WaitGroup
		for range h.Concurrency {
			wg.Go(func() {
				for i := range work {
					errs[i] = ops[i]()
				}
			})
		}
		for i := range ops {
			work <- i
		}
		close(work)
		wg.Wait()
		return errs
	}
	var grants []func() error
	for _, pp := range pairs {
		g := providers.Grant{Role: pp.role, Principal: pp.principal, Until: time.Now().Add(time.Hour)}
		for range 2 {
			grants = append(grants, func() error { return p.Grant(ctx, g) })
		}
	}
	for i, err := range parallel(grants) {
		if err != nil {
			t.Errorf("concurrent grant %+v: %v", pairs[i/2], err)
		}
	}
	for _, r := range h.Roles {
		if diff := cmp.Diff(sorted(h.Principals), h.members(t, p, r)); diff != "" {
			t.Fatalf("after concurrent grants, members of %q (-want +got):\n%s", r, diff)
		}
	}
	// Revoke every other principal while granting the rest again.
	var mixed []func() error
	want := map[string][]string{}
	for _, pp := range pairs {
		if slices.Index(h.Principals, pp.principal)%2 == 0 {
			for range 2 {
				mixed = append(mixed, func() error { return p.Revoke(ctx, pp.role, pp.principal) })
			}
			continue
		}
		want[pp.role] = append(want[pp.role], pp.principal)
		g := providers.Grant{Role: pp.role, Principal: pp.principal, Until: time.Now().Add(2 * time.Hour)}
		mixed = append(mixed, func() error { return p.Grant(ctx, g) })
	}
	for _, err := range parallel(mixed) {
		if err != nil {
			t.Errorf("concurrent revoke/grant: %v", err)
		}
	}
	for _, r := range h.Roles {
		if diff := cmp.Diff(sorted(want[r]), h.members(t, p, r), cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("after concurrent revokes, members of %q (-want +got):\n%s", r, diff)
		}
	}
}

// rejected reports whether err is an acceptable answer to a hostile name.
func rejected(err error) bool {
	return errors.Is(err, providers.ErrInvalidName) || errors.Is(err, providers.ErrNotFound)
}

func testHostileNames(t *testing.T, h Harness) {
	p := h.open(t)
	ctx := t.Context()
	role := h.Roles[0]
	names := append(slices.Clone(builtinHostile), h.HostileNames...)
	for _, name := range names {
		if slices.Contains(h.Principals, name) || slices.Contains(h.Roles, name) {
			continue
		}
		err := p.Grant(ctx, providers.Grant{Role: role, Principal: name, Until: time.Now().Add(time.Hour)})
		h.noSecrets(t, err)
		if !rejected(err) {
			t.Errorf("Grant(principal %q): err = %v, want ErrInvalidName or ErrNotFound", name, err)
		}
		if err := p.Revoke(ctx, role, name); err != nil && !rejected(err) {
			t.Errorf("Revoke(principal %q): err = %v, want nil, ErrInvalidName or ErrNotFound", name, err)
		}
		if _, err := p.Members(ctx, name); !rejected(err) {
			t.Errorf("Members(role %q): err = %v, want ErrInvalidName or ErrNotFound", name, err)
		}
		err = p.Grant(ctx, providers.Grant{Role: name, Principal: h.Principals[0], Until: time.Now().Add(time.Hour)})
		if !rejected(err) {
			t.Errorf("Grant(role %q): err = %v, want ErrInvalidName or ErrNotFound", name, err)
		}
		if err := p.Revoke(ctx, name, h.Principals[0]); !rejected(err) && err != nil {
			t.Errorf("Revoke(role %q): err = %v, want nil, ErrInvalidName or ErrNotFound", name, err)
		}
	}
	// Nothing was granted on the way, and the provider still works.
	for _, r := range h.Roles {
		if got := h.members(t, p, r); len(got) != 0 {
			t.Errorf("members of %q after hostile names: %v", r, got)
		}
	}
	if err := p.Grant(ctx, providers.Grant{Role: role, Principal: h.Principals[0]}); err != nil {
		t.Errorf("Grant after hostile names: %v", err)
	}
	if diff := cmp.Diff([]string{h.Principals[0]}, h.members(t, p, role)); diff != "" {
		t.Errorf("members (-want +got):\n%s", diff)
	}
}

func testHostileTargets(t *testing.T, h Harness) {
	if h.OpenWithTarget == nil {
		t.Skip("the harness sets no OpenWithTarget")
	}
	ctx := t.Context()
	for _, target := range builtinHostile {
		p, err := h.OpenWithTarget(t, target)
		if err != nil {
			if !errors.Is(err, providers.ErrInvalidName) {
				t.Errorf("open with target %q: err = %v, want nil or ErrInvalidName", target, err)
			}
			continue
		}
		if _, err := p.Members(ctx, "hostile"); !rejected(err) {
			t.Errorf("target %q: Members: err = %v, want ErrInvalidName or ErrNotFound", target, err)
		}
		if err := p.Grant(ctx, providers.Grant{Role: "hostile", Principal: h.Principals[0]}); !rejected(err) {
			t.Errorf("target %q: Grant: err = %v, want ErrInvalidName or ErrNotFound", target, err)
		}
		if err := p.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
	// The real roles are untouched.
	p := h.open(t)
	for _, r := range h.Roles {
		if got := h.members(t, p, r); len(got) != 0 {
			t.Errorf("members of %q after hostile targets: %v", r, got)
		}
	}
}

func testCheck(t *testing.T, h Harness) {
	p := h.open(t)
	c, ok := p.(providers.Checker)
	if !ok {
		t.Skip("the provider has no Check")
	}
	if err := c.Check(t.Context()); err != nil {
		t.Errorf("Check: %v", err)
	}
}

func testDown(t *testing.T, h Harness) {
	if h.Down == nil {
		t.Skip("the harness sets no Down")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	isSystem := func(what string, err error) {
		t.Helper()
		h.noSecrets(t, err)
		var sys *gitgrant.SystemError
		if !errors.As(err, &sys) {
			t.Errorf("%s against a down system: err = %v (%T), want one wrapping *gitgrant.SystemError", what, err, err)
		}
	}
	p, err := h.Down(t)
	if err != nil {
		isSystem("open", err)
		return
	}
	defer p.Close()
	calls := []struct {
		name string
		do   func() error
	}{
		{"Members", func() error { _, err := p.Members(ctx, h.Roles[0]); return err }},
		{"Grant", func() error {
			return p.Grant(ctx, providers.Grant{Role: h.Roles[0], Principal: h.Principals[0], Until: time.Now().Add(time.Hour)})
		}},
		{"Revoke", func() error { return p.Revoke(ctx, h.Roles[0], h.Principals[0]) }},
	}
	if c, ok := p.(providers.Checker); ok {
		calls = append(calls, struct {
			name string
			do   func() error
		}{"Check", func() error { return c.Check(ctx) }})
	}
	for _, c := range calls {
		isSystem(c.name, c.do())
	}
	if ne, ok := p.(providers.NativeExpirer); ok && ne.NativeExpiry() {
		t.Errorf("NativeExpiry() = true against a down system; it cannot promise anything")
	}
}

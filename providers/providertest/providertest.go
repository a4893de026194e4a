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
	"slices"
	"strings"
	"testing"
	"time"

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

// CheckMembers checks that p lists want, in that order, as role's
// members, and fails the test when it cannot list them.
func CheckMembers(t testing.TB, p providers.Provider, role string, want []string) {
	t.Helper()
	ms, err := p.Members(t.Context(), role)
	if err != nil {
		t.Fatalf("Members(%s): %v", role, err)
	}
	got := make([]string, 0, len(ms))
	for _, m := range ms {
		got = append(got, m.Principal)
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("Members(%s) (-want +got):\n%s", role, diff)
	}
}

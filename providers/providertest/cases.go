package providertest

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/providers"
)

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

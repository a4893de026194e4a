package fake_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/gitgrant/gitgrant/internal/testing/fakeclock"

	"github.com/google/go-cmp/cmp"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/providers"
	"github.com/gitgrant/gitgrant/providers/fake"
	"github.com/gitgrant/gitgrant/providers/providertest"
)

// principals is n names, the first two hard to quote.
func principals(n int) []string {
	return append([]string{`o'brien "the; quoted"`, "ünïcødé"}, providertest.Numbered("user%02d", n-2)...)
}

func TestConformance(t *testing.T) {
	t.Parallel()
	for _, native := range []bool{false, true} {
		t.Run(fmt.Sprintf("native=%v", native), func(t *testing.T) {
			t.Parallel()
			roles := []string{"reader", "writer"}
			ps := principals(20)
			shared := fake.New(fake.Options{Roles: roles, Principals: ps, NativeExpiry: native})
			providertest.Run(t, providertest.Harness{
				// Every Open sees the same state, as with a real system.
				Open:             func(t *testing.T) providers.Provider { return reopen{shared} },
				Roles:            roles,
				Principals:       ps,
				MissingPrincipal: "nobody",
				Down: func(t *testing.T) (providers.Provider, error) {
					return fake.New(fake.Options{Roles: roles, Fail: func(fake.Call) error { return fake.Down("fake") }}), nil
				},
				ExpiryLead: 500 * time.Millisecond,
			})
		})
	}
}

// reopen shares one fake between Opens; closing it does nothing.
type reopen struct{ *fake.Provider }

func (reopen) Close() error { return nil }

func TestNativeExpiryUsesClock(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	clk := fakeclock.New(now)
	p := fake.New(fake.Options{Roles: []string{"r"}, NativeExpiry: true, Clock: clk})
	ctx := context.Background()
	for _, g := range []providers.Grant{
		{Role: "r", Principal: "a", Until: now.Add(time.Hour)},
		{Role: "r", Principal: "b", Until: now.Add(2 * time.Hour)},
		{Role: "r", Principal: "c"},
	} {
		if err := p.Grant(ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(time.Hour)
	got, err := p.Members(ctx, "r")
	if err != nil {
		t.Fatal(err)
	}
	want := []providers.Member{{Principal: "b", Until: now.Add(2 * time.Hour)}, {Principal: "c"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("members (-want +got):\n%s", diff)
	}
}

func TestFailHookAndCalls(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	p := fake.New(fake.Options{Roles: []string{"r"}, Fail: func(c fake.Call) error {
		if c.Op == fake.OpGrant && c.Principal == "bad" {
			return boom
		}
		return nil
	}})
	ctx := context.Background()
	if err := p.Grant(ctx, providers.Grant{Role: "r", Principal: "bad"}); !errors.Is(err, boom) {
		t.Errorf("Grant(bad) = %v, want boom", err)
	}
	if err := p.Grant(ctx, providers.Grant{Role: "r", Principal: "good"}); err != nil {
		t.Errorf("Grant(good) = %v", err)
	}
	if err := p.Revoke(ctx, "r", "good"); err != nil {
		t.Errorf("Revoke(good) = %v", err)
	}
	want := []fake.Call{
		{Op: fake.OpGrant, Role: "r", Principal: "bad"},
		{Op: fake.OpGrant, Role: "r", Principal: "good"},
		{Op: fake.OpRevoke, Role: "r", Principal: "good"},
	}
	if diff := cmp.Diff(want, p.Calls()); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	var sys *gitgrant.SystemError
	if !errors.As(fake.Down("x"), &sys) {
		t.Errorf("Down() does not wrap *gitgrant.SystemError")
	}
}

func TestSetSeedsDrift(t *testing.T) {
	t.Parallel()
	p := fake.New(fake.Options{Roles: []string{"r"}})
	p.Set("r", map[string]time.Time{"mallory": {}})
	got, err := p.Members(context.Background(), "r")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]providers.Member{{Principal: "mallory"}}, got); diff != "" {
		t.Errorf("members (-want +got):\n%s", diff)
	}
}

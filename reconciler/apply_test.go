package reconciler

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/providers"
	"github.com/gitgrant/gitgrant/providers/fake"
)

func noSleep(calls *atomic.Int32) Retry {
	return Retry{Attempts: 3, Base: time.Millisecond, Sleep: func(ctx context.Context, d time.Duration) error {
		calls.Add(1)
		return ctx.Err()
	}}
}

func observe(t *testing.T, ps map[string]providers.Provider, cfg *gitgrant.Config) Observed {
	t.Helper()
	o := Observed{}
	for _, key := range managedRoles(cfg) {
		ms, err := ps[key.Provider].Members(context.Background(), key.Role)
		if err != nil {
			continue
		}
		o[key] = ms
	}
	return o
}

// Applying a plan, then planning again, converges: the second plan is empty.
func TestApplyConverges(t *testing.T) {
	t.Parallel()
	cfg := loadConfig(t)
	db := fake.New(fake.Options{Name: "db", Roles: []string{"ro", "rw", "audit"}})
	db.Set("rw", map[string]time.Time{"mallory": {}, "app": {}, "alice_db": {}})
	ps := map[string]providers.Provider{"db": db}
	sources := []Source{
		{Request: req("requests/db/alice.yaml", "alice", "rw", 2*time.Hour), Evidence: approved(t0.Add(-3 * time.Hour))},
		{Request: req("requests/db/bob.yaml", "bob", "rw", 2*time.Hour), Evidence: approved(t0.Add(-time.Hour))},
	}
	var logs bytes.Buffer
	a := &Applier{Providers: ps, Logger: slog.New(slog.NewJSONHandler(&logs, nil))}
	plan := Diff(cfg, Evaluate(cfg, sources, t0, Options{}), observe(t, ps, cfg), t0)
	if res := a.Apply(context.Background(), plan); res.Err() != nil {
		t.Fatal(res.Err())
	}
	ms, _ := db.Members(context.Background(), "rw")
	var got []string
	for _, m := range ms {
		got = append(got, m.Principal)
	}
	if diff := cmp.Diff([]string{"app", "bob_db"}, got); diff != "" {
		t.Errorf("rw members after apply (-want +got):\n%s", diff)
	}
	again := Diff(cfg, Evaluate(cfg, sources, t0, Options{}), observe(t, ps, cfg), t0)
	if len(again.Actions) != 0 {
		t.Errorf("second plan not empty: %+v", again.Actions)
	}
	for _, want := range []string{`"op":"revoke"`, `"principal":"mallory"`, `"op":"grant"`, `"principal":"bob_db"`, `"request":"requests/db/bob.yaml"`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, logs.String())
		}
	}
}

// One provider down delays only that provider; its errors are reported,
// the other's actions happen.
func TestApplyIsolatesProviders(t *testing.T) {
	t.Parallel()
	down := fake.New(fake.Options{Name: "down", Roles: []string{"r"}, Fail: func(fake.Call) error { return fake.Down("down") }})
	up := fake.New(fake.Options{Name: "up", Roles: []string{"r"}})
	var sleeps atomic.Int32
	a := &Applier{Providers: map[string]providers.Provider{"down": down, "up": up}, Retry: noSleep(&sleeps)}
	plan := gitgrant.Plan{Actions: []gitgrant.Action{
		{Op: gitgrant.OpGrant, Provider: "down", Role: "r", Principal: "x"},
		{Op: gitgrant.OpGrant, Provider: "up", Role: "r", Principal: "y"},
		{Op: gitgrant.OpRevoke, Provider: "up", Role: "r", Principal: "z"},
	}}
	res := a.Apply(context.Background(), plan)
	var sys *gitgrant.SystemError
	if err := res.Err(); err == nil || !errors.As(err, &sys) || !strings.Contains(err.Error(), "grant down/r x") {
		t.Fatalf("want the down provider's error, got %v", err)
	}
	if res.Outcomes[0].Attempts != 3 || sleeps.Load() != 2 {
		t.Errorf("retryable failure: %d attempts, %d waits; want 3 and 2", res.Outcomes[0].Attempts, sleeps.Load())
	}
	if res.Outcomes[1].Err != nil || res.Outcomes[2].Err != nil {
		t.Errorf("the healthy provider's actions failed: %v, %v", res.Outcomes[1].Err, res.Outcomes[2].Err)
	}
	if ms, _ := up.Members(context.Background(), "r"); len(ms) != 1 || ms[0].Principal != "y" {
		t.Errorf("up members = %+v, want y", ms)
	}
}

func TestApplyDoesNotRetryPermanentErrors(t *testing.T) {
	t.Parallel()
	p := fake.New(fake.Options{Name: "p", Roles: []string{"r"}, Principals: []string{"known"}})
	var sleeps atomic.Int32
	a := &Applier{Providers: map[string]providers.Provider{"p": p}, Retry: noSleep(&sleeps)}
	res := a.Apply(context.Background(), gitgrant.Plan{Actions: []gitgrant.Action{{Op: gitgrant.OpGrant, Provider: "p", Role: "r", Principal: "ghost"}}})
	if !errors.Is(res.Err(), providers.ErrNotFound) || res.Outcomes[0].Attempts != 1 || sleeps.Load() != 0 {
		t.Errorf("err %v after %d attempts; a missing principal is not retried", res.Err(), res.Outcomes[0].Attempts)
	}
}

func TestBrake(t *testing.T) {
	t.Parallel()
	revokes := func(n int, expired bool) []gitgrant.Action {
		var out []gitgrant.Action
		for range n {
			out = append(out, gitgrant.Action{Op: gitgrant.OpRevoke, Expired: expired})
		}
		return out
	}
	cases := []struct {
		name    string
		plan    gitgrant.Plan
		tripped bool
	}{
		{"few drift removals", gitgrant.Plan{ObservedMembers: 100, Actions: revokes(5, false)}, false},
		{"half of all access, not expired", gitgrant.Plan{ObservedMembers: 100, Actions: revokes(50, false)}, true},
		{"half of all access, all expired", gitgrant.Plan{ObservedMembers: 100, Actions: revokes(50, true)}, false},
		{"small setup under the minimum count", gitgrant.Plan{ObservedMembers: 4, Actions: revokes(3, false)}, false},
		{"everything gone at once", gitgrant.Plan{ObservedMembers: 40, Actions: revokes(40, false)}, true},
	}
	for _, tc := range cases {
		err := Brake(tc.plan, 0.25, 3)
		if (err != nil) != tc.tripped || (err != nil && !errors.Is(err, ErrBrake)) {
			t.Errorf("%s: Brake = %v, want tripped %v", tc.name, err, tc.tripped)
		}
	}
}

package reconciler

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

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
	a := &Executor{Providers: ps, Logger: slog.New(slog.NewJSONHandler(&logs, nil))}
	plan := Diff(cfg, Evaluate(cfg, sources, t0, Options{}), observe(t, ps, cfg), nil, t0)
	if res := a.Execute(context.Background(), plan); res.Err() != nil {
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
	again := Diff(cfg, Evaluate(cfg, sources, t0, Options{}), observe(t, ps, cfg), nil, t0)
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
	a := &Executor{Providers: map[string]providers.Provider{"down": down, "up": up}, Retry: noSleep(&sleeps)}
	plan := gitgrant.Plan{Actions: []gitgrant.Action{
		{Op: gitgrant.OpGrant, Provider: "down", Role: "r", Principal: "x"},
		{Op: gitgrant.OpGrant, Provider: "up", Role: "r", Principal: "y"},
		{Op: gitgrant.OpRevoke, Provider: "up", Role: "r", Principal: "z"},
	}}
	res := a.Execute(context.Background(), plan)
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
	a := &Executor{Providers: map[string]providers.Provider{"p": p}, Retry: noSleep(&sleeps)}
	res := a.Execute(context.Background(), gitgrant.Plan{Actions: []gitgrant.Action{{Op: gitgrant.OpGrant, Provider: "p", Role: "r", Principal: "ghost"}}})
	if !errors.Is(res.Err(), providers.ErrNotFound) || res.Outcomes[0].Attempts != 1 || sleeps.Load() != 0 {
		t.Errorf("err %v after %d attempts; a missing principal is not retried", res.Err(), res.Outcomes[0].Attempts)
	}
}

func TestBrake(t *testing.T) {
	t.Parallel()
	revoke := func(role, principal string, cause gitgrant.Cause) gitgrant.Action {
		return gitgrant.Action{Op: gitgrant.OpRevoke, Provider: "db", Role: role, Principal: principal, Cause: cause, Expired: cause == gitgrant.CauseExpired}
	}
	grant := gitgrant.Action{Op: gitgrant.OpGrant, Provider: "db", Role: "rw", Principal: "bob"}
	bogus := []gitgrant.Action{
		revoke("rw", "m1", gitgrant.CauseDrift), revoke("rw", "m2", gitgrant.CauseDrift),
		revoke("rw", "m3", gitgrant.CauseDrift), revoke("rw", "m4", gitgrant.CauseDrift),
	}
	cases := []struct {
		name      string
		plan      gitgrant.Plan
		wantApply []gitgrant.Action
		wantHeld  []gitgrant.Action
		tripped   string // the role the error names
	}{
		{
			// Finding 3: four members added to rw by hand, an expiry on rw
			// and one on ro. The drift is held; both expiries and the
			// grant go out.
			name: "bogus members on one role: drift held, expiries there and elsewhere go ahead",
			plan: gitgrant.Plan{ObservedByRole: map[string]int{"db/rw": 6, "db/ro": 3}, Actions: append(append([]gitgrant.Action{
				revoke("ro", "carol", gitgrant.CauseExpired), revoke("rw", "alice", gitgrant.CauseExpired)}, bogus...), grant)},
			wantApply: []gitgrant.Action{revoke("ro", "carol", gitgrant.CauseExpired), revoke("rw", "alice", gitgrant.CauseExpired), grant},
			wantHeld:  bogus,
			tripped:   "db/rw 4 of 6 members (67%)",
		},
		{
			name: "withdrawn and rejected revocations are never held, however many",
			plan: gitgrant.Plan{ObservedByRole: map[string]int{"db/rw": 4}, Actions: []gitgrant.Action{
				revoke("rw", "a", gitgrant.CauseWithdrawn), revoke("rw", "b", gitgrant.CauseWithdrawn), revoke("rw", "c", gitgrant.CauseRejected), revoke("rw", "d", gitgrant.CauseRejected)}},
			wantApply: []gitgrant.Action{revoke("rw", "a", gitgrant.CauseWithdrawn), revoke("rw", "b", gitgrant.CauseWithdrawn), revoke("rw", "c", gitgrant.CauseRejected), revoke("rw", "d", gitgrant.CauseRejected)},
		},
		{
			name: "policy revocations are measured per role: a big role absorbs what trips a small one",
			plan: gitgrant.Plan{ObservedByRole: map[string]int{"db/rw": 100, "db/ro": 4}, Actions: []gitgrant.Action{
				revoke("ro", "a", gitgrant.CausePolicy), revoke("ro", "b", gitgrant.CausePolicy), revoke("ro", "c", gitgrant.CausePolicy), revoke("ro", "d", gitgrant.CausePolicy),
				revoke("rw", "a", gitgrant.CausePolicy), revoke("rw", "b", gitgrant.CausePolicy), revoke("rw", "c", gitgrant.CausePolicy), revoke("rw", "d", gitgrant.CausePolicy)}},
			wantApply: []gitgrant.Action{revoke("rw", "a", gitgrant.CausePolicy), revoke("rw", "b", gitgrant.CausePolicy), revoke("rw", "c", gitgrant.CausePolicy), revoke("rw", "d", gitgrant.CausePolicy)},
			wantHeld:  []gitgrant.Action{revoke("ro", "a", gitgrant.CausePolicy), revoke("ro", "b", gitgrant.CausePolicy), revoke("ro", "c", gitgrant.CausePolicy), revoke("ro", "d", gitgrant.CausePolicy)},
			tripped:   "db/ro 4 of 4 members (100%)",
		},
		{
			name:      "small setup under the minimum count",
			plan:      gitgrant.Plan{ObservedByRole: map[string]int{"db/rw": 4}, Actions: bogus[:3]},
			wantApply: bogus[:3],
		},
		{
			name:      "a role that could not be listed counts its revocations as all its members",
			plan:      gitgrant.Plan{Actions: bogus},
			wantApply: nil,
			wantHeld:  bogus,
			tripped:   "db/rw 4 of 4 members (100%)",
		},
		{
			name:     "a revocation without a cause that is not an expiry is braked",
			plan:     gitgrant.Plan{ObservedByRole: map[string]int{"db/rw": 4}, Actions: []gitgrant.Action{revoke("rw", "a", ""), revoke("rw", "b", ""), revoke("rw", "c", ""), revoke("rw", "d", "")}},
			wantHeld: []gitgrant.Action{revoke("rw", "a", ""), revoke("rw", "b", ""), revoke("rw", "c", ""), revoke("rw", "d", "")},
			tripped:  "db/rw 4 of 4 members (100%)",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			before := slices.Clone(tc.plan.Actions)
			got, err := Brake(tc.plan, 0.25, 3)
			if diff := cmp.Diff(tc.wantApply, got.Actions, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("applied (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantHeld, got.Held, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("held (-want +got):\n%s", diff)
			}
			switch {
			case tc.tripped == "" && err != nil:
				t.Errorf("Brake = %v, want no error", err)
			case tc.tripped != "" && (!errors.Is(err, ErrBrake) || !strings.Contains(fmt.Sprint(err), tc.tripped)):
				t.Errorf("Brake = %v, want ErrBrake naming %q", err, tc.tripped)
			}
			if diff := cmp.Diff(before, tc.plan.Actions); diff != "" {
				t.Errorf("Brake changed the plan it was given:\n%s", diff)
			}
		})
	}
}

// Finding 5: a provider that never answers fails its own actions when each
// call's deadline passes, retryably; the other provider's actions are done
// and Apply returns. The hook either honours the call's context or ignores
// it (a client without context support): neither holds up the pass.
func TestApplyBoundsEachCall(t *testing.T) {
	t.Parallel()
	for _, honours := range []bool{true, false} {
		t.Run(fmt.Sprintf("honours its context: %v", honours), func(t *testing.T) {
			t.Parallel()
			release := make(chan struct{})
			t.Cleanup(func() { close(release) })
			hang := func(ctx context.Context, c fake.Call) error {
				if !honours {
					<-release
					return nil
				}
				<-ctx.Done()
				return ctx.Err()
			}
			hung := fake.New(fake.Options{Name: "hung", Roles: []string{"r"}, FailContext: hang})
			up := fake.New(fake.Options{Name: "up", Roles: []string{"r"}})
			up.Set("r", map[string]time.Time{"gone": {}})
			var sleeps atomic.Int32
			retry := noSleep(&sleeps)
			retry.Attempts = 2
			a := &Executor{Providers: map[string]providers.Provider{"hung": hung, "up": up}, Retry: retry,
				CallTimeout: func(string) time.Duration { return 20 * time.Millisecond }}
			plan := gitgrant.Plan{Actions: []gitgrant.Action{
				{Op: gitgrant.OpRevoke, Provider: "hung", Role: "r", Principal: "x", Cause: gitgrant.CauseExpired},
				{Op: gitgrant.OpRevoke, Provider: "up", Role: "r", Principal: "gone", Cause: gitgrant.CauseExpired},
				{Op: gitgrant.OpGrant, Provider: "hung", Role: "r", Principal: "y"},
				{Op: gitgrant.OpGrant, Provider: "up", Role: "r", Principal: "new"},
			}}
			done := make(chan Result, 1)
			go func() { done <- a.Execute(context.Background(), plan) }()
			var res Result
			select {
			case res = <-done:
			case <-time.After(time.Minute): // a watchdog, not a measurement
				t.Fatal("Apply did not return: one hung provider held up the pass")
			}
			for _, i := range []int{0, 2} {
				o := res.Outcomes[i]
				if !errors.Is(o.Err, context.DeadlineExceeded) || !retryable(o.Err) || o.Attempts != 2 {
					t.Errorf("%s on the hung provider: err %v after %d attempts; want a retryable deadline error after 2", o.Action.Op, o.Err, o.Attempts)
				}
			}
			for _, i := range []int{1, 3} {
				if err := res.Outcomes[i].Err; err != nil {
					t.Errorf("%s on the healthy provider failed: %v", res.Outcomes[i].Action.Op, err)
				}
			}
			ms, _ := up.Members(context.Background(), "r")
			if diff := cmp.Diff([]providers.Member{{Principal: "new"}}, ms); diff != "" {
				t.Errorf("healthy provider's members (-want +got):\n%s", diff)
			}
		})
	}
}

// A revocation the current configuration cannot reach goes to the
// provider ProviderFor picks (opened from the holding's policy); the
// others to Providers.
func TestApplyProviderFor(t *testing.T) {
	t.Parallel()
	now := fake.New(fake.Options{Name: "db", Roles: []string{"rw"}})
	then := fake.New(fake.Options{Name: "db", Roles: []string{"old"}})
	then.Set("old", map[string]time.Time{"alice": {}})
	old := gitgrant.Holding{MemberKey: gitgrant.MemberKey{Provider: "db", Role: "old", Principal: "alice"}, Target: "old", Policy: "p0"}
	a := &Executor{Providers: map[string]providers.Provider{"db": now}, ProviderFor: func(act gitgrant.Action) providers.Provider {
		if act.Holding != nil && act.Holding.Policy == "p0" {
			return then
		}
		return nil
	}}
	res := a.Execute(context.Background(), gitgrant.Plan{Actions: []gitgrant.Action{
		{Op: gitgrant.OpRevoke, Provider: "db", Role: "old", Principal: "alice", Cause: gitgrant.CausePolicy, Holding: &old},
		{Op: gitgrant.OpGrant, Provider: "db", Role: "rw", Principal: "bob"},
	}})
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	if ms, _ := then.Members(context.Background(), "old"); len(ms) != 0 {
		t.Errorf("old role members = %+v, want none", ms)
	}
	if ms, _ := now.Members(context.Background(), "rw"); len(ms) != 1 || ms[0].Principal != "bob" {
		t.Errorf("rw members = %+v, want bob", ms)
	}
}

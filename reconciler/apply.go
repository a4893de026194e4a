package reconciler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/providers"
)

// Retry says how often and how patiently a failed action is retried. Only
// errors marked retryable (*gitgrant.SystemError with Retryable) are.
type Retry struct {
	Attempts int           // total tries, at least 1
	Base     time.Duration // first wait; doubled each time, with jitter
	Max      time.Duration // cap on one wait
	// Sleep waits d or until ctx ends; nil waits on the applier's clock.
	Sleep func(ctx context.Context, d time.Duration) error
}

// DefaultRetry retries a few times over a few seconds: long enough to ride
// out a restart, short enough that a pass never stalls on one system.
var DefaultRetry = Retry{Attempts: 4, Base: 200 * time.Millisecond, Max: 5 * time.Second}

func (r Retry) wait(ctx context.Context, clock gitgrant.Clock, attempt int) error {
	d := r.Base << (attempt - 1)
	if r.Max > 0 && d > r.Max {
		d = r.Max
	}
	d = d/2 + rand.N(d/2+1) // jitter, so that replicas do not retry in step
	if r.Sleep != nil {
		return r.Sleep(ctx, d)
	}
	return gitgrant.Sleep(ctx, clock, d)
}

// Outcome is what happened to one action.
type Outcome struct {
	Action   gitgrant.Action
	Err      error
	Attempts int
	Took     time.Duration
}

// Result of applying a plan.
type Result struct {
	Outcomes []Outcome
}

// Err joins every failed action's error, nil when all succeeded.
func (r Result) Err() error {
	var errs []error
	for _, o := range r.Outcomes {
		if o.Err != nil {
			errs = append(errs, fmt.Errorf("%s %s/%s %s: %w", o.Action.Op, o.Action.Provider, o.Action.Role, o.Action.Principal, o.Err))
		}
	}
	return errors.Join(errs...)
}

// ErrBrake is returned when a plan would remove an unusual share of access
// that has not expired; a person looks first, then reruns with --force.
var ErrBrake = errors.New("brake: the plan removes an unusual share of access that has not expired")

// Brake checks a plan before anything is applied. maxShare is the largest
// fraction (0..1) of observed members that may be revoked for reasons other
// than expiry in one pass; minCount lets small setups revoke a few without
// tripping it.
func Brake(plan gitgrant.Plan, maxShare float64, minCount int) error {
	n := 0
	for _, a := range plan.Actions {
		if a.Op == gitgrant.OpRevoke && !a.Expired {
			n++
		}
	}
	if n <= minCount || plan.ObservedMembers == 0 {
		return nil
	}
	if share := float64(n) / float64(plan.ObservedMembers); share > maxShare {
		return fmt.Errorf("%w: %d of %d members (%.0f%%, limit %.0f%%); review the plan and rerun with --force if it is right", ErrBrake, n, plan.ObservedMembers, share*100, maxShare*100)
	}
	return nil
}

// Applier carries out plans.
type Applier struct {
	// Providers by provider name (not type).
	Providers map[string]providers.Provider
	Retry     Retry
	Logger    *slog.Logger
	// Clock times actions and retry waits; nil is the wall clock.
	Clock gitgrant.Clock
}

// Apply carries out every action. Each provider's actions run in plan
// order (revocations first), and providers run side by side, so one
// provider's failure or slowness never holds up another's.
func (a *Applier) Apply(ctx context.Context, plan gitgrant.Plan) Result {
	byProvider := map[string][]int{}
	var order []string
	for i, act := range plan.Actions {
		if act.Op == gitgrant.OpReport {
			continue
		}
		if _, ok := byProvider[act.Provider]; !ok {
			order = append(order, act.Provider)
		}
		byProvider[act.Provider] = append(byProvider[act.Provider], i)
	}
	outcomes := make([]Outcome, len(plan.Actions))
	for i, act := range plan.Actions {
		outcomes[i] = Outcome{Action: act}
	}
	var wg sync.WaitGroup
	for _, name := range order {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, ok := a.Providers[name]
			for _, i := range byProvider[name] {
				if !ok {
					outcomes[i].Err = fmt.Errorf("provider %s is not open", name)
					continue
				}
				outcomes[i] = a.do(ctx, p, plan.Actions[i])
			}
		}()
	}
	wg.Wait()
	return Result{Outcomes: outcomes}
}

func (a *Applier) do(ctx context.Context, p providers.Provider, act gitgrant.Action) Outcome {
	retry := a.Retry
	if retry.Attempts < 1 {
		retry = DefaultRetry
	}
	clock := gitgrant.ClockOr(a.Clock)
	start := clock.Now()
	out := Outcome{Action: act}
	for out.Attempts = 1; ; out.Attempts++ {
		switch act.Op {
		case gitgrant.OpGrant:
			out.Err = p.Grant(ctx, providers.Grant{Role: act.Role, Principal: act.Principal, Until: act.Expires})
		case gitgrant.OpRevoke:
			out.Err = p.Revoke(ctx, act.Role, act.Principal)
		}
		if out.Err == nil || !retryable(out.Err) || out.Attempts >= retry.Attempts {
			break
		}
		if err := retry.wait(ctx, clock, out.Attempts); err != nil {
			break
		}
	}
	out.Took = clock.Now().Sub(start)
	a.log(ctx, out)
	return out
}

func retryable(err error) bool {
	var sys *gitgrant.SystemError
	return errors.As(err, &sys) && sys.Retryable
}

func (a *Applier) log(ctx context.Context, o Outcome) {
	if a.Logger == nil {
		return
	}
	attrs := []slog.Attr{
		slog.String("op", string(o.Action.Op)), slog.String("provider", o.Action.Provider),
		slog.String("role", o.Action.Role), slog.String("principal", o.Action.Principal),
		slog.String("request", o.Action.Request), slog.String("reason", o.Action.Reason),
		slog.Int("attempts", o.Attempts), slog.Duration("took", o.Took),
	}
	if o.Err != nil {
		a.Logger.LogAttrs(ctx, slog.LevelError, "action failed", append(attrs, slog.String("error", o.Err.Error()))...)
		return
	}
	a.Logger.LogAttrs(ctx, slog.LevelInfo, "action applied", attrs...)
}

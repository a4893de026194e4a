package reconciler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
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
	// Account is the login an ephemeral grant created, with its secret:
	// the engine hands the secret to the requester and forgets it.
	Account *providers.Account `json:"-"`
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

// ErrBrake is returned when a plan would revoke an unusual share of a
// role's members for drift or a policy change; a person looks first, then
// reruns with --force. Everything else in the plan goes ahead.
var ErrBrake = errors.New("brake: drift and policy revocations held back")

// Brake checks a plan before anything is applied, one role at a time.
// When a role's drift and policy revocations (Cause.Braked) are more than
// minCount and more than maxShare (0..1) of the members observed on it,
// they move from Actions to Held and the error, wrapping ErrBrake, names
// the role. Expired, withdrawn and rejected revocations, grants and
// reports always stay: nothing stops expiry (rule 15). A role that was not
// listed counts its own revocations as all of its members. The plan given
// is not changed.
func Brake(plan gitgrant.Plan, maxShare float64, minCount int) (gitgrant.Plan, error) {
	counts := map[string]int{}
	for _, a := range plan.Actions {
		if braked(a) {
			counts[a.Provider+"/"+a.Role]++
		}
	}
	tripped := map[string]bool{}
	var why []string
	for _, role := range slices.Sorted(maps.Keys(counts)) {
		n := counts[role]
		base := max(plan.ObservedByRole[role], n)
		if share := float64(n) / float64(base); n > minCount && share > maxShare {
			tripped[role] = true
			why = append(why, fmt.Sprintf("%s %d of %d members (%.0f%%)", role, n, base, share*100))
		}
	}
	if len(tripped) == 0 {
		return plan, nil
	}
	out := plan
	out.Actions, out.Held = nil, append([]gitgrant.Action(nil), plan.Held...)
	for _, a := range plan.Actions {
		if braked(a) && tripped[a.Provider+"/"+a.Role] {
			out.Held = append(out.Held, a)
			continue
		}
		out.Actions = append(out.Actions, a)
	}
	return out, fmt.Errorf("%w: %s, over the limit of %.0f%% of a role; the rest of the plan goes ahead; review the held revocations and rerun with --force if they are right",
		ErrBrake, strings.Join(why, ", "), maxShare*100)
}

// braked reports whether the brake may hold a back: a drift or policy
// revocation, or one without a cause that is not an expiry (a plan made
// without causes is not exempt).
func braked(a gitgrant.Action) bool {
	return a.Op == gitgrant.OpRevoke && (a.Cause.Braked() || a.Cause == "" && !a.Expired)
}

// Executor carries out plans: the provider calls, with retries and deadlines. (engine.Apply is the whole pass around it: brake, ledger, cleanup, feedback.)
type Executor struct {
	// Providers by provider name (not type).
	Providers map[string]providers.Provider
	Retry     Retry
	Logger    *slog.Logger
	// Clock times actions and retry waits; nil is the wall clock.
	Clock gitgrant.Clock
	// CallTimeout bounds one Grant or Revoke call (each attempt) to the
	// named provider; nil or zero leaves only ctx. A call that runs out of
	// time fails that action alone, retryably: the provider's other
	// actions are still tried, and other providers are never held up.
	CallTimeout func(provider string) time.Duration
	// ProviderFor, when set, picks the provider for an action before
	// Providers is consulted; nil from it means Providers. The engine uses
	// it for revocations of holdings the current configuration cannot
	// reach (see Reachable): with the provider as configured at the
	// holding's Policy commit.
	ProviderFor func(act gitgrant.Action) providers.Provider
}

// Execute carries out every action. Each provider's actions run in plan
// order (revocations first), and providers run side by side, so one
// provider's failure or slowness never holds up another's.
func (a *Executor) Execute(ctx context.Context, plan gitgrant.Plan) Result {
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
			for _, i := range byProvider[name] {
				p := a.provider(plan.Actions[i])
				if p == nil {
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

func (a *Executor) provider(act gitgrant.Action) providers.Provider {
	if a.ProviderFor != nil {
		if p := a.ProviderFor(act); p != nil {
			return p
		}
	}
	return a.Providers[act.Provider]
}

func (a *Executor) do(ctx context.Context, p providers.Provider, act gitgrant.Action) Outcome {
	retry := a.Retry
	if retry.Attempts < 1 {
		retry = DefaultRetry
	}
	clock := gitgrant.ClockOr(a.Clock)
	start := clock.Now()
	out := Outcome{Action: act}
	if isEphemeral(p, act) && act.Op == gitgrant.OpGrant {
		// A created account's secret exists once: a retry could not tell
		// whether an attempt that timed out created it.
		retry.Attempts = 1
	}
	for out.Attempts = 1; ; out.Attempts++ {
		if err := ctx.Err(); err != nil {
			// The pass was cancelled (a leader that lost its lease, a
			// shutdown): no further call starts.
			out.Err = err
			break
		}
		out.Account, out.Err = a.call(ctx, p, act)
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

// call makes one provider call for act within the provider's call
// timeout. A provider that ignores its context is not waited for past the
// deadline: the call is left to finish on its own (its result is dropped;
// grant and revoke are idempotent, and the next pass sees what happened),
// so one hung system cannot stop a pass (rule 15).
func (a *Executor) call(ctx context.Context, p providers.Provider, act gitgrant.Action) (*providers.Account, error) {
	var limit time.Duration
	if a.CallTimeout != nil {
		limit = a.CallTimeout(act.Provider)
	}
	if limit <= 0 {
		return invoke(ctx, p, act)
	}
	cctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	type answer struct {
		acc *providers.Account
		err error
	}
	done := make(chan answer, 1)
	go func() {
		acc, err := invoke(cctx, p, act)
		done <- answer{acc, err}
	}()
	var ans answer
	select {
	case ans = <-done:
		if ans.err == nil {
			return ans.acc, nil
		}
	case <-cctx.Done():
		select {
		case ans = <-done: // it did stop in time
		default:
			ans.err = cctx.Err()
		}
	}
	if errors.Is(cctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
		return nil, &gitgrant.SystemError{System: "provider " + act.Provider, Op: string(act.Op),
			Err: fmt.Errorf("no answer within %s: %w", limit, context.DeadlineExceeded), Retryable: true}
	}
	return nil, ans.err
}

// isEphemeral: act concerns an account gitgrant creates for one request
// (its role is in ephemeral mode, or its ledger line names an owner).
func isEphemeral(p providers.Provider, act gitgrant.Action) bool {
	if act.Holding != nil && act.Holding.Owner != "" {
		return true
	}
	ep, ok := p.(providers.Ephemeral)
	return ok && ep.IsEphemeral(act.Role)
}

func invoke(ctx context.Context, p providers.Provider, act gitgrant.Action) (*providers.Account, error) {
	if isEphemeral(p, act) {
		ep, ok := p.(providers.Ephemeral)
		if !ok {
			return nil, fmt.Errorf("provider %s cannot manage ephemeral accounts", act.Provider)
		}
		switch act.Op {
		case gitgrant.OpGrant:
			acc, err := ep.CreateAccount(ctx, act.Role, act.Principal, act.Expires)
			if err != nil {
				// Whether or not it was made, no one holds its secret:
				// make sure it does not exist (idempotent).
				ep.DropAccount(context.WithoutCancel(ctx), act.Role, act.Principal)
				return nil, err
			}
			return &acc, nil
		case gitgrant.OpRevoke:
			return nil, ep.DropAccount(ctx, act.Role, act.Principal)
		}
		return nil, nil
	}
	switch act.Op {
	case gitgrant.OpGrant:
		return nil, p.Grant(ctx, providers.Grant{Role: act.Role, Principal: act.Principal, Until: act.Expires, Request: act.Request})
	case gitgrant.OpRevoke:
		return nil, p.Revoke(ctx, act.Role, act.Principal)
	}
	return nil, nil
}

func retryable(err error) bool {
	var sys *gitgrant.SystemError
	return errors.As(err, &sys) && sys.Retryable
}

func (a *Executor) log(ctx context.Context, o Outcome) {
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

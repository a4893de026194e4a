// Package serve owns `gitgrant serve`: a long-running reconciler that runs
// passes one at a time when GitHub says main changed, when the plan's next
// start or expiry is due, and on a periodic resync with jitter; and the
// HTTP side: the webhook receiver, /healthz, /readyz and /metrics.
package serve

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/gitgrant/gitgrant"
)

// PassFunc runs one pass and returns when the next change is due (zero:
// nothing scheduled). It is never called twice at once.
type PassFunc func(ctx context.Context, reason string) (next time.Time, err error)

// Scheduler decides when passes run, in the manner of cert-manager's
// trigger controller: the next pass is due at the earliest of a trigger,
// the plan's next change and the periodic resync. Passes run on the
// scheduler's own goroutine, so they never overlap, and every trigger that
// arrives during a pass is folded into exactly one follow-up pass.
type Scheduler struct {
	Pass  PassFunc
	Clock gitgrant.Clock
	// Resync is the period of full passes for drift; zero disables it.
	Resync time.Duration
	// Jitter spreads resyncs over [Resync*(1-Jitter), Resync*(1+Jitter)],
	// so that replicas and restarts do not line up; default 0.1.
	Jitter float64
	// RetryAfter is how soon a failed pass is retried (capped by the next
	// change and the resync); default 30s.
	RetryAfter time.Duration
	// Rand returns a float in [0,1); default math/rand/v2.
	Rand   func() float64
	Logger *slog.Logger
	// Fast, when set, is offered the plan's next change before a full
	// pass: when it handles it (only ends of windows were due) it returns
	// the next change and no full pass runs; the resync period goes on.
	// It is never called at once with Pass.
	Fast func(ctx context.Context) (next time.Time, handled bool)

	triggers chan string
}

// NewScheduler returns a scheduler ready for Trigger and Run.
func NewScheduler(pass PassFunc, clock gitgrant.Clock, resync time.Duration, logger *slog.Logger) *Scheduler {
	if clock == nil {
		clock = gitgrant.SystemClock
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Scheduler{Pass: pass, Clock: clock, Resync: resync, Jitter: 0.1, RetryAfter: 30 * time.Second, Logger: logger, triggers: make(chan string, 1)}
}

// Trigger asks for a pass as soon as the running one (if any) ends. It
// never blocks: a trigger already waiting absorbs this one.
func (s *Scheduler) Trigger(reason string) {
	select {
	case s.triggers <- reason:
	default:
	}
}

// Delay is how long to wait until at, never negative: a time in the past is
// due now.
func Delay(now, at time.Time) time.Duration {
	if d := at.Sub(now); d > 0 {
		return d
	}
	return 0
}

// ResyncDelay is the jittered resync period for a random draw r in [0,1).
func ResyncDelay(period time.Duration, jitter, r float64) time.Duration {
	if jitter <= 0 {
		return period
	}
	jitter = min(jitter, 1)
	return time.Duration(float64(period) * (1 - jitter + 2*jitter*r))
}

func (s *Scheduler) rand() float64 {
	if s.Rand != nil {
		return s.Rand()
	}
	return rand.Float64()
}

// Run runs a first pass at once, then passes as they fall due, until ctx
// ends. Passes get passCtx, which outlives ctx so that a pass running at
// shutdown can finish (Server.Run bounds it); Run returns after that pass.
func (s *Scheduler) Run(ctx context.Context, passCtx context.Context) {
	var nextTimer, resyncTimer gitgrant.Timer
	stop := func(t gitgrant.Timer) {
		if t != nil {
			t.Stop()
		}
	}
	defer func() { stop(nextTimer); stop(resyncTimer) }()
	armResync := func() {
		stop(resyncTimer)
		resyncTimer = nil
		if s.Resync > 0 {
			resyncTimer = s.Clock.NewTimer(ResyncDelay(s.Resync, s.Jitter, s.rand()))
		}
	}
	chanOf := func(t gitgrant.Timer) <-chan time.Time {
		if t == nil {
			return nil // blocks forever in select
		}
		return t.C()
	}
	reason := "start"
	for {
		next, full, err := s.step(passCtx, reason)
		now := s.Clock.Now()
		if err != nil {
			retry := now.Add(s.RetryAfter)
			if next.IsZero() || retry.Before(next) {
				next = retry
			}
		}
		stop(nextTimer)
		nextTimer = nil
		if !next.IsZero() {
			d := Delay(now, next)
			nextTimer = s.Clock.NewTimer(d)
			s.Logger.Debug("next pass scheduled", "at", next, "in", d)
		}
		if full || resyncTimer == nil {
			armResync() // a full pass: the drift period restarts
		}
		select {
		case <-ctx.Done():
			return
		default:
		}
		select {
		case <-ctx.Done():
			return
		case reason = <-s.triggers:
		case <-chanOf(nextTimer):
			nextTimer, reason = nil, "next-change"
		case <-chanOf(resyncTimer):
			resyncTimer, reason = nil, "resync"
		}
		if ctx.Err() != nil {
			return // select picks at random among ready cases: shutdown wins
		}
	}
}

// step runs what is due: for the plan's next change, the fast path when it
// handles it, else a full pass (full reports which ran).
func (s *Scheduler) step(ctx context.Context, reason string) (next time.Time, full bool, err error) {
	if reason == "next-change" && s.Fast != nil {
		if next, ok := s.Fast(ctx); ok {
			return next, false, nil
		}
	}
	next, err = s.Pass(ctx, reason)
	return next, true, err
}

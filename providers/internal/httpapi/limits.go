package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gitgrant/gitgrant"
)

// RateLimited is a rate limit that was not waited out: longer than the
// provider may wait, past the caller's deadline, or met too often in one
// call. The reconciler retries after Until.
type RateLimited struct {
	API   string
	Until time.Time
	Err   error
}

func (e *RateLimited) Error() string {
	return fmt.Sprintf("rate limited by %s until %s: %v", e.API, e.Until.UTC().Format(time.RFC3339), e.Err)
}

func (e *RateLimited) Unwrap() error { return e.Err }

// errSpent is the cause of a wait that no answer of this call asked for.
var errSpent = errors.New("an earlier answer asked to wait")

// Limiter holds the pauses an API asked for, one per rate-limit window
// ("bucket"; APIs with one window use ""), and waits them out: every call
// of the provider to a paused window waits, since sending more only draws
// refusals or extends the penalty.
type Limiter struct {
	api     string
	maxWait time.Duration
	clock   gitgrant.Clock
	log     *slog.Logger

	mu    sync.Mutex
	until map[string]time.Time

	waits  atomic.Int64
	waited atomic.Int64 // nanoseconds
}

// NewLimiter makes a Limiter for api that waits at most maxWait at a time,
// on clock (nil: the wall clock).
func NewLimiter(api string, maxWait time.Duration, clock gitgrant.Clock, log *slog.Logger) *Limiter {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Limiter{api: api, maxWait: maxWait, clock: gitgrant.ClockOr(clock), log: log, until: map[string]time.Time{}}
}

// PauseUntil holds back the bucket's calls until t (or later, when an
// earlier answer asked for longer).
func (l *Limiter) PauseUntil(bucket string, t time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if t.After(l.until[bucket]) {
		l.until[bucket] = t
	}
}

// Wait waits until the bucket's pause ends. A wait longer than the
// limiter's maximum, or than the time left before ctx's deadline, is not
// started: Wait returns a *RateLimited wrapping cause at once.
func (l *Limiter) Wait(ctx context.Context, bucket string, cause error) error {
	l.mu.Lock()
	until, now := l.until[bucket], l.clock.Now()
	if !until.IsZero() && !until.After(now) {
		delete(l.until, bucket)
	}
	l.mu.Unlock()
	if !until.After(now) {
		return nil
	}
	if cause == nil {
		cause = errSpent
	}
	wait := until.Sub(now)
	if wait > l.maxWait || !gitgrant.FitsDeadline(ctx, wait) {
		return &RateLimited{API: l.api, Until: until, Err: cause}
	}
	l.log.InfoContext(ctx, "rate limited; waiting", "api", l.api, "bucket", bucket, "until", until.UTC().Format(time.RFC3339), "wait", wait.String())
	l.waits.Add(1)
	l.waited.Add(int64(wait))
	return gitgrant.Sleep(ctx, l.clock, wait)
}

// Refuse is the error of a call that met its API's limit more often than
// it may wait: retry after the bucket's pause.
func (l *Limiter) Refuse(bucket string, cause error) error {
	l.mu.Lock()
	until := l.until[bucket]
	l.mu.Unlock()
	if until.IsZero() {
		until = l.clock.Now()
	}
	return &RateLimited{API: l.api, Until: until, Err: cause}
}

// Waited is how many pauses were waited out, and how long they took.
func (l *Limiter) Waited() (int64, time.Duration) {
	return l.waits.Load(), time.Duration(l.waited.Load())
}

// Spent says whether an answer reports its rate-limit window used up (an
// X-Rate-Limit-Remaining or X-RateLimit-Remaining of 0).
func Spent(h http.Header) bool {
	for _, k := range []string{"X-Rate-Limit-Remaining", "X-RateLimit-Remaining"} {
		if n, err := strconv.Atoi(h.Get(k)); err == nil && n <= 0 {
			return true
		}
	}
	return false
}

// Delay reads how long an answer asks its client to stay away:
// Retry-After in seconds or as an HTTP date, else the reset of its
// rate-limit window (X-Rate-Limit-Reset or X-RateLimit-Reset, UTC epoch
// seconds). Instants are measured from the answer's Date, the server's own
// clock, so that the skew of ours does not matter (now stands in without a
// Date); a window's reset gets a second more, since both have a resolution
// of a second. Every delay is at least a second. ok is false when the
// headers do not say.
func Delay(h http.Header, now time.Time) (d time.Duration, ok bool) {
	serverNow := now
	if date, err := http.ParseTime(h.Get("Date")); err == nil {
		serverNow = date
	}
	if v := h.Get("Retry-After"); v != "" {
		if s, err := strconv.Atoi(v); err == nil && s >= 0 {
			return max(time.Duration(s)*time.Second, time.Second), true
		}
		if t, err := http.ParseTime(v); err == nil {
			return max(t.Sub(serverNow), time.Second), true
		}
	}
	for _, k := range []string{"X-Rate-Limit-Reset", "X-RateLimit-Reset"} {
		if s, err := strconv.ParseInt(h.Get(k), 10, 64); err == nil {
			return max(time.Unix(s, 0).Sub(serverNow), 0) + time.Second, true
		}
	}
	return 0, false
}

// Backoff is a series of pauses: First, doubled each time, at most Max.
type Backoff struct {
	First, Max time.Duration
}

// Nth is the n-th pause (n from 1).
func (b Backoff) Nth(n int) time.Duration {
	d := b.First
	for i := 1; i < n && (b.Max == 0 || d < b.Max); i++ {
		d *= 2
	}
	if b.Max > 0 {
		d = min(d, b.Max)
	}
	return d
}

// Settle waits for a change to show in an API's reads, which may lag its
// writes (eventual consistency). It asks visible until it says yes,
// pausing between asks as b says, for at most total in all; the time
// visible itself takes (a slow answer, a rate-limit wait) does not count.
// It reports false when total ran out first.
func Settle(ctx context.Context, clock gitgrant.Clock, b Backoff, total time.Duration, visible func() (bool, error)) (bool, error) {
	var paused time.Duration
	for n := 1; ; n++ {
		ok, err := visible()
		if ok || err != nil {
			return ok, err
		}
		wait := b.Nth(n)
		if paused+wait > total {
			return false, nil
		}
		if err := gitgrant.Sleep(ctx, clock, wait); err != nil {
			return false, err
		}
		paused += wait
	}
}

// Pacer spaces requests at least one interval apart, so that a provider
// stays under an API's quota instead of drawing refusals.
type Pacer struct {
	interval time.Duration
	clock    gitgrant.Clock
	mu       sync.Mutex
	next     time.Time
}

// NewPacer makes a Pacer; an interval of zero does not pace.
func NewPacer(interval time.Duration, clock gitgrant.Clock) *Pacer {
	return &Pacer{interval: interval, clock: gitgrant.ClockOr(clock)}
}

// Interval is the spacing of requests at perSecond a second; zero for no
// pacing.
func Interval(perSecond float64) time.Duration {
	if perSecond <= 0 {
		return 0
	}
	return time.Duration(float64(time.Second) / perSecond)
}

// Wait waits for the request's turn.
func (p *Pacer) Wait(ctx context.Context) error {
	if p.interval <= 0 {
		return nil
	}
	p.mu.Lock()
	now := p.clock.Now()
	at := now
	if p.next.After(now) {
		at = p.next
	}
	p.next = at.Add(p.interval)
	p.mu.Unlock()
	return gitgrant.Sleep(ctx, p.clock, at.Sub(now))
}

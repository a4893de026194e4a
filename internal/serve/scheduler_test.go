package serve

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gitgrant/gitgrant/internal/testing/fakeclock"

	"github.com/google/go-cmp/cmp"
)

func TestDelayNeverNegative(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		at   time.Time
		want time.Duration
	}{
		{"future", t0.Add(90 * time.Second), 90 * time.Second},
		{"now", t0, 0},
		{"past", t0.Add(-time.Hour), 0},
	} {
		if got := Delay(t0, tc.at); got != tc.want {
			t.Errorf("%s: Delay = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestResyncDelayWithinJitter(t *testing.T) {
	t.Parallel()
	period := 10 * time.Minute
	for _, tc := range []struct {
		jitter, r float64
		want      time.Duration
	}{
		{0.1, 0, 9 * time.Minute},
		{0.1, 0.5, 10 * time.Minute},
		{0.1, 0.999999, 11 * time.Minute},
		{0, 0.7, 10 * time.Minute},
		{5, 0, 0}, // jitter is capped at 100%
	} {
		got := ResyncDelay(period, tc.jitter, tc.r)
		if d := got - tc.want; d < -time.Second || d > time.Second {
			t.Errorf("ResyncDelay(%v, %v, %v) = %v, want about %v", period, tc.jitter, tc.r, got, tc.want)
		}
	}
}

// The scheduler arms the resync with jitter after every pass, always
// within [0.9, 1.1] of the period, using its random source.
func TestSchedulerResyncJitterBounds(t *testing.T) {
	t.Parallel()
	clk := fakeclock.New(t0)
	var passes atomic.Int32
	s := NewScheduler(func(ctx context.Context, reason string) (time.Time, error) {
		passes.Add(1)
		return time.Time{}, nil
	}, clk, time.Hour, nil)
	draws := []float64{0, 0.25, 0.5, 0.75, 0.9999}
	var i atomic.Int32
	s.Rand = func() float64 { return draws[int(i.Add(1)-1)%len(draws)] }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx, ctx); close(done) }()
	for n := int32(1); n <= int32(len(draws)); n++ {
		eventually(t, "a resync timer", func() bool { return len(clk.Delays()) == int(n) })
		clk.Advance(2 * time.Hour)
		eventually(t, "the resync pass", func() bool { return passes.Load() == n+1 })
	}
	cancel()
	<-done
	for _, d := range clk.Delays() {
		if d < 54*time.Minute || d > 66*time.Minute {
			t.Errorf("resync delay %v outside [54m, 66m]", d)
		}
	}
}

// 20 triggers during a pass make exactly one follow-up pass, and passes
// never overlap.
func TestSchedulerSingleFlight(t *testing.T) {
	t.Parallel()
	clk := fakeclock.New(t0)
	release := make(chan struct{})
	started := make(chan string, 10)
	var running, overlap, passes atomic.Int32
	s := NewScheduler(func(ctx context.Context, reason string) (time.Time, error) {
		if running.Add(1) > 1 {
			overlap.Add(1)
		}
		defer running.Add(-1)
		passes.Add(1)
		started <- reason
		<-release
		return time.Time{}, nil
	}, clk, 0, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx, ctx); close(done) }()

	if got := <-started; got != "start" {
		t.Fatalf("first pass reason %q", got)
	}
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() { s.Trigger("webhook") })
	}
	wg.Wait()
	release <- struct{}{} // end the first pass
	if got := <-started; got != "webhook" {
		t.Fatalf("follow-up pass reason %q", got)
	}
	if n := len(s.triggers); n != 0 {
		t.Errorf("%d trigger(s) still waiting after the follow-up started: they were not coalesced", n)
	}
	cancel()
	release <- struct{}{}
	<-done
	if got := passes.Load(); got != 2 {
		t.Errorf("passes = %d, want 2 (the first and one follow-up)", got)
	}
	if overlap.Load() != 0 {
		t.Errorf("passes overlapped")
	}
}

// A next change in the past is due at once (a zero delay, never negative);
// a failed pass is retried after RetryAfter when nothing comes sooner.
func TestSchedulerTimer(t *testing.T) {
	t.Parallel()
	clk := fakeclock.New(t0)
	var reasons []string
	var mu sync.Mutex
	results := []struct {
		next time.Time
		err  error
	}{
		{t0.Add(-time.Hour), nil},         // overdue: run again at once
		{t0.Add(5 * time.Second), nil},    // in 5s
		{time.Time{}, errors.New("down")}, // retry in RetryAfter
		{time.Time{}, nil},
	}
	s := NewScheduler(func(ctx context.Context, reason string) (time.Time, error) {
		mu.Lock()
		defer mu.Unlock()
		r := results[min(len(reasons), len(results)-1)]
		reasons = append(reasons, reason)
		return r.next, r.err
	}, clk, 0, nil)
	s.RetryAfter = 30 * time.Second
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(reasons) }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx, ctx); close(done) }()
	eventually(t, "the overdue pass", func() bool { return count() == 2 })
	eventually(t, "the 5s timer", func() bool { return len(clk.Delays()) == 2 })
	clk.Advance(5 * time.Second)
	eventually(t, "the pass at the next change", func() bool { return count() == 3 })
	eventually(t, "the retry timer", func() bool { return len(clk.Delays()) == 3 })
	clk.Advance(30 * time.Second)
	eventually(t, "the retry", func() bool { return count() == 4 })
	cancel()
	<-done
	if diff := cmp.Diff([]time.Duration{0, 5 * time.Second, 30 * time.Second}, clk.Delays()); diff != "" {
		t.Errorf("timer delays (-want +got):\n%s", diff)
	}
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff([]string{"start", "next-change", "next-change", "next-change"}, reasons); diff != "" {
		t.Errorf("pass reasons (-want +got):\n%s", diff)
	}
}

// A due change the fast path handles runs no pass and leaves the resync
// timer as it was; one it declines runs a full pass, which re-arms it.
func TestSchedulerFastPath(t *testing.T) {
	t.Parallel()
	clk := fakeclock.New(t0)
	var mu sync.Mutex
	var reasons []string
	s := NewScheduler(func(ctx context.Context, reason string) (time.Time, error) {
		mu.Lock()
		defer mu.Unlock()
		reasons = append(reasons, reason)
		return clk.Now().Add(time.Minute), nil
	}, clk, time.Hour, nil)
	s.Jitter = 0
	var fast atomic.Int32
	var decline atomic.Bool
	s.Fast = func(context.Context) (time.Time, bool) {
		fast.Add(1)
		if decline.Load() {
			return time.Time{}, false
		}
		return clk.Now().Add(time.Minute), true
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx, ctx); close(done) }()
	eventually(t, "the first pass's timers", func() bool { return len(clk.Delays()) == 2 })
	clk.Advance(time.Minute)
	eventually(t, "the fast step's timer", func() bool { return len(clk.Delays()) == 3 })
	decline.Store(true)
	clk.Advance(time.Minute)
	eventually(t, "the full pass's timers", func() bool { return len(clk.Delays()) == 5 })
	cancel()
	<-done
	if diff := cmp.Diff([]time.Duration{time.Minute, time.Hour, time.Minute, time.Minute, time.Hour}, clk.Delays()); diff != "" {
		t.Errorf("timers (-want +got):\n%s", diff)
	}
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff([]string{"start", "next-change"}, reasons); diff != "" {
		t.Errorf("passes (-want +got):\n%s", diff)
	}
	if n := fast.Load(); n != 2 {
		t.Errorf("%d fast steps offered, want 2", n)
	}
}

package gitgrant_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/testing/fakeclock"
)

func TestSleep(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

	t.Run("a cancelled context wins over a due timer", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		clk := fakeclock.NewAuto(t0)
		if err := gitgrant.Sleep(ctx, clk, time.Hour); !errors.Is(err, context.Canceled) {
			t.Errorf("Sleep on a cancelled context = %v, want context.Canceled", err)
		}
		if got := clk.Now(); !got.Equal(t0) {
			t.Errorf("a sleep that never started moved the clock to %v", got)
		}
	})

	t.Run("waits on the clock, not the wall", func(t *testing.T) {
		t.Parallel()
		clk := fakeclock.New(t0)
		done := make(chan error, 1)
		changed := clk.Changed()
		go func() { done <- gitgrant.Sleep(t.Context(), clk, 90*time.Minute) }()
		<-changed // the timer exists
		clk.Advance(89 * time.Minute)
		select {
		case err := <-done:
			t.Fatalf("Sleep returned %v before its time on the clock", err)
		default:
		}
		clk.Advance(time.Minute)
		if err := <-done; err != nil {
			t.Errorf("Sleep = %v", err)
		}
	})

	t.Run("the system clock", func(t *testing.T) {
		t.Parallel()
		if err := gitgrant.Sleep(t.Context(), nil, time.Millisecond); err != nil {
			t.Errorf("Sleep = %v", err)
		}
	})
}

// TestFitsDeadline compares a wait with a real deadline whatever the
// injected clock says: a clock years behind or ahead of the wall clock
// changes nothing.
func TestFitsDeadline(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	for _, tc := range []struct {
		wait time.Duration
		want bool
	}{
		{time.Second, true},
		{30 * time.Second, true},
		{2 * time.Minute, false},
		{24 * time.Hour, false},
	} {
		if got := gitgrant.FitsDeadline(ctx, tc.wait); got != tc.want {
			t.Errorf("FitsDeadline(1m context, %v) = %v, want %v", tc.wait, got, tc.want)
		}
	}
	if !gitgrant.FitsDeadline(t.Context(), 1000*time.Hour) {
		t.Error("a context without a deadline fits any wait")
	}
}

package gitgrant

import (
	"context"
	"time"
)

// Clock is gitgrant's one source of time. Everything that reads the time
// or waits takes a Clock, so that tests move time by hand and nothing
// depends on today's date.
//
// A wait is a duration on the clock. A context's deadline is real time, so
// it is compared with a wait as time.Until(deadline), never with an instant
// on the clock (see FitsDeadline): an injected clock may be years away from
// the wall clock.
type Clock interface {
	Now() time.Time
	// NewTimer fires once, d from Now on this clock.
	NewTimer(d time.Duration) Timer
}

// Timer is the part of *time.Timer gitgrant uses.
type Timer interface {
	C() <-chan time.Time
	Stop() bool
}

// SystemClock is the wall clock.
var SystemClock Clock = systemClock{}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) NewTimer(d time.Duration) Timer { return systemTimer{time.NewTimer(d)} }

type systemTimer struct{ t *time.Timer }

func (s systemTimer) C() <-chan time.Time { return s.t.C }
func (s systemTimer) Stop() bool          { return s.t.Stop() }

// ClockOr returns c, or the wall clock when c is nil, for structs whose
// zero value should work.
func ClockOr(c Clock) Clock {
	if c == nil {
		return SystemClock
	}
	return c
}

// Sleep waits d on c, or until ctx ends (then it returns ctx's error). A
// context that has already ended wins over a timer that is already due.
func Sleep(ctx context.Context, c Clock, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d <= 0 {
		return nil
	}
	t := ClockOr(c).NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C():
		return ctx.Err()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// FitsDeadline says whether a wait of d can end before ctx's deadline.
// Both sides are durations: the deadline's remaining real time, and the
// wait. A context without a deadline fits any wait.
func FitsDeadline(ctx context.Context, d time.Duration) bool {
	deadline, ok := ctx.Deadline()
	return !ok || time.Until(deadline) >= d
}

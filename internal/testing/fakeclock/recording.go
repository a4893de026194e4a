package fakeclock

import (
	"sync"
	"time"

	"github.com/gitgrant/gitgrant"
)

// Recording is a clock that records every wait asked of it and otherwise
// is the clock it wraps: for tests whose waits must pass in real time (a
// server or a library on the wall clock) and that still check the waits.
type Recording struct {
	gitgrant.Clock
	mu     sync.Mutex
	delays []time.Duration
}

// Record wraps c.
func Record(c gitgrant.Clock) *Recording { return &Recording{Clock: c} }

// NewTimer records d and makes the wrapped clock's timer.
func (r *Recording) NewTimer(d time.Duration) gitgrant.Timer {
	r.mu.Lock()
	r.delays = append(r.delays, d)
	r.mu.Unlock()
	return r.Clock.NewTimer(d)
}

// Delays lists the duration of every timer made so far, in order.
func (r *Recording) Delays() []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Duration(nil), r.delays...)
}

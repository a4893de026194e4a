// Package fakeclock is the one fake gitgrant.Clock of the test suite: time
// moves only when a test says so, and every timer and wait is recorded.
//
// A Clock either moves by hand (Advance fires the timers that fall due) or,
// with AutoAdvance, jumps forward by whatever anyone waits for, so code that
// sleeps between retries runs at once while the clock shows the wait.
package fakeclock

import (
	"sync"
	"time"

	"github.com/gitgrant/gitgrant"
)

// Clock is a manual gitgrant.Clock. The zero value is not usable; call New.
type Clock struct {
	mu      sync.Mutex
	now     time.Time
	auto    bool
	timers  []*timer
	delays  []time.Duration
	changed chan struct{}
}

var _ gitgrant.Clock = (*Clock)(nil)

// New returns a clock stopped at t.
func New(t time.Time) *Clock { return &Clock{now: t, changed: make(chan struct{})} }

// NewAuto returns a clock stopped at t that jumps forward by every wait.
func NewAuto(t time.Time) *Clock {
	c := New(t)
	c.auto = true
	return c
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// NewTimer records d and returns a timer that fires when the clock reaches
// Now+d (at once with AutoAdvance, which moves the clock there).
func (c *Clock) NewTimer(d time.Duration) gitgrant.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &timer{clk: c, c: make(chan time.Time, 1), at: c.now.Add(d)}
	c.delays = append(c.delays, d)
	c.timers = append(c.timers, t)
	if c.auto && d > 0 {
		c.now = t.at
	}
	c.fireDue()
	c.notify()
	return t
}

// Advance moves the clock on by d and fires the timers that fall due.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.fireDue()
	c.notify()
}

// Set moves the clock to t (which may be earlier: a clock jump) and fires
// the timers that fall due.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
	c.fireDue()
	c.notify()
}

// Delays lists the duration of every timer made so far, in order: the
// waits code asked for.
func (c *Clock) Delays() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.delays...)
}

// Waited is the sum of Delays.
func (c *Clock) Waited() time.Duration {
	var sum time.Duration
	for _, d := range c.Delays() {
		sum += d
	}
	return sum
}

// Pending counts timers that have neither fired nor been stopped.
func (c *Clock) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, t := range c.timers {
		if !t.stopped && !t.fired {
			n++
		}
	}
	return n
}

// Changed returns a channel closed at the next change: a new timer, or
// the clock moving. Tests use it to wait for code to start waiting.
func (c *Clock) Changed() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.changed
}

func (c *Clock) notify() {
	close(c.changed)
	c.changed = make(chan struct{})
}

func (c *Clock) fireDue() {
	kept := c.timers[:0]
	for _, t := range c.timers {
		if !t.stopped && !t.fired && !t.at.After(c.now) {
			t.fired = true
			t.c <- c.now
		}
		if !t.stopped && !t.fired {
			kept = append(kept, t)
		}
	}
	clear(c.timers[len(kept):])
	c.timers = kept
}

type timer struct {
	clk     *Clock
	c       chan time.Time
	at      time.Time
	stopped bool
	fired   bool
}

func (t *timer) C() <-chan time.Time { return t.c }

func (t *timer) Stop() bool {
	t.clk.mu.Lock()
	defer t.clk.mu.Unlock()
	active := !t.stopped && !t.fired
	t.stopped = true
	return active
}

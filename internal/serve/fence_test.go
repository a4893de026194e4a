package serve

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// memLock is a Lease in memory, for the fence's own tests.
type memLock struct {
	identity string
	mu       sync.Mutex
	rec      resourcelock.LeaderElectionRecord
	fail     error
}

func (m *memLock) Get(context.Context) (*resourcelock.LeaderElectionRecord, []byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.rec
	return &r, []byte(r.HolderIdentity), m.fail
}

func (m *memLock) Create(ctx context.Context, r resourcelock.LeaderElectionRecord) error {
	return m.Update(ctx, r)
}

func (m *memLock) Update(_ context.Context, r resourcelock.LeaderElectionRecord) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	m.rec = r
	return nil
}

func (m *memLock) holder() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.rec.HolderIdentity
}

func (*memLock) RecordEvent(string) {}
func (m *memLock) Identity() string { return m.identity }
func (*memLock) Describe() string   { return "test/lease" }

// TestFenceStopsAtRenewDeadline: the fence cancels the term once the last
// successful renewal started a renew deadline ago, not before; a failed
// renewal does not extend it.
func TestFenceStopsAtRenewDeadline(t *testing.T) {
	t.Parallel()
	const deadline = 300 * time.Millisecond
	mem := &memLock{identity: "a"}
	l := &fencedLock{Interface: mem, now: time.Now, quiet: make(chan struct{})}
	if l.holds(deadline) {
		t.Fatal("holds before any renewal")
	}
	renewed := time.Now()
	if err := l.Update(t.Context(), resourcelock.LeaderElectionRecord{HolderIdentity: "a"}); err != nil {
		t.Fatal(err)
	}
	mem.mu.Lock()
	mem.fail = errors.New("API server unreachable")
	mem.mu.Unlock()
	if err := l.Update(t.Context(), resourcelock.LeaderElectionRecord{HolderIdentity: "a"}); err == nil {
		t.Fatal("a failing Update succeeded")
	}
	if !l.holds(deadline) {
		t.Fatal("does not hold right after a renewal")
	}
	lost := make(chan time.Time, 1)
	go l.fence(t.Context(), deadline, func() { lost <- time.Now() })
	select {
	case at := <-lost:
		if at.Sub(renewed) < deadline {
			t.Errorf("the fence fired %s after the renewal, before the renew deadline %s", at.Sub(renewed), deadline)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the fence never fired")
	}
	if l.holds(deadline) {
		t.Error("still holds after the renew deadline")
	}
}

// TestReleaseWaitsAndNeverClearsAnother: the release (ReleaseOnCancel)
// waits for the term's passes to end, and clears only a Lease this replica
// holds as the read before it shows.
func TestReleaseWaitsAndNeverClearsAnother(t *testing.T) {
	t.Parallel()
	release := resourcelock.LeaderElectionRecord{LeaseDurationSeconds: 1}
	t.Run("waits for the passes", func(t *testing.T) {
		t.Parallel()
		mem := &memLock{identity: "a", rec: resourcelock.LeaderElectionRecord{HolderIdentity: "a"}}
		quiet := make(chan struct{})
		l := &fencedLock{Interface: mem, now: time.Now, quiet: quiet}
		if _, _, err := l.Get(t.Context()); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		if err := l.Update(ctx, release); err == nil || mem.holder() != "a" {
			t.Fatalf("released while a pass ran: err %v, holder %q", err, mem.holder())
		}
		close(quiet)
		if err := l.Update(t.Context(), release); err != nil || mem.holder() != "" {
			t.Fatalf("release after the passes: err %v, holder %q", err, mem.holder())
		}
	})
	t.Run("another holds it", func(t *testing.T) {
		t.Parallel()
		mem := &memLock{identity: "a", rec: resourcelock.LeaderElectionRecord{HolderIdentity: "b"}}
		quiet := make(chan struct{})
		close(quiet)
		l := &fencedLock{Interface: mem, now: time.Now, quiet: quiet}
		if _, _, err := l.Get(t.Context()); err != nil {
			t.Fatal(err)
		}
		if err := l.Update(t.Context(), release); err != nil || mem.holder() != "b" {
			t.Fatalf("release of b's Lease: err %v, holder %q", err, mem.holder())
		}
	})
}

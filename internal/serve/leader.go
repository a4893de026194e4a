package serve

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	coordinationv1 "k8s.io/client-go/kubernetes/typed/coordination/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/klog/v2"
)

// Election makes the server one of several replicas, of which only the
// holder of a coordination.k8s.io Lease runs passes; the others serve
// /healthz, /readyz and /metrics and wait to take over.
//
// The timing is client-go's: the holder renews every RetryPeriod; one that
// has not renewed within RenewDeadline gives up; the others take the Lease
// once it has not been renewed for LeaseDuration (as they observe it).
// On top of that the holder fences itself: it acts only while the last
// renewal it made started less than RenewDeadline ago, measured on its own
// clock from before the request left. No other replica can take the Lease
// until LeaseDuration after that renewal reached the API server, so a
// holder that stops acting at RenewDeadline leaves LeaseDuration -
// RenewDeadline (5s by default) for its running pass to notice the
// cancellation before anyone else may start.
type Election struct {
	// Lock is the Lease (LeaseLock), with this replica's identity.
	Lock          resourcelock.Interface
	LeaseDuration time.Duration
	RenewDeadline time.Duration
	RetryPeriod   time.Duration
}

// Validate checks the timing (the Lease stores whole seconds) and the
// identity.
func (e *Election) Validate() error {
	switch {
	case e.Lock == nil || e.Lock.Identity() == "":
		return errors.New("leader election needs an identity (POD_NAME or the host name)")
	case e.LeaseDuration < time.Second || e.LeaseDuration%time.Second != 0:
		return fmt.Errorf("--lease-duration %s: give whole seconds, 1s or more (a Lease stores whole seconds)", e.LeaseDuration)
	case e.RenewDeadline <= 0 || e.RenewDeadline >= e.LeaseDuration:
		return fmt.Errorf("--renew-deadline %s must be above 0 and below --lease-duration %s: a leader stops acting at the renew deadline, before anyone can take its Lease", e.RenewDeadline, e.LeaseDuration)
	case e.RetryPeriod <= 0 || float64(e.RenewDeadline) <= leaderelection.JitterFactor*float64(e.RetryPeriod):
		return fmt.Errorf("--retry-period %s must be above 0 and --renew-deadline %s more than %.1f times it (client-go's jitter), so that the leader gets to try again before it gives up", e.RetryPeriod, e.RenewDeadline, leaderelection.JitterFactor)
	}
	return nil
}

// LeaseLock is the Lease namespace/name in the cluster cfg reaches, held
// as identity. It needs get, create and update on that Lease (no list, no
// watch, no events).
func LeaseLock(cfg *rest.Config, namespace, name, identity string) (resourcelock.Interface, error) {
	for what, v := range map[string]string{"--lease-name": name, "--lease-namespace": namespace} {
		if errs := validation.IsDNS1123Subdomain(v); len(errs) > 0 {
			return nil, fmt.Errorf("%s %q: %s", what, v, errs[0])
		}
	}
	cfg = rest.CopyConfig(cfg)
	cfg.UserAgent = "gitgrant-leader-election"
	client, err := coordinationv1.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: namespace, Name: name},
		Client:     client,
		LockConfig: resourcelock.ResourceLockConfig{Identity: identity},
	}, nil
}

// fencedLock remembers when the last renewal that made this replica the
// holder started, so that the holder can stop acting on its own clock,
// whatever client-go's renew loop is doing. It also guards the release
// (ReleaseOnCancel), which client-go makes as soon as its renew loop ends,
// also when renewing failed:
//   - the release waits until quiet is closed: no other replica may start
//     while a pass of this one still runs;
//   - it releases only a Lease that the read just before it shows this
//     replica holding (client-go decides from what it observed last, which
//     can be older than that read), so that it never clears the record of
//     a replica that has taken over meanwhile.
type fencedLock struct {
	resourcelock.Interface
	now   func() time.Time
	quiet <-chan struct{}

	mu         sync.Mutex
	renewedAt  time.Time // zero: not the holder
	lastHolder string    // as the last Get read it
}

func (l *fencedLock) Get(ctx context.Context) (*resourcelock.LeaderElectionRecord, []byte, error) {
	r, raw, err := l.Interface.Get(ctx)
	if err == nil {
		l.mu.Lock()
		l.lastHolder = r.HolderIdentity
		l.mu.Unlock()
	}
	return r, raw, err
}

func (l *fencedLock) Create(ctx context.Context, r resourcelock.LeaderElectionRecord) error {
	return l.write(ctx, r, l.Interface.Create)
}

func (l *fencedLock) Update(ctx context.Context, r resourcelock.LeaderElectionRecord) error {
	return l.write(ctx, r, l.Interface.Update)
}

func (l *fencedLock) write(ctx context.Context, r resourcelock.LeaderElectionRecord, write func(context.Context, resourcelock.LeaderElectionRecord) error) error {
	if r.HolderIdentity != l.Identity() { // a release
		select {
		case <-l.quiet:
		case <-ctx.Done():
			return fmt.Errorf("not releasing the Lease while a pass runs: %w", ctx.Err())
		}
		l.mu.Lock()
		held := l.lastHolder == l.Identity()
		l.renewedAt = time.Time{}
		l.mu.Unlock()
		if !held {
			return nil // someone else holds it now: nothing of ours to release
		}
	}
	start := l.now()
	err := write(ctx, r)
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case r.HolderIdentity != l.Identity():
		l.renewedAt = time.Time{} // released
	case err == nil:
		l.renewedAt = start
	}
	return err
}

// heldUntil is when this replica must stop acting: the start of its last
// renewal plus the renew deadline; zero when it does not hold the Lease.
func (l *fencedLock) heldUntil(renewDeadline time.Duration) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.renewedAt.IsZero() {
		return time.Time{}
	}
	return l.renewedAt.Add(renewDeadline)
}

// holds reports whether this replica may still act.
func (l *fencedLock) holds(renewDeadline time.Duration) bool {
	until := l.heldUntil(renewDeadline)
	return !until.IsZero() && l.now().Before(until)
}

// fence cancels lose when the lease is no longer held (see heldUntil), or
// returns when ctx ends.
func (l *fencedLock) fence(ctx context.Context, renewDeadline time.Duration, lose context.CancelFunc) {
	for {
		until := l.heldUntil(renewDeadline)
		wait := until.Sub(l.now())
		if until.IsZero() || wait <= 0 {
			lose()
			return
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// lead campaigns for the Lease until ctx ends; each time this replica
// holds it, it runs passes until the term ends (see term). passes is the
// context passes derive from besides the term (cancelled at the end of
// the shutdown grace).
func (s *Server) lead(ctx, passes context.Context) {
	for ctx.Err() == nil {
		s.term(ctx, passes)
	}
}

// term is one campaign: wait for the Lease, run passes while holding it,
// hand it back. A term ends at shutdown (after the running pass, within the
// grace), when client-go fails to renew, or when the fence finds the last
// renewal too old; in every case the scheduler has returned, so no pass of
// this term runs, before the Lease is released (ReleaseOnCancel), and
// before this replica campaigns again.
func (s *Server) term(ctx, passes context.Context) {
	el := s.opts.Election
	quiet := make(chan struct{})
	// The wall clock: the Lease's timing is client-go's, on real time.
	lock := &fencedLock{Interface: el.Lock, now: time.Now, quiet: quiet}
	log := s.log.With("lease", el.Lock.Describe(), "identity", el.Lock.Identity())
	electCtx, stopElecting := context.WithCancel(context.WithoutCancel(ctx))
	defer stopElecting()
	electCtx = klog.NewContext(electCtx, logr.FromSlogHandler(s.log.Handler()).WithValues("component", "leaderelection"))
	ended := make(chan struct{})
	// handOver ends the campaign once no pass of this term can run:
	// client-go releases the Lease if this replica holds it.
	handOver := func() {
		close(quiet)
		stopElecting()
		<-ended
	}

	started := make(chan context.Context, 1)
	elector, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   el.LeaseDuration,
		RenewDeadline:   el.RenewDeadline,
		RetryPeriod:     el.RetryPeriod,
		ReleaseOnCancel: true,
		Name:            el.Lock.Describe(),
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(leading context.Context) { started <- leading },
			OnStoppedLeading: func() {},
			OnNewLeader:      func(identity string) { s.setLeaderName(identity) },
		},
	})
	if err != nil { // Validate refused this before Run
		log.Error("leader election cannot start", "err", err)
		<-ctx.Done()
		return
	}
	go func() {
		defer close(ended)
		elector.Run(electCtx)
	}()
	var leading context.Context
	select {
	case <-ctx.Done():
		handOver()
		return
	case leading = <-started:
	}
	if ctx.Err() != nil { // shutdown came with the Lease: run nothing, hand it back
		handOver()
		return
	}

	termCtx, lose := context.WithCancel(leading)
	defer lose()
	go lock.fence(termCtx, el.RenewDeadline, lose)
	schedCtx, stopSched := context.WithCancel(termCtx)
	defer context.AfterFunc(ctx, stopSched)()
	passCtx, stopPass := context.WithCancel(termCtx)
	defer context.AfterFunc(passes, stopPass)()

	log.Info("leading: this replica runs the passes")
	s.setLeading(func() bool { return lock.holds(el.RenewDeadline) })
	s.sched.Run(schedCtx, passCtx)
	s.flushNotes() // the term's fast-path records go out before the Lease does
	s.setLeading(nil)
	switch {
	case ctx.Err() != nil:
		log.Info("shutting down: handing the Lease over")
	case leading.Err() != nil:
		log.Error("lost the Lease (not renewed within --renew-deadline): stopped acting; campaigning again")
	default:
		log.Error("stopped acting: the last renewal of the Lease started more than --renew-deadline ago; campaigning again", "renew_deadline", el.RenewDeadline)
	}
	handOver()
}

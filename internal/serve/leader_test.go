package serve

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/engine"
	"github.com/gitgrant/gitgrant/internal/testing/fakeclock"
	"github.com/gitgrant/gitgrant/internal/testing/testenv/kube"
	"github.com/gitgrant/gitgrant/providers"
	"github.com/gitgrant/gitgrant/providers/fake"
)

func TestMain(m *testing.M) { kube.Main(m) }

// Short timings keep the tests quick; the margin a leader has between
// stopping and the earliest takeover is LeaseDuration - RenewDeadline, 2s.
const (
	testLease   = 4 * time.Second
	testRenew   = 2 * time.Second
	testRetry   = 500 * time.Millisecond
	testLeaseNm = "gitgrant"
)

// call is one provider call as a replica made it.
type call struct {
	replica string
	fake.Call
	at time.Time
}

// calls records every replica's grants and revokes of the world's one
// provider, in order.
type calls struct {
	mu  sync.Mutex
	all []call
}

func (c *calls) add(replica string, fc fake.Call) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.all = append(c.all, call{replica, fc, time.Now()})
}

func (c *calls) list() []call {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]call(nil), c.all...)
}

// changes are the grants and revokes made, as "op principal" lines.
func (c *calls) changes() []string {
	var out []string
	for _, x := range c.list() {
		if x.Op == fake.OpGrant || x.Op == fake.OpRevoke {
			out = append(out, string(x.Op)+" "+x.Principal)
		}
	}
	return out
}

// recording is the shared provider as one replica reaches it: every call
// that succeeded is recorded; hold, when set, runs before a grant (to
// hang it).
type recording struct {
	providers.Provider
	replica string
	calls   *calls
	hold    func(ctx context.Context) error
}

func (r recording) Members(ctx context.Context, role string) ([]providers.Member, error) {
	r.calls.add(r.replica, fake.Call{Op: fake.OpMembers, Role: role})
	return r.Provider.Members(ctx, role)
}

func (r recording) Grant(ctx context.Context, g providers.Grant) error {
	if r.hold != nil {
		if err := r.hold(ctx); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := r.Provider.Grant(ctx, g); err != nil {
		return err
	}
	r.calls.add(r.replica, fake.Call{Op: fake.OpGrant, Role: g.Role, Principal: g.Principal})
	return nil
}

func (r recording) Revoke(ctx context.Context, role, principal string) error {
	if err := r.Provider.Revoke(ctx, role, principal); err != nil {
		return err
	}
	r.calls.add(r.replica, fake.Call{Op: fake.OpRevoke, Role: role, Principal: principal})
	return nil
}

func (recording) Close() error { return nil }

// cuttable is a Lease lock whose replica can be cut off from the API
// server, as a network partition would.
type cuttable struct {
	resourcelock.Interface
	cut atomic.Bool
}

var errCut = errors.New("test: cut off from the API server")

func (c *cuttable) Get(ctx context.Context) (*resourcelock.LeaderElectionRecord, []byte, error) {
	if c.cut.Load() {
		return nil, nil, errCut
	}
	return c.Interface.Get(ctx)
}

func (c *cuttable) Create(ctx context.Context, r resourcelock.LeaderElectionRecord) error {
	if c.cut.Load() {
		return errCut
	}
	return c.Interface.Create(ctx, r)
}

func (c *cuttable) Update(ctx context.Context, r resourcelock.LeaderElectionRecord) error {
	if c.cut.Load() {
		return errCut
	}
	return c.Interface.Update(ctx, r)
}

// election is several replicas of serve on one world, electing through a
// Lease on the test API server.
type election struct {
	t     *testing.T
	w     *world
	clk   *fakeclock.Clock
	srv   *kube.Server
	ns    string
	calls *calls
}

func newElection(t *testing.T) *election {
	t.Helper()
	srv := kube.APIServer(t)
	clk := fakeclock.New(t0)
	return &election{t: t, w: newWorld(t, clk), clk: clk, srv: srv, ns: srv.Namespace(t, "serve-election"), calls: &calls{}}
}

// replica is one running server.
type replica struct {
	name string
	s    *Server
	lock *cuttable
	stop func() // graceful shutdown; returns once Run has
}

// start runs a replica named name until stop or the end of the test.
func (e *election) start(name string, hold func(context.Context) error) *replica {
	t := e.t
	t.Helper()
	lease, err := LeaseLock(e.srv.AdminConfig(), e.ns, testLeaseNm, name)
	if err != nil {
		t.Fatal(err)
	}
	lock := &cuttable{Interface: lease}
	eng := e.w.engine(e.clk)
	eng.Registry = providers.Registry{"exec": func(context.Context, gitgrant.ProviderConfig, providers.Deps) (providers.Provider, error) {
		return recording{Provider: e.w.db, replica: name, calls: e.calls, hold: hold}, nil
	}}
	s := New(eng, Options{
		Apply: engine.ApplyOptions{Cleanup: true, Commit: commitAt(e.clk)}, Clock: e.clk, Resync: time.Hour,
		WebhookSecret: []byte(secret), Logger: testLogger(t).With("replica", name),
		Election: &Election{Lock: lock, LeaseDuration: testLease, RenewDeadline: testRenew, RetryPeriod: testRetry},
	})
	cancel, done := runLoopback(t, s)
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("%s: Run: %v", name, err)
			}
		})
	}
	t.Cleanup(stop)
	return &replica{name: name, s: s, lock: lock, stop: stop}
}

// holder is the Lease's holder as the API server has it.
func (e *election) holder() string {
	lease, err := e.srv.Admin(e.t).CoordinationV1().Leases(e.ns).Get(context.Background(), testLeaseNm, metav1.GetOptions{})
	if err != nil || lease.Spec.HolderIdentity == nil {
		return ""
	}
	return *lease.Spec.HolderIdentity
}

func leading(r *replica) bool { ok, _ := r.s.Leading(); return ok }

// TestElectionOneReplicaActs: of three replicas one holds the Lease and
// runs the passes; the other two are ready standbys that say who leads,
// report gitgrant_leader 0, and drop webhook triggers. Shut down
// gracefully, the leader hands the Lease over at once, and the replica that
// takes over finds nothing left to do: every grant and revoke was made
// once.
func TestElectionOneReplicaActs(t *testing.T) {
	t.Parallel()
	e := newElection(t)
	e.w.db.Set("ro", map[string]time.Time{"mallory": {}})
	e.w.merge(1, "alice", "requests/db/alice.yaml", request("alice", "ro", "duration: 2h\n"), t0.Add(-time.Minute))
	rs := []*replica{e.start("replica-a", nil), e.start("replica-b", nil), e.start("replica-c", nil)}

	var leader *replica
	eventually(t, "a leader's first pass", func() bool {
		for _, r := range rs {
			if leading(r) && r.s.Passes() > 0 {
				leader = r
				return true
			}
		}
		return false
	})
	if got := e.holder(); got != leader.name {
		t.Fatalf("the Lease is held by %q, but %s leads", got, leader.name)
	}
	for _, r := range rs {
		if r == leader {
			if m := scrape(t, r.s); !strings.Contains(m, "\ngitgrant_leader 1\n") {
				t.Errorf("%s leads; its metrics:\n%s", r.name, grep(m, "gitgrant_leader"))
			}
			continue
		}
		eventually(t, r.name+" learning who leads", func() bool { _, who := r.s.Leading(); return who == leader.name })
		h := r.s.Handler()
		if code, body := get(t, h, "/readyz"); code != http.StatusOK || body != "ok: standby; the leader is "+leader.name+"\n" {
			t.Errorf("%s /readyz = %d %q", r.name, code, body)
		}
		if code := deliver(t, h, "push", `{"ref":"refs/heads/main"}`); code != http.StatusAccepted {
			t.Errorf("%s: webhook answered %d", r.name, code)
		}
		m := scrape(t, r.s)
		for _, want := range []string{"\ngitgrant_leader 0\n", "\ngitgrant_standby_dropped_triggers_total 1\n"} {
			if !strings.Contains(m, want) {
				name := strings.Fields(want)[0]
				t.Errorf("%s: metrics lack %q:\n%s", r.name, strings.TrimSpace(want), grep(m, name))
			}
		}
		if n := len(r.s.sched.triggers); n != 0 || r.s.Passes() != 0 {
			t.Errorf("%s is a standby, yet has %d trigger(s) waiting and ran %d pass(es)", r.name, n, r.s.Passes())
		}
	}

	// A graceful shutdown releases the Lease: another replica takes over
	// within a retry period or so, not a lease duration.
	stopped := time.Now()
	leader.stop()
	var next *replica
	eventually(t, "a new leader's first pass", func() bool {
		for _, r := range rs {
			if r != leader && leading(r) && r.s.Passes() > 0 {
				next = r
				return true
			}
		}
		return false
	})
	took := time.Since(stopped)
	t.Logf("graceful handover from %s to %s: the new leader's first pass done %s after shutdown began", leader.name, next.name, took.Round(time.Millisecond))
	if took >= testLease {
		t.Errorf("the handover took %s: the Lease was not released (it takes %s to expire)", took, testLease)
	}
	if diff := cmp.Diff([]string{"revoke mallory", "grant alice"}, e.calls.changes()); diff != "" {
		t.Errorf("grants and revokes across the replicas (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"alice"}, e.w.members("ro")); diff != "" {
		t.Errorf("members (-want +got):\n%s", diff)
	}
}

// TestPartitionedLeaderStopsFirst: a leader cut off from the API server
// while a grant of its pass hangs stops acting (the grant's context is
// cancelled) before another replica may take the Lease; the replica that
// takes over makes the grant, once.
func TestPartitionedLeaderStopsFirst(t *testing.T) {
	t.Parallel()
	e := newElection(t)
	e.w.merge(1, "alice", "requests/db/alice.yaml", request("alice", "ro", "duration: 2h\n"), t0.Add(-time.Minute))

	hanging := make(chan struct{})
	var stoppedAt time.Time
	var hangOnce sync.Once
	a := e.start("replica-a", func(ctx context.Context) error {
		hangOnce.Do(func() { close(hanging) })
		<-ctx.Done()
		stoppedAt = time.Now()
		return ctx.Err()
	})
	select {
	case <-hanging:
	case <-time.After(30 * time.Second):
		t.Fatal("replica-a never reached the grant")
	}
	b := e.start("replica-b", nil)
	eventually(t, "replica-b learning who leads", func() bool { _, who := b.s.Leading(); return who == "replica-a" })

	cut := time.Now()
	a.lock.cut.Store(true)
	eventually(t, "replica-b's grant", func() bool { return len(e.calls.changes()) > 0 })
	eventually(t, "replica-a standing down", func() bool { return !leading(a) })

	var first time.Time // replica-b's first provider call
	for _, c := range e.calls.list() {
		if c.replica == "replica-b" {
			first = c.at
			break
		}
	}
	if stoppedAt.IsZero() || !stoppedAt.Before(first) {
		t.Fatalf("replica-a's grant ended at %v, replica-b's first call was at %v: two leaders acted at once", stoppedAt, first)
	}
	t.Logf("cut at 0; replica-a stopped acting at %s; replica-b acted at %s (margin %s)",
		stoppedAt.Sub(cut).Round(time.Millisecond), first.Sub(cut).Round(time.Millisecond), first.Sub(stoppedAt).Round(time.Millisecond))
	if diff := cmp.Diff([]string{"grant alice"}, e.calls.changes()); diff != "" {
		t.Errorf("grants and revokes (-want +got):\n%s", diff)
	}
	for _, c := range e.calls.list() {
		if c.replica == "replica-a" && c.at.After(stoppedAt) {
			t.Errorf("replica-a called the provider after it stopped: %+v", c)
		}
	}

	// Back on the network, replica-a finds replica-b's Lease and waits.
	a.lock.cut.Store(false)
	eventually(t, "replica-a learning who leads", func() bool { _, who := a.s.Leading(); return who == "replica-b" })
	if leading(a) || e.holder() != "replica-b" {
		t.Errorf("after the partition: replica-a leading %v, holder %q", leading(a), e.holder())
	}
}

// TestWithoutElectionReplicaLeads: without leader election serve
// reconciles alone, as before, and says so in gitgrant_leader.
func TestWithoutElectionReplicaLeads(t *testing.T) {
	t.Parallel()
	w, clk := newClockedWorld(t)
	s := start(t, w.engine(clk), clk, time.Hour)
	eventually(t, "the first pass", func() bool { return s.Passes() == 1 })
	if ok, _ := s.Leading(); !ok {
		t.Errorf("a server without election does not lead")
	}
	if m := scrape(t, s); !strings.Contains(m, "\ngitgrant_leader 1\n") {
		t.Errorf("metrics:\n%s", grep(m, "gitgrant_leader"))
	}
}

func TestElectionValidate(t *testing.T) {
	t.Parallel()
	lock := &resourcelock.LeaseLock{LockConfig: resourcelock.ResourceLockConfig{Identity: "pod-1"}}
	tests := []struct {
		name                string
		identity            string
		lease, renew, retry time.Duration
		want                string // "" valid
	}{
		{"defaults", "pod-1", 15 * time.Second, 10 * time.Second, 2 * time.Second, ""},
		{"no identity", "", 15 * time.Second, 10 * time.Second, 2 * time.Second, "identity"},
		{"fractional lease", "pod-1", 1500 * time.Millisecond, time.Second, 100 * time.Millisecond, "whole seconds"},
		{"renew not below lease", "pod-1", 10 * time.Second, 10 * time.Second, 2 * time.Second, "below --lease-duration"},
		{"retry too close to renew", "pod-1", 15 * time.Second, 10 * time.Second, 9 * time.Second, "--retry-period"},
		{"zero retry", "pod-1", 15 * time.Second, 10 * time.Second, 0, "--retry-period"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := *lock
			l.LockConfig.Identity = tt.identity
			err := (&Election{Lock: &l, LeaseDuration: tt.lease, RenewDeadline: tt.renew, RetryPeriod: tt.retry}).Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Validate: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("Validate = %v, want an error about %q", err, tt.want)
			}
		})
	}
	if _, err := LeaseLock(&rest.Config{Host: "https://127.0.0.1:1"}, "Not_A_Namespace", "gitgrant", "pod-1"); err == nil || !strings.Contains(err.Error(), "--lease-namespace") {
		t.Errorf("LeaseLock with a bad namespace: %v", err)
	}
}

// TestPassRefusedWithoutLease: a pass that starts when this replica no
// longer holds the Lease (a process resumed after a pause, before its
// fence's timer has run) does nothing at all.
func TestPassRefusedWithoutLease(t *testing.T) {
	t.Parallel()
	w, clk := newClockedWorld(t)
	w.db.Set("ro", map[string]time.Time{"mallory": {}})
	lock := &memLock{identity: "a"}
	s := New(w.engine(clk), Options{Clock: clk, Election: &Election{Lock: lock, LeaseDuration: testLease, RenewDeadline: testRenew, RetryPeriod: testRetry}})
	s.setLeading(func() bool { return false })
	if _, err := s.pass(t.Context(), "test"); !errors.Is(err, errStandby) {
		t.Errorf("pass = %v, want errStandby", err)
	}
	if calls := w.db.Calls(); len(calls) != 0 {
		t.Errorf("the provider was called: %v", calls)
	}
	if s.Passes() != 0 {
		t.Errorf("%d passes counted", s.Passes())
	}
}

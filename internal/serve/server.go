package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/engine"
	"github.com/gitgrant/gitgrant/internal/ghapi"
	"github.com/gitgrant/gitgrant/internal/gitrepo"
	"github.com/gitgrant/gitgrant/reconciler"
	"github.com/gitgrant/gitgrant/schema"
)

// Options configure a Server.
type Options struct {
	// Apply is passed to every pass (cleanup, committer, brake). Force is
	// never set by serve: a refused plan waits for a person.
	Apply engine.ApplyOptions
	// Clock drives the scheduler and the metrics; default the wall clock.
	Clock gitgrant.Clock
	// Resync is the period of full passes for drift (0: none).
	Resync time.Duration
	// WebhookSecret verifies deliveries; empty refuses every delivery.
	WebhookSecret []byte
	// ShutdownGrace bounds the pass still running at shutdown (default 30s).
	ShutdownGrace time.Duration
	// Election, when set, makes this server one replica of several: only
	// the holder of the Lease runs passes. Nil: this server reconciles
	// alone.
	Election *Election
	Logger   *slog.Logger
	// Status, when set, is told about every pass; with StatusToken it is
	// also served at GET /status to bearers of that token.
	Status      *StatusPage
	StatusToken string
	// ExpiryFollowUp bounds how long the full pass that follows the
	// expiry fast path (cleanup commit, pull request comments, drift)
	// waits for a lull in expiries; default 5 minutes.
	ExpiryFollowUp time.Duration
}

// Server is a long-running reconciler with its HTTP endpoints.
type Server struct {
	eng     *engine.Engine
	opts    Options
	log     *slog.Logger
	sched   *Scheduler
	Metrics *Metrics

	mu          sync.Mutex
	ready       bool
	readyReason string
	readyNote   string
	passes      int
	// leading says whether this replica may act; nil while it is a
	// standby (with Election) and always true without Election.
	leading    func() bool
	leaderName string

	// The expiry fast path, used from the scheduler's goroutine only:
	// what the last clean full pass left (nil: none, every change runs a
	// full pass), and when the fast path first revoked since (a full pass
	// is then due at the first lull).
	fast      *engine.Expiries
	fastSince time.Time
	// notes writes the fast path's ledger records behind it.
	notes notesWriter
}

// errStandby ends a pass that found this replica no longer the leader.
var errStandby = errors.New("not the leader: this replica no longer holds the Lease, so it runs no pass")

// New wires a server around an engine. The engine's clock should be the
// same as opts.Clock.
func New(eng *engine.Engine, opts Options) *Server {
	if opts.Clock == nil {
		opts.Clock = gitgrant.SystemClock
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.ShutdownGrace <= 0 {
		opts.ShutdownGrace = 30 * time.Second
	}
	if opts.ExpiryFollowUp <= 0 {
		opts.ExpiryFollowUp = 5 * time.Minute
	}
	opts.Apply.Force = false
	var stats func() ghapi.Stats
	if eng.GitHub != nil && eng.GitHub.Transport != nil {
		stats = eng.GitHub.Transport.Stats
	}
	s := &Server{eng: eng, opts: opts, log: opts.Logger, Metrics: NewMetrics(stats), readyReason: "no pass has run yet"}
	// The providers and roles on main name the series that exist before
	// the first pass (which then keeps only the verified policy's).
	s.Metrics.known(configOnMain(eng.Repo))
	s.sched = NewScheduler(s.pass, opts.Clock, opts.Resync, opts.Logger)
	s.sched.Fast = s.expire
	if opts.Election == nil {
		s.leading = func() bool { return true }
		s.Metrics.leader.Set(1)
	}
	return s
}

// Scheduler exposes the scheduler, for tests that tune jitter or count.
func (s *Server) Scheduler() *Scheduler { return s.sched }

// Trigger asks for a pass (coalesced with any already waiting). A standby
// drops it: the leader's passes are full passes, and the next one finds
// whatever the trigger was about.
func (s *Server) Trigger(reason string) {
	if leading, leader := s.Leading(); !leading {
		s.Metrics.standbyDropped.Inc()
		s.log.Info("standby: trigger dropped; the leader's next pass finds the change", "trigger", reason, "leader", leader)
		return
	}
	s.sched.Trigger(reason)
}

// Leading reports whether this replica runs passes (always, without
// Election) and, when it does not, which replica holds the Lease ("" when
// none is known yet).
func (s *Server) Leading() (bool, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.leading != nil && s.leading(), s.leaderName
}

// setLeading starts a term (may reports whether this replica still holds
// the Lease) or, with nil, ends it. A replica that takes over stays ready
// until its first pass says otherwise, so that a takeover does not leave
// the Service without a ready pod while that pass runs.
func (s *Server) setLeading(may func() bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.leading = may
	if may == nil {
		s.Metrics.leader.Set(0)
		return
	}
	s.Metrics.leader.Set(1)
	if s.passes == 0 {
		s.ready, s.readyReason = true, ""
	}
}

func (s *Server) setLeaderName(identity string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.leaderName = identity
}

// Passes counts the passes run so far.
func (s *Server) Passes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.passes
}

// Ready reports readiness and, when not ready, why.
func (s *Server) Ready() (bool, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ready, s.readyReason
}

func (s *Server) setNotice(note string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.readyNote = note
}

// readiness is what /readyz says, read at once: ready or why not, and
// while ready a note a person should see.
func (s *Server) readiness() (ok bool, why, note string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ready, s.readyReason, s.readyNote
}

func (s *Server) setReady(ok bool, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ready, s.readyReason = ok, reason
}

// passDone counts a pass once it has ended, so that a caller who sees the
// count go up sees everything that pass did.
func (s *Server) passDone() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.passes++
}

// pass is one reconcile pass: fetch, plan, apply. Rule 9: a failure to read
// the repository or gitgrant.yaml plans nothing and applies nothing. Rule 7:
// when the remote cannot be fetched the pass plans from the last fetched
// main branch and applies only revocations; grants wait for a fresh read.
func (s *Server) pass(ctx context.Context, reason string) (time.Time, error) {
	// The term's fence cancels ctx when the Lease is no longer held; this
	// check closes the moment between the two (a process resumed after a
	// pause finds its Lease long gone before any timer of its own fires).
	if leading, _ := s.Leading(); !leading {
		return time.Time{}, errStandby
	}
	start := s.opts.Clock.Now()
	log := s.log.With("trigger", reason)
	result := "error"
	s.fast, s.fastSince = nil, time.Time{} // this pass decides afresh
	if err := s.notes.flush(); err != nil {
		// The revocations are done; their ledger lines still hold, so
		// this pass revokes them again (idempotently) and records them.
		log.Warn("recording the fast path's revocations failed; this pass repairs the ledger", "err", err)
	}
	defer func() {
		s.Metrics.passDuration.WithLabelValues(result).Observe(s.opts.Clock.Now().Sub(start).Seconds())
		s.Metrics.passes.WithLabelValues(result).Inc()
		s.passDone()
	}()

	p, err := s.eng.Plan(ctx, false)
	if err != nil {
		if s.opts.Status != nil {
			s.opts.Status.Record(nil, engine.Outcome{}, reason, s.opts.Clock.Now(), err)
		}
		s.setReady(false, err.Error())
		log.Error("pass planned nothing: the repository could not be read", "err", err)
		return time.Time{}, err
	}
	defer p.Close()
	switch {
	case p.PolicyErr != nil:
		// Rules 9 and 15: no verified policy grants nothing, and access
		// whose recorded window ended is still revoked below.
		why := p.PolicyErr.Error()
		if p.Report.ConfigFile().Diagnostics.HasErrors() {
			why = fmt.Sprintf("%s: %v", why, p.Report.ConfigFile().Diagnostics)
		}
		s.setReady(false, why)
		log.Error("no verified policy: only expired access is revoked", "err", why)
	case p.Stale != nil:
		log.Warn("fetch failed: planning from the last fetched main branch; grants pause, revocations go ahead", "err", p.Stale)
		s.setReady(false, "fetching the repository: "+p.Stale.Error())
	default:
		s.setReady(true, "")
	}
	s.Metrics.policy(p.Plan.Policy)
	s.setNotice(p.Plan.Policy.Loud())
	if loud := p.Plan.Policy.Loud(); loud != "" && p.PolicyErr == nil {
		log.Warn("policy on main is not all in force", "policy", loud)
	}
	s.Metrics.observePlan(p.Plan, p.Config)

	out, err := s.eng.Apply(ctx, p, s.opts.Apply) // revocations only when p.Stale (rule 7)
	s.Metrics.held.Set(float64(len(p.Plan.Held)))
	end := s.opts.Clock.Now()
	s.Metrics.observeResult(p.Plan, out.Result, end)
	if errors.Is(err, reconciler.ErrBrake) {
		log.Error("the removal brake held back drift and policy revocations; everything else was applied (review, then run `gitgrant reconcile --force`)", "held", len(p.Plan.Held), "err", err)
	}
	applied, failed := counts(out.Result)
	errs := append([]error{err}, p.Problems...)
	all := errors.Join(errs...)
	if s.opts.Status != nil {
		s.opts.Status.Record(p, out, reason, end, all)
	}
	result = "ok"
	if all != nil {
		result = "partial"
	} else {
		s.Metrics.lastSuccess.Set(float64(end.Unix()))
	}
	attrs := []any{"took", end.Sub(start), "applied", applied, "failed", failed, "next_change", p.Plan.NextChange}
	if !out.Cleanup.Commit.IsZero() {
		attrs = append(attrs, "cleanup_commit", out.Cleanup.Commit.String(), "removed", len(out.Cleanup.Removed))
	}
	if all != nil {
		log.Warn("pass done with errors; the next pass retries", append(attrs, "err", all)...)
		return p.Plan.NextChange, all
	}
	log.Info("pass done", attrs...)
	if s.fast = s.eng.Expiries(p, out); s.fast != nil {
		return s.fast.Next(), nil
	}
	return p.Plan.NextChange, nil
}

func counts(res reconciler.Result) (applied, failed int) {
	for _, o := range res.Outcomes {
		switch {
		case o.Action.Op == gitgrant.OpReport:
		case o.Err != nil:
			failed++
		default:
			applied++
		}
	}
	return applied, failed
}

// Handler serves /webhook, /healthz, /readyz, /metrics and, when
// configured, /status.
func (s *Server) Handler() http.Handler {
	branch := "refs/heads/" + s.eng.Repo.Branch()
	wh := &ghapi.Webhook{
		Secret:  s.opts.WebhookSecret,
		Logger:  s.log,
		Observe: s.Metrics.observeWebhook,
		OnPush: func(_ context.Context, ref string) error {
			if ref == branch {
				s.Trigger("push")
			}
			return nil
		},
		OnPullRequest: func(_ context.Context, _ int, action string, merged bool) error {
			if action == "closed" && merged {
				s.Trigger("pull_request merged")
			}
			return nil
		},
		OnPullRequestReview: func(context.Context, int, string) error {
			s.Trigger("pull_request_review")
			return nil
		},
	}
	mux := http.NewServeMux()
	mux.Handle("/webhook", wh)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if leading, leader := s.Leading(); !leading {
			// A standby is ready: it serves the probes and the metrics and
			// is needed for rollouts and disruption budgets; its passes are
			// the leader's.
			if leader == "" {
				leader = "not known yet"
			}
			fmt.Fprintf(w, "ok: standby; the leader is %s\n", leader)
			return
		}
		ok, why, note := s.readiness()
		if !ok {
			http.Error(w, "not ready: "+why, http.StatusServiceUnavailable)
			return
		}
		if note != "" {
			// Ready, but a person should look: an unverified policy change
			// on main is not in force (rule 13).
			fmt.Fprintf(w, "ok; warning: %s\n", note)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	if s.opts.Status != nil && s.opts.StatusToken != "" {
		mux.Handle("GET /status", RequireBearer(s.opts.StatusToken, s.opts.Status))
	}
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.Metrics.Registry, promhttp.HandlerOpts{Registry: s.Metrics.Registry}))
	return mux
}

// httpServer bounds what one connection may cost: headers within 10s,
// the whole request within 30s (the webhook sets a shorter deadline on its
// body), answers within 30s, 2 minutes idle between requests, and 64 KiB
// of headers. GitHub sends a delivery at once and waits 10s for the
// answer; only a slow or hostile client comes near these.
func (s *Server) httpServer() *http.Server {
	return &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
}

// Run serves HTTP on ln and runs passes until ctx ends; then it lets the
// running pass finish (up to ShutdownGrace, after which its context is
// cancelled) and stops the HTTP server.
func (s *Server) Run(ctx context.Context, ln net.Listener) error {
	if s.opts.Election != nil {
		if err := s.opts.Election.Validate(); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	srv := s.httpServer()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	passCtx, cancelPass := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelPass()
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer s.flushNotes() // the fast path's last records go out before Run returns
		if s.opts.Election != nil {
			s.lead(ctx, passCtx)
			return
		}
		s.sched.Run(ctx, passCtx)
	}()
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-served:
		cancel()
	}
	grace := s.opts.Clock.NewTimer(s.opts.ShutdownGrace)
	select {
	case <-done:
		grace.Stop()
	case <-grace.C():
		s.log.Warn("the running pass did not finish within the shutdown grace; cancelling it (the next start converges)")
		cancelPass()
		<-done
	}
	shutdownCtx, stop := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer stop()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return err
	}
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return serveErr
	}
	return nil
}

// configOnMain is gitgrant.yaml as main has it, or nil when it cannot be
// read or loaded; it only names metric series, so it need not be verified.
func configOnMain(repo *gitrepo.Repo) *gitgrant.Config {
	snap, err := repo.ReadRevision("")
	if err != nil || snap.Config == nil {
		return nil
	}
	cfg, diags := schema.LoadConfig(gitgrant.ConfigPath, snap.Config.Data)
	if diags.HasErrors() {
		return nil
	}
	return cfg
}

package serve

import (
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/ghapi"
	"github.com/gitgrant/gitgrant/reconciler"
)

// Metrics are serve's Prometheus metrics, on a registry of their own.
// Labels carry only provider and role names from gitgrant.yaml, never a
// principal, a URL or a secret.
type Metrics struct {
	Registry *prometheus.Registry

	activeGrants    *prometheus.GaugeVec
	passDuration    *prometheus.HistogramVec
	passes          *prometheus.CounterVec
	revocationDelay prometheus.Histogram
	mergeToGrant    prometheus.Histogram
	providerErrors  *prometheus.CounterVec
	lastSuccess     prometheus.Gauge
	webhooks        *prometheus.CounterVec
	// policyUnverified counts policy changes on main not in force;
	// policyMissing is 1 while no verified policy exists at all.
	policyUnverified prometheus.Gauge
	policyMissing    prometheus.Gauge
	held             prometheus.Gauge
	leader           prometheus.Gauge
	standbyDropped   prometheus.Counter
	expirySteps      *prometheus.CounterVec
}

// latencyBuckets span a fast pass to a slow resync: 10ms .. ~20min.
var latencyBuckets = prometheus.ExponentialBuckets(0.01, 2.5, 14)

func gauge(name, help string) prometheus.Gauge {
	return prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
}

func counter(name, help string) prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
}

func latencyHistogram(name, help string) prometheus.Histogram {
	return prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: latencyBuckets})
}

// NewMetrics registers every metric. stats, when not nil, is read at
// scrape time for the GitHub call counters (ghapi Transport.Stats).
func NewMetrics(stats func() ghapi.Stats) *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		activeGrants: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gitgrant_active_grants", Help: "Grants of active requests, as of the last pass that read the repository.",
		}, []string{"provider", "role"}),
		passDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "gitgrant_pass_duration_seconds", Help: "Duration of reconcile passes (fetch, plan, apply, cleanup).", Buckets: latencyBuckets,
		}, []string{"result"}),
		passes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gitgrant_passes_total", Help: "Reconcile passes, by result (ok, partial: some action or system failed, error: nothing was planned).",
		}, []string{"result"}),
		revocationDelay: latencyHistogram("gitgrant_revocation_delay_seconds", "Seconds between a window's end and the successful revocation of its access."),
		mergeToGrant:    latencyHistogram("gitgrant_merge_to_grant_seconds", "Seconds between a window's start (the merge, or `starts` if later) and the successful grant."),
		providerErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gitgrant_provider_errors_total", Help: "Provider failures: op is members (a role could not be listed), grant or revoke (after retries).",
		}, []string{"provider", "op"}),
		lastSuccess:      gauge("gitgrant_last_successful_pass_timestamp_seconds", "Unix time of the end of the last pass in which everything succeeded."),
		policyUnverified: gauge("gitgrant_policy_unverified_changes", "Policy changes (gitgrant.yaml, CODEOWNERS) on main that are not verified and so not in force, as of the last pass."),
		policyMissing:    gauge("gitgrant_policy_missing", "1 while no verified, valid policy exists: nothing is granted and only expired access is revoked."),
		held:             gauge("gitgrant_brake_held_actions", "Revocations (drift and policy changes) the removal brake held back in the last pass."),
		leader:           gauge("gitgrant_leader", "1 while this replica runs the passes (it holds the Lease, or runs without leader election), 0 while it is a standby."),
		standbyDropped:   counter("gitgrant_standby_dropped_triggers_total", "Webhook triggers a standby replica received and dropped: the leader's next pass finds the change."),
		expirySteps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gitgrant_expiry_fast_steps_total", Help: "Expiry fast-path steps (revocations at a window's end without a full pass), by result (ok, fallback: a full pass ran instead).",
		}, []string{"result"}),
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gitgrant_webhook_deliveries_total", Help: "Webhook deliveries, by event (push, pull_request, pull_request_review, ping, other) and outcome (handled, ignored, bad_signature, bad_content_type, too_large, busy, unreadable, bad_payload, failed, no_secret).",
		}, []string{"event", "outcome"}),
	}
	// Every series whose labels are known exists from the first scrape, so
	// that an alert on an increase (bad_signature, a provider error, a
	// failed pass) sees it from 0 instead of a series that appears later,
	// and a dashboard shows 0 rather than nothing before the first pass.
	for _, event := range ghapi.WebhookEvents() {
		for _, outcome := range ghapi.WebhookOutcomes() {
			m.webhooks.WithLabelValues(event, outcome)
		}
	}
	for _, result := range passResults {
		m.passes.WithLabelValues(result)
		m.passDuration.WithLabelValues(result)
	}
	m.expirySteps.WithLabelValues("ok")
	m.expirySteps.WithLabelValues("fallback")
	m.Registry.MustRegister(m.activeGrants, m.passDuration, m.passes, m.revocationDelay, m.mergeToGrant, m.providerErrors, m.lastSuccess, m.webhooks,
		m.policyUnverified, m.policyMissing, m.held, m.leader, m.standbyDropped, m.expirySteps,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if stats == nil { // no GitHub client: the counters stay at 0, and exist
		stats = func() ghapi.Stats { return ghapi.Stats{} }
	}
	{
		for _, c := range []struct {
			name, help string
			get        func(ghapi.Stats) int64
		}{
			{"gitgrant_github_requests_total", "HTTP requests sent to the GitHub API.", func(s ghapi.Stats) int64 { return s.Requests }},
			{"gitgrant_github_not_modified_total", "GitHub answers served from the ETag cache (304).", func(s ghapi.Stats) int64 { return s.NotModified }},
			{"gitgrant_github_retries_total", "GitHub requests retried.", func(s ghapi.Stats) int64 { return s.Retries }},
			{"gitgrant_github_rate_limit_waits_total", "Waits for a GitHub rate limit.", func(s ghapi.Stats) int64 { return s.RateLimitWaits }},
			{"gitgrant_github_server_errors_total", "GitHub 5xx answers.", func(s ghapi.Stats) int64 { return s.ServerErrors }},
		} {
			m.Registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: c.name, Help: c.help},
				func() float64 { return float64(c.get(stats())) }))
		}
	}
	return m
}

// passResults are the values of the result label of pass metrics.
var passResults = []string{"ok", "partial", "error"}

// providerOps are the values of the op label of provider errors.
var providerOps = []string{"members", string(gitgrant.OpGrant), string(gitgrant.OpRevoke)}

// known creates, at zero, the series of every provider and role cfg
// declares, so that they exist before anything happened to them.
func (m *Metrics) known(cfg *gitgrant.Config) {
	if cfg == nil {
		return
	}
	for name, p := range cfg.Providers {
		for _, op := range providerOps {
			m.providerErrors.WithLabelValues(name, op)
		}
		for role := range p.Roles {
			m.activeGrants.WithLabelValues(name, role)
		}
	}
}

// observeWebhook counts one delivery; event is one of ghapi.WebhookEvents,
// never the raw header.
func (m *Metrics) observeWebhook(event, outcome string) {
	m.webhooks.WithLabelValues(event, outcome).Inc()
}

// observePlan records the desired state a pass planned under cfg.
func (m *Metrics) observePlan(plan gitgrant.Plan, cfg *gitgrant.Config) {
	m.activeGrants.Reset()
	m.known(cfg)
	for _, en := range plan.Entries {
		if en.Status != gitgrant.StatusActive {
			continue
		}
		for _, g := range en.Grants {
			m.activeGrants.WithLabelValues(g.Provider, g.Role).Inc()
		}
	}
	for _, key := range plan.Unobserved {
		provider, _, _ := strings.Cut(key, "/")
		m.providerErrors.WithLabelValues(provider, "members").Inc()
	}
}

// observeResult records what applying did; at is when the actions ended.
func (m *Metrics) observeResult(plan gitgrant.Plan, res reconciler.Result, at time.Time) {
	windows := map[windowKey]gitgrant.Window{}
	for _, en := range plan.Entries {
		for _, g := range en.Grants {
			windows[windowKey{en.Path, g.Provider, g.Role, g.Principal}] = g.Window
		}
	}
	for _, o := range res.Outcomes {
		a := o.Action
		if a.Op == gitgrant.OpReport {
			continue
		}
		if o.Err != nil {
			m.providerErrors.WithLabelValues(a.Provider, string(a.Op)).Inc()
			continue
		}
		w, ok := windows[windowKey{a.Request, a.Provider, a.Role, a.Principal}]
		switch {
		case a.Op == gitgrant.OpRevoke && a.Expired && ok:
			m.revocationDelay.Observe(max(at.Sub(w.End).Seconds(), 0))
		case a.Op == gitgrant.OpGrant && ok:
			m.mergeToGrant.Observe(max(at.Sub(w.Start).Seconds(), 0))
		}
	}
}

type windowKey struct{ path, provider, role, principal string }

// policy records what the last pass said about the policy in force.
func (m *Metrics) policy(p *gitgrant.PolicyInForce) {
	if p == nil {
		return
	}
	m.policyUnverified.Set(float64(len(p.Unverified)))
	missing := 0.0
	if p.Error != "" {
		missing = 1
	}
	m.policyMissing.Set(missing)
}

package serve

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/testing/fakeclock"

	"github.com/google/go-cmp/cmp"

	"github.com/gitgrant/gitgrant/internal/approval"
	"github.com/gitgrant/gitgrant/internal/engine"
	"github.com/gitgrant/gitgrant/internal/ghapi"
	"github.com/gitgrant/gitgrant/providers/fake"
	"github.com/gitgrant/gitgrant/reconciler"
)

var engineRetry = reconciler.Retry{Attempts: 1}

// start runs a server on a loopback listener until the test ends.
func start(t *testing.T, eng *engine.Engine, clk gitgrant.Clock, resync time.Duration) *Server {
	t.Helper()
	s := New(eng, Options{Apply: engine.ApplyOptions{Cleanup: true, Commit: commitAt(clk)}, Clock: clk, Resync: resync, WebhookSecret: []byte(secret), Logger: testLogger(t)})
	cancel, done := runLoopback(t, s)
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return s
}

func TestWebhookRouting(t *testing.T) {
	t.Parallel()
	w := newWorld(t, fakeclock.New(t0))
	s := New(w.engine(fakeclock.New(t0)), Options{Clock: fakeclock.New(t0), WebhookSecret: []byte(secret)})
	h := s.Handler()
	for _, tc := range []struct {
		name, event, body string
		trigger           bool
	}{
		{"push to main", "push", `{"ref":"refs/heads/main"}`, true},
		{"push to a request branch", "push", `{"ref":"refs/heads/r1"}`, false},
		{"pull request merged", "pull_request", `{"action":"closed","pull_request":{"merged":true}}`, true},
		{"pull request closed unmerged", "pull_request", `{"action":"closed","pull_request":{"merged":false}}`, false},
		{"pull request opened", "pull_request", `{"action":"opened","pull_request":{}}`, false},
		{"review", "pull_request_review", `{"action":"submitted"}`, true},
		{"other event", "issues", `{}`, false},
	} {
		if code := deliver(t, h, tc.event, tc.body); code != http.StatusAccepted {
			t.Errorf("%s: status %d", tc.name, code)
		}
		got := len(s.sched.triggers) == 1
		for len(s.sched.triggers) > 0 {
			<-s.sched.triggers
		}
		if got != tc.trigger {
			t.Errorf("%s: triggered %v, want %v", tc.name, got, tc.trigger)
		}
	}
	// A forged delivery triggers nothing.
	r, _ := http.NewRequest(http.MethodPost, "/webhook", strings.NewReader(`{"ref":"refs/heads/main"}`))
	r.Header.Set("X-GitHub-Event", "push")
	r.Header.Set("X-Hub-Signature-256", "sha256=00")
	rec := &recorder{header: http.Header{}}
	h.ServeHTTP(rec, r)
	if rec.code != http.StatusUnauthorized || len(s.sched.triggers) != 0 {
		t.Errorf("forged delivery: status %d, triggers %d", rec.code, len(s.sched.triggers))
	}
}

type recorder struct {
	header http.Header
	code   int
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) Write(b []byte) (int, error) { return len(b), nil }
func (r *recorder) WriteHeader(code int)        { r.code = code }

// A merged pull request's webhook makes a pass that grants, with the clock
// standing still: the webhook, not a timer, caused it.
func TestWebhookDeliveryGrants(t *testing.T) {
	t.Parallel()
	w, clk := newClockedWorld(t)
	s := start(t, w.engine(clk), clk, 10*time.Minute)
	eventually(t, "the first pass", func() bool { return s.Passes() == 1 })

	w.merge(1, "alice", "requests/db/alice.yaml", request("alice", "ro", "duration: 2h\n"), t0.Add(-time.Minute))
	if code := deliver(t, s.Handler(), "pull_request", `{"action":"closed","pull_request":{"merged":true}}`); code != http.StatusAccepted {
		t.Fatalf("delivery: %d", code)
	}
	eventually(t, "the grant", func() bool { return len(w.members("ro")) == 1 })
	if diff := cmp.Diff([]string{"alice"}, w.members("ro")); diff != "" {
		t.Errorf("members (-want +got):\n%s", diff)
	}
	if !clk.Now().Equal(t0) {
		t.Errorf("the clock moved")
	}
}

// A request whose window ends in 2 seconds is revoked when the timer set
// to the plan's next change fires, as an expiry, and its file is cleaned up
// once; whether the window comes from `duration` (from the merge time
// GitHub reports) or from `expires`.
func TestTimerRevokesAtExpiry(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, window string
		merged       time.Duration
	}{
		{"duration", "duration: 1m\n", -58 * time.Second},
		{"expires", "expires: " + t0.Add(2*time.Second).Format(time.RFC3339) + "\n", -time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w, clk := newClockedWorld(t)
			w.merge(1, "alice", "requests/db/alice.yaml", request("alice", "ro", tc.window), t0.Add(tc.merged))
			s := start(t, w.engine(clk), clk, time.Hour)
			eventually(t, "the grant", func() bool { return len(w.members("ro")) == 1 })
			eventually(t, "the timer for the expiry", func() bool { return slices.Contains(clk.Delays(), 2*time.Second) })
			clk.Advance(2 * time.Second)
			eventually(t, "the revocation", func() bool { return len(w.members("ro")) == 0 })
			eventually(t, "the cleanup commit", func() bool { return w.remoteFiles() == "" })
			if n := w.cleanupsOf("requests/db/alice.yaml"); n != 1 {
				t.Errorf("%d cleanup commits for the request, want 1", n)
			}
			// Counted as an expiry: a drift revocation has no window to measure.
			eventually(t, "the revocation delay metric", func() bool {
				return strings.Contains(scrape(t, s), "gitgrant_revocation_delay_seconds_count 1")
			})
		})
	}
}

// A gitgrant.yaml pushed to main with a typo is not verified, so the
// verified one stays in force (rules 9, 13, 15): /readyz stays ready but
// says so, nothing granted is revoked, and once main holds the verified
// content again the warning is gone.
func TestReadyzFollowsConfig(t *testing.T) {
	t.Parallel()
	w, clk := newClockedWorld(t)
	w.merge(1, "alice", "requests/db/alice.yaml", request("alice", "ro", "duration: 2h\n"), t0.Add(-time.Minute))
	s := start(t, w.engine(clk), clk, time.Hour)
	h := s.Handler()
	eventually(t, "the grant", func() bool { return len(w.members("ro")) == 1 })
	eventually(t, "the end of the first pass", func() bool { return s.Passes() == 1 })
	if code, body := get(t, h, "/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz = %d %s", code, body)
	}

	steps := []struct {
		config   string
		wantCode int
		wantBody string
	}{
		{"providers: [this is not a map\n", http.StatusOK, "warning: the policy change of"},
		{testConfig, http.StatusOK, "ok\n"},
	}
	for i, st := range steps {
		before := s.Passes()
		w.commitFiles(t0, map[string]string{"gitgrant.yaml": st.config})
		s.Trigger("test")
		eventually(t, fmt.Sprintf("pass %d", i), func() bool { return s.Passes() > before })
		code, body := get(t, h, "/readyz")
		if code != st.wantCode || !strings.Contains(body, st.wantBody) {
			t.Errorf("step %d: /readyz = %d %q, want %d containing %q", i, code, body, st.wantCode, st.wantBody)
		}
		if diff := cmp.Diff([]string{"alice"}, w.members("ro")); diff != "" {
			t.Errorf("step %d: members (-want +got):\n%s", i, diff)
		}
	}
	if code, _ := get(t, h, "/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d", code)
	}
}

// /metrics exposes every named metric in Prometheus text format, with
// provider errors counted per provider and GitHub calls from the transport.
func TestMetricsExposed(t *testing.T) {
	t.Parallel()
	w, clk := newClockedWorld(t)
	w.db = fake.New(fake.Options{Name: "db", Roles: []string{"ro", "rw"}, Clock: clk, Fail: func(c fake.Call) error {
		if c.Op == fake.OpMembers && c.Role == "rw" {
			return fake.Down("db")
		}
		return nil
	}})
	w.merge(1, "alice", "requests/db/alice.yaml", request("alice", "ro", "duration: 2h\n"), t0.Add(-time.Minute))
	s := start(t, w.engine(clk), clk, time.Hour)
	eventually(t, "the grant", func() bool { return len(w.members("ro")) == 1 })
	eventually(t, "the pass's metrics", func() bool {
		return s.Passes() == 1 && strings.Contains(scrape(t, s), `gitgrant_passes_total{result="partial"} 1`)
	})
	body := scrape(t, s)
	for _, want := range missing(body,
		`gitgrant_active_grants{provider="db",role="ro"} 1`,
		`gitgrant_pass_duration_seconds_bucket{result="partial",le="+Inf"} 1`,
		`gitgrant_passes_total{result="partial"} 1`,
		"gitgrant_revocation_delay_seconds_count 0",
		"gitgrant_merge_to_grant_seconds_count 1",
		`gitgrant_provider_errors_total{op="members",provider="db"} 1`,
		"gitgrant_github_requests_total ",
		"gitgrant_github_rate_limit_waits_total 0",
		"gitgrant_last_successful_pass_timestamp_seconds 0",
		"# TYPE gitgrant_pass_duration_seconds histogram",
	) {
		t.Errorf("/metrics lacks %q", want)
	}
	if strings.Contains(body, "alice") || strings.Contains(body, "tok") {
		t.Errorf("/metrics names a principal or a token:\n%s", grep(body, "gitgrant_"))
	}
}

func scrape(t *testing.T, s *Server) string {
	code, body := get(t, s.Handler(), "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics = %d", code)
	}
	return body
}

// missing returns the wanted strings that body does not contain.
func missing(body string, want ...string) []string {
	var out []string
	for _, w := range want {
		if !strings.Contains(body, w) {
			out = append(out, w)
		}
	}
	return out
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// Two reconcilers (two replicas, or two workflow runs) planning and
// applying at the same time against the same provider and git remote
// converge: access ends as desired, the expired file is removed by
// exactly one cleanup commit, and nothing was force-pushed.
func TestTwoReconcilersConverge(t *testing.T) {
	t.Parallel()
	clock := fakeclock.New(t0)
	w := newWorld(t, clock)
	w.db.Set("ro", map[string]time.Time{"bob": {}, "mallory": {}})
	w.merge(1, "bob", "requests/db/bob.yaml", request("bob", "ro", "duration: 1h\n"), t0.Add(-3*time.Hour))
	w.merge(2, "alice", "requests/db/alice.yaml", request("alice", "ro", "duration: 2h\n"), t0.Add(-time.Minute))
	w.merge(3, "alice", "requests/db/alice-rw.yaml", request("alice", "rw", "duration: 30m\n"), t0.Add(-time.Minute))
	before := git(t, w.Remote, time.Time{}, "admin", "rev-parse", "main")
	engines := []*engine.Engine{w.engine(clock), w.engine(clock)}

	for round := range 3 {
		var wg sync.WaitGroup
		errs := make([]error, len(engines))
		for i, eng := range engines {
			wg.Go(func() {
				p, err := eng.Plan(context.Background(), false)
				if err != nil {
					errs[i] = err
					return
				}
				defer p.Close()
				_, errs[i] = eng.Apply(context.Background(), p, engine.ApplyOptions{Cleanup: true, Commit: commitAt(nil)})
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("round %d, engine %d: %v", round, i, err)
			}
		}
	}
	if diff := cmp.Diff([]string{"alice"}, w.members("ro")); diff != "" {
		t.Errorf("ro members (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"alice"}, w.members("rw")); diff != "" {
		t.Errorf("rw members (-want +got):\n%s", diff)
	}
	if n := w.cleanupsOf("requests/db/bob.yaml"); n != 1 {
		t.Errorf("%d cleanup commits for the expired request, want exactly 1", n)
	}
	if diff := cmp.Diff("requests/db/alice-rw.yaml\nrequests/db/alice.yaml", w.remoteFiles()); diff != "" {
		t.Errorf("requests on the remote (-want +got):\n%s", diff)
	}
	git(t, w.Remote, time.Time{}, "admin", "merge-base", "--is-ancestor", before, "main") // fails the test if history was rewritten
	notes := git(t, w.Remote, time.Time{}, "admin", "log", "-p", "--format=", "refs/notes/gitgrant")
	if n := strings.Count(notes, `+{"version":1,"event":"granted","request":"requests/db/alice.yaml"`); n != 1 {
		t.Errorf("the grant of alice.yaml is recorded %d times in the notes, want 1:\n%s", n, notes)
	}
}

// With the remote unreachable a pass plans from the last fetched main and
// only revokes (rule 7): the expiry is revoked, a request starting now is
// not granted, and /readyz says why. Once the remote is back, the grant
// and the cleanup follow.
func TestRemoteUnreachableOnlyRevokes(t *testing.T) {
	t.Parallel()
	w, clk := newClockedWorld(t)
	w.merge(1, "alice", "requests/db/alice.yaml", request("alice", "ro", "duration: 1m\n"), t0.Add(-58*time.Second))
	w.merge(2, "bob", "requests/db/bob.yaml", request("bob", "ro", "duration: 1h\nstarts: "+t0.Add(2*time.Second).Format(time.RFC3339)+"\n"), t0.Add(-time.Minute))
	s := start(t, w.engine(clk), clk, time.Hour)
	h := s.Handler()
	eventually(t, "alice's grant", func() bool { return slices.Equal(w.members("ro"), []string{"alice"}) })
	eventually(t, "the timer", func() bool { return slices.Contains(clk.Delays(), 2*time.Second) })

	gone := w.Remote + ".gone"
	if err := os.Rename(w.Remote, gone); err != nil {
		t.Fatal(err)
	}
	before := s.Passes()
	clk.Advance(2 * time.Second)
	eventually(t, "the pass at expiry", func() bool { return s.Passes() > before })
	if got := w.members("ro"); len(got) != 0 {
		t.Errorf("members with the remote down = %v; want alice revoked and bob not granted", got)
	}
	if code, body := get(t, h, "/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "fetch") {
		t.Errorf("/readyz with the remote down = %d %q", code, body)
	}

	if err := os.Rename(gone, w.Remote); err != nil {
		t.Fatal(err)
	}
	s.Trigger("test")
	eventually(t, "bob's grant", func() bool { return slices.Equal(w.members("ro"), []string{"bob"}) })
	eventually(t, "the cleanup", func() bool { return w.remoteFiles() == "requests/db/bob.yaml" })
	eventually(t, "readiness", func() bool { code, _ := get(t, h, "/readyz"); return code == http.StatusOK })
}

// At shutdown the running pass finishes with a live context (its grant is
// made and recorded in git) before Run returns.
func TestShutdownFinishesRunningPass(t *testing.T) {
	t.Parallel()
	w, clk := newClockedWorld(t)
	inGrant, release := make(chan struct{}), make(chan struct{})
	w.db = fake.New(fake.Options{Name: "db", Roles: []string{"ro", "rw"}, Clock: clk, Fail: func(c fake.Call) error {
		if c.Op == fake.OpGrant {
			close(inGrant)
			<-release
		}
		return nil
	}})
	w.merge(1, "alice", "requests/db/alice.yaml", request("alice", "ro", "duration: 2h\n"), t0.Add(-time.Minute))
	s := New(w.engine(clk), Options{Apply: engine.ApplyOptions{Cleanup: true, Commit: commitAt(clk)}, Clock: clk, Logger: testLogger(t)})
	cancel, done := runLoopback(t, s)
	<-inGrant
	cancel()
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if diff := cmp.Diff([]string{"alice"}, w.members("ro")); diff != "" {
		t.Errorf("members (-want +got):\n%s", diff)
	}
	notes := git(t, w.Remote, time.Time{}, "admin", "log", "-p", "--format=", "refs/notes/gitgrant")
	if !strings.Contains(notes, `"event":"granted","request":"requests/db/alice.yaml"`) {
		t.Errorf("the pass was cut short: no grant note on the remote:\n%s", notes)
	}
}

// A pass that does not finish within the shutdown grace is cancelled, and
// Run returns.
func TestShutdownGraceCancelsPass(t *testing.T) {
	t.Parallel()
	w, clk := newClockedWorld(t)
	s := New(w.engine(clk), Options{Clock: clk, ShutdownGrace: 45 * time.Second})
	started := make(chan struct{})
	s.sched.Pass = func(ctx context.Context, reason string) (time.Time, error) {
		close(started)
		<-ctx.Done()
		return time.Time{}, ctx.Err()
	}
	cancel, done := runLoopback(t, s)
	<-started
	cancel()
	eventually(t, "the grace timer", func() bool { return slices.Contains(clk.Delays(), 45*time.Second) })
	clk.Advance(45 * time.Second)
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

// A GitHub that accepts connections and never answers holds up neither
// the expiry's revocation nor the next pass (rule 7): verification and
// feedback are bounded by the engine's GitHub budget.
func TestHangingGitHubDoesNotHoldRevocations(t *testing.T) {
	t.Parallel()
	w, clk := newClockedWorld(t)
	w.db.Set("ro", map[string]time.Time{"bob": {}})
	w.merge(1, "bob", "requests/db/bob.yaml", request("bob", "ro", "duration: 1h\n"), t0.Add(-3*time.Hour))
	stop := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	}))
	t.Cleanup(hang.Close)
	t.Cleanup(func() { close(stop) })
	eng := w.engine(clk)
	cl, err := ghapi.New(ghapi.Config{Token: "tok", APIURL: hang.URL + "/", Repository: "acme/access"}, ghapi.Options{Clock: fakeclock.NewAuto(t0)})
	if err != nil {
		t.Fatal(err)
	}
	eng.GitHub, eng.Verifier = cl, approval.New(cl, engine.FileReader{Repo: eng.Repo}, &approval.MemoryCache{})
	eng.GitHubBudget = 200 * time.Millisecond
	s := start(t, eng, clk, time.Hour)
	eventually(t, "the revocation", func() bool { return len(w.members("ro")) == 0 })
	eventually(t, "the cleanup", func() bool { return w.remoteFiles() == "" })
	eventually(t, "the end of the pass", func() bool { return s.Passes() == 1 })
	s.Trigger("test")
	eventually(t, "a second pass", func() bool { return s.Passes() == 2 })
}

// Every metric family, and every series whose labels are known (results,
// the providers and roles on main), exists from the first scrape, before
// any pass ran: alerts on increase() see them from 0, dashboards show 0.
func TestMetricsExistBeforeFirstPass(t *testing.T) {
	t.Parallel()
	clk := fakeclock.New(t0)
	for _, withGitHub := range []bool{true, false} {
		w := newWorld(t, clk)
		eng := w.engine(clk)
		if !withGitHub {
			eng.GitHub, eng.Verifier = nil, nil
		}
		body := scrape(t, New(eng, Options{Clock: clk}))
		for _, family := range []string{
			"gitgrant_active_grants", "gitgrant_pass_duration_seconds", "gitgrant_passes_total",
			"gitgrant_revocation_delay_seconds", "gitgrant_merge_to_grant_seconds", "gitgrant_provider_errors_total",
			"gitgrant_last_successful_pass_timestamp_seconds", "gitgrant_webhook_deliveries_total",
			"gitgrant_policy_unverified_changes", "gitgrant_policy_missing", "gitgrant_brake_held_actions",
			"gitgrant_github_requests_total", "gitgrant_github_not_modified_total", "gitgrant_github_retries_total",
			"gitgrant_github_rate_limit_waits_total", "gitgrant_github_server_errors_total",
		} {
			if !strings.Contains(body, "# TYPE "+family+" ") {
				t.Errorf("GitHub %v: /metrics before the first pass lacks the family %s", withGitHub, family)
			}
		}
		for _, series := range []string{
			`gitgrant_active_grants{provider="db",role="ro"} 0`,
			`gitgrant_active_grants{provider="db",role="rw"} 0`,
			`gitgrant_provider_errors_total{op="members",provider="db"} 0`,
			`gitgrant_provider_errors_total{op="grant",provider="db"} 0`,
			`gitgrant_provider_errors_total{op="revoke",provider="db"} 0`,
			`gitgrant_passes_total{result="ok"} 0`,
			`gitgrant_passes_total{result="partial"} 0`,
			`gitgrant_passes_total{result="error"} 0`,
			`gitgrant_pass_duration_seconds_count{result="error"} 0`,
			`gitgrant_webhook_deliveries_total{event="push",outcome="bad_signature"} 0`,
			"gitgrant_github_requests_total 0",
		} {
			if !strings.Contains(body, series+"\n") {
				t.Errorf("GitHub %v: /metrics before the first pass lacks %s", withGitHub, series)
			}
		}
	}
}

package ghapi_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gitgrant/gitgrant/internal/testing/fakeclock"

	"github.com/google/go-cmp/cmp"

	"github.com/gitgrant/gitgrant/internal/ghapi"
	"github.com/gitgrant/gitgrant/internal/ghfake"
)

var t0 = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)

func newClient(t *testing.T, gh *ghfake.Server, clk *fakeclock.Clock, cfg ghapi.Config) *ghapi.Client {
	t.Helper()
	cfg.APIURL, cfg.Repository = gh.BaseURL(), "acme/access"
	c, err := ghapi.New(cfg, ghapi.Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// newRepoClient is a fake GitHub with the repository acme/access and a
// client of it whose clock is at t0.
func newRepoClient(t *testing.T) (*ghfake.Server, *ghfake.Repo, *ghapi.Client) {
	t.Helper()
	gh := ghfake.New(nil)
	t.Cleanup(gh.Close)
	repo := gh.AddRepo("acme", "access", "main")
	return gh, repo, newClient(t, gh, fakeclock.NewAuto(t0), ghapi.Config{})
}

// repoWithFaults is a fake GitHub with the repository acme/access, whose
// calls to it meet faults first.
func repoWithFaults(t *testing.T, faults ...ghfake.Fault) *ghfake.Server {
	t.Helper()
	gh := ghfake.New(nil)
	t.Cleanup(gh.Close)
	gh.AddRepo("acme", "access", "main")
	for _, f := range faults {
		f.PathContains = "/repos/acme/access"
		gh.Inject(f)
	}
	return gh
}

func reset(at time.Time) string { return strconv.FormatInt(at.Unix(), 10) }

func TestRateLimitsAndRetries(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		faults     []ghfake.Fault
		wantSleeps func(d []time.Duration) bool
		wantErr    string
		want       ghapi.Stats
	}{
		{
			name:       "primary limit: 403 with no requests left waits until the reset",
			faults:     []ghfake.Fault{{Status: 403, Header: map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset(t0.Add(30 * time.Second))}, Body: `{"message":"API rate limit exceeded"}`}},
			wantSleeps: slept(31 * time.Second),
			want:       ghapi.Stats{Requests: 2, Retries: 1, RateLimitWaits: 1},
		},
		{
			name:       "secondary limit: 429 with Retry-After",
			faults:     []ghfake.Fault{{Status: 429, Header: map[string]string{"Retry-After": "7"}}},
			wantSleeps: slept(7 * time.Second),
			want:       ghapi.Stats{Requests: 2, Retries: 1, RateLimitWaits: 1},
		},
		{
			name:       "secondary limit without headers waits a minute",
			faults:     []ghfake.Fault{{Status: 403, Body: `{"message":"You have exceeded a secondary rate limit."}`}},
			wantSleeps: slept(time.Minute),
			want:       ghapi.Stats{Requests: 2, Retries: 1, RateLimitWaits: 1},
		},
		{
			name:       "a reset too far away fails at once with the time to retry",
			faults:     []ghfake.Fault{{Status: 403, Header: map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset(t0.Add(time.Hour))}}},
			wantSleeps: slept(),
			wantErr:    "GitHub primary rate limit: retry after 2026-11-20T11:00:01Z",
			want:       ghapi.Stats{Requests: 1},
		},
		{
			name:   "5xx on a GET is retried with growing, jittered, bounded backoff",
			faults: []ghfake.Fault{{Status: 502, Times: 3}},
			wantSleeps: func(d []time.Duration) bool {
				return len(d) == 3 && between(d[0], 250*time.Millisecond, 500*time.Millisecond) &&
					between(d[1], 500*time.Millisecond, time.Second) && between(d[2], time.Second, 2*time.Second)
			},
			want: ghapi.Stats{Requests: 4, Retries: 3, ServerErrors: 3},
		},
		{
			name:       "5xx with Retry-After waits that long",
			faults:     []ghfake.Fault{{Status: 503, Header: map[string]string{"Retry-After": "9"}}},
			wantSleeps: slept(9 * time.Second),
			want:       ghapi.Stats{Requests: 2, Retries: 1, ServerErrors: 1},
		},
		{
			name:       "a GitHub that keeps failing is given up on after the retries",
			faults:     []ghfake.Fault{{Status: 500, Times: 100}},
			wantSleeps: func(d []time.Duration) bool { return len(d) == 4 },
			wantErr:    "500",
			want:       ghapi.Stats{Requests: 5, Retries: 4, ServerErrors: 5},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clk := fakeclock.NewAuto(t0)
			c := newClient(t, repoWithFaults(t, tt.faults...), clk, ghapi.Config{})
			branch, err := c.DefaultBranch(context.Background())
			switch {
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
			case tt.wantErr == "" && err != nil:
				t.Fatal(err)
			case tt.wantErr == "" && branch != "main":
				t.Errorf("default branch %q", branch)
			}
			if !tt.wantSleeps(clk.Delays()) {
				t.Errorf("sleeps %v", clk.Delays())
			}
			if diff := cmp.Diff(tt.want, c.Transport.Stats()); diff != "" {
				t.Errorf("stats (-want +got):\n%s", diff)
			}
		})
	}
}

func between(d, lo, hi time.Duration) bool { return d >= lo && d <= hi }

// slept is a wantSleeps for exactly these waits, in this order.
func slept(want ...time.Duration) func([]time.Duration) bool {
	return func(d []time.Duration) bool { return slices.Equal(d, want) }
}

func TestRateLimitedErrorCarriesTheTime(t *testing.T) {
	t.Parallel()
	gh := repoWithFaults(t, ghfake.Fault{Status: 429, Header: map[string]string{"Retry-After": "3600"}})
	clk := fakeclock.NewAuto(t0)
	c := newClient(t, gh, clk, ghapi.Config{})
	_, err := c.DefaultBranch(context.Background())
	var rl *ghapi.RateLimitedError
	if !errors.As(err, &rl) || !rl.Secondary || !rl.Until.Equal(t0.Add(time.Hour)) {
		t.Fatalf("err = %#v", err)
	}
}

// After a response that used up the primary limit, the next request waits
// for the reset before it is sent, instead of earning a 403.
func TestWaitsBeforeSendingWhenNoneRemain(t *testing.T) {
	t.Parallel()
	var hits int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits++
		w.Header().Set("X-RateLimit-Remaining", "0")
		w.Header().Set("X-RateLimit-Reset", reset(t0.Add(10*time.Second)))
		_, _ = io.WriteString(w, "{}")
	}))
	defer srv.Close()
	clk := fakeclock.NewAuto(t0)
	tr := &ghapi.Transport{Clock: clk}
	client := &http.Client{Transport: tr}
	for range 2 {
		resp, err := client.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if diff := cmp.Diff([]time.Duration{11 * time.Second}, clk.Delays()); diff != "" {
		t.Errorf("sleeps (-want +got):\n%s", diff)
	}
}

func TestRetriesRewindTheBodyOfIdempotentCalls(t *testing.T) {
	t.Parallel()
	var bodies []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		bodies = append(bodies, r.Method+" "+string(b))
		if len(bodies) == 1 || r.Method == http.MethodPost {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	clk := fakeclock.NewAuto(t0)
	client := &http.Client{Transport: &ghapi.Transport{Clock: clk}}
	req, _ := http.NewRequest(http.MethodPut, srv.URL, strings.NewReader(`{"x":1}`))
	resp, err := client.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("PUT: %v %v", resp, err)
	}
	resp.Body.Close()
	// A POST is not idempotent: one attempt, its 502 returned.
	resp, err = client.Post(srv.URL, "application/json", strings.NewReader(`{"y":2}`))
	if err != nil || resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("POST: %v %v", resp, err)
	}
	resp.Body.Close()
	want := []string{`PUT {"x":1}`, `PUT {"x":1}`, `POST {"y":2}`}
	if diff := cmp.Diff(want, bodies); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}

func TestWaitIsContextAware(t *testing.T) {
	t.Parallel()
	gh := repoWithFaults(t, ghfake.Fault{Status: 429, Header: map[string]string{"Retry-After": "5"}})
	// A clock that never moves: the five-second wait can only end through
	// the context, so a wait that ignored it would hang the test.
	c, err := ghapi.New(ghapi.Config{APIURL: gh.BaseURL(), Repository: "acme/access"}, ghapi.Options{Clock: fakeclock.New(t0)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = c.DefaultBranch(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want the context's deadline", err)
	}
}

func TestConditionalRequests(t *testing.T) {
	t.Parallel()
	gh := repoWithFaults(t)
	clk := fakeclock.NewAuto(t0)
	c := newClient(t, gh, clk, ghapi.Config{})
	for i := range 3 {
		branch, err := c.DefaultBranch(context.Background())
		if err != nil || branch != "main" {
			t.Fatalf("call %d: %q %v", i, branch, err)
		}
	}
	var statuses []int
	for _, r := range gh.Requests() {
		statuses = append(statuses, r.Status)
	}
	if diff := cmp.Diff([]int{200, 304, 304}, statuses); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(ghapi.Stats{Requests: 3, NotModified: 2}, c.Transport.Stats()); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}
}

func TestTokenAuthAndBadToken(t *testing.T) {
	t.Parallel()
	gh := repoWithFaults(t)
	gh.AddToken("good-token-123")
	clk := fakeclock.NewAuto(t0)
	if _, err := newClient(t, gh, clk, ghapi.Config{Token: "good-token-123"}).DefaultBranch(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, err := newClient(t, gh, clk, ghapi.Config{Token: "wrong-token-456"}).DefaultBranch(context.Background())
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("err = %v, want 401", err)
	}
	if strings.Contains(err.Error(), "wrong-token-456") {
		t.Errorf("the error shows the token: %v", err)
	}
}

// Retries are logged with method and path; the token never appears.
func TestRetriesAreLoggedWithoutSecrets(t *testing.T) {
	t.Parallel()
	gh := repoWithFaults(t, ghfake.Fault{Status: 502}, ghfake.Fault{Status: 429, Header: map[string]string{"Retry-After": "1"}})
	gh.AddToken("tok-secret-789")
	var logs bytes.Buffer
	clk := fakeclock.NewAuto(t0)
	c, err := ghapi.New(ghapi.Config{APIURL: gh.BaseURL(), Repository: "acme/access", Token: "tok-secret-789"},
		ghapi.Options{Clock: clk, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.DefaultBranch(context.Background()); err != nil {
		t.Fatal(err)
	}
	out := logs.String()
	for _, want := range []string{"GitHub server error: retrying", "status=502", "GitHub rate limit: waiting", "path=/api/v3/repos/acme/access"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "tok-secret-789") {
		t.Errorf("the token was logged:\n%s", out)
	}
}

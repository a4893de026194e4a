package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/testing/fakeclock"
	"github.com/gitgrant/gitgrant/providers"
)

// t0 is far from the wall clock on purpose: nothing may compare it with a
// real deadline.
var t0 = time.Date(2031, 3, 4, 9, 0, 0, 0, time.UTC)

// answer is one scripted response of the test server.
type answer struct {
	status int
	header map[string]string
	body   string
}

// server answers with its script in order (then 200 {}), and records each
// request as "METHOD uri auth body".
type server struct {
	url string
	mu  sync.Mutex
	// script is what the next requests get.
	script []answer
	got    []string
}

func newServer(t *testing.T, script ...answer) *server {
	s := &server{script: script}
	mux := http.NewServeMux()
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.got = append(s.got, strings.TrimSpace(fmt.Sprintf("%s %s %s %s", r.Method, r.URL.RequestURI(), r.Header.Get("Authorization"), body)))
		a := answer{status: http.StatusOK, body: "{}"}
		if len(s.script) > 0 {
			a, s.script = s.script[0], s.script[1:]
		}
		s.mu.Unlock()
		for k, v := range a.header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(a.status)
		io.WriteString(w, a.body)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("request outside /api/: %s %s", r.Method, r.URL)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	s.url = srv.URL + "/api/"
	return s
}

func (s *server) requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.got...)
}

func newClient(t *testing.T, s *server, clock gitgrant.Clock, cfg Config) *Client {
	t.Helper()
	base, err := url.Parse(s.url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.API, cfg.System, cfg.Provider, cfg.BaseURL = "Test API", "test p", "p", base
	if cfg.MaxWait == 0 {
		cfg.MaxWait = time.Hour
	}
	cfg.Problem = func(body []byte) (string, string) {
		var e struct{ Code, Message string }
		json.Unmarshal(body, &e)
		return e.Code, e.Message
	}
	deps := providers.DefaultDeps()
	deps.Clock = clock
	return New(cfg, deps)
}

func header(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

var tooMany = answer{status: http.StatusTooManyRequests, body: `{"code":"TooMany","message":"slow down"}`}

func with(a answer, kv ...string) answer {
	a.header = header(kv...)
	return a
}

// TestRetries: what an answer says decides what the client waits and
// tries again; the waits are on the client's clock.
func TestRetries(t *testing.T) {
	t.Parallel()
	date := t0.Add(-time.Hour) // the server's clock is an hour behind ours
	tests := []struct {
		name      string
		cfg       Config
		script    []answer
		wantWaits []time.Duration
		wantCalls int
		wantErr   string
	}{
		{name: "429 with Retry-After in seconds", script: []answer{with(tooMany, "Retry-After", "3")},
			wantWaits: []time.Duration{3 * time.Second}, wantCalls: 2},
		{name: "Retry-After 0 is a second", script: []answer{with(tooMany, "Retry-After", "0")},
			wantWaits: []time.Duration{time.Second}, wantCalls: 2},
		{name: "Retry-After as a date, measured from the server's Date",
			script:    []answer{with(tooMany, "Date", date.Format(http.TimeFormat), "Retry-After", date.Add(5*time.Second).Format(http.TimeFormat))},
			wantWaits: []time.Duration{5 * time.Second}, wantCalls: 2},
		{name: "a window's reset, measured from the server's Date, and a second more",
			script:    []answer{with(tooMany, "Date", date.Format(http.TimeFormat), "X-Rate-Limit-Remaining", "0", "X-Rate-Limit-Reset", strconv.FormatInt(date.Add(20*time.Second).Unix(), 10))},
			wantWaits: []time.Duration{21 * time.Second}, wantCalls: 2},
		{name: "GitHub's spelling of the window", script: []answer{with(tooMany, "Date", date.Format(http.TimeFormat), "X-RateLimit-Reset", strconv.FormatInt(date.Add(9*time.Second).Unix(), 10))},
			wantWaits: []time.Duration{10 * time.Second}, wantCalls: 2},
		{name: "without headers: the backoff, doubling", cfg: Config{Backoff: Backoff{First: 2 * time.Second, Max: 5 * time.Second}},
			script:    []answer{tooMany, tooMany, tooMany},
			wantWaits: []time.Duration{2 * time.Second, 4 * time.Second, 5 * time.Second}, wantCalls: 4},
		{name: "503 that says when to come back", script: []answer{with(answer{status: 503}, "Retry-After", "2")},
			wantWaits: []time.Duration{2 * time.Second}, wantCalls: 2},
		{name: "503 that does not: no retries by default", script: []answer{{status: 503}},
			wantCalls: 1, wantErr: "HTTP 503"},
		{name: "5xx retried as configured", cfg: Config{ServerRetries: 2}, script: []answer{{status: 502}, {status: 500}},
			wantWaits: []time.Duration{200 * time.Millisecond, 400 * time.Millisecond}, wantCalls: 3},
		{name: "5xx after the retries", cfg: Config{ServerRetries: 1}, script: []answer{{status: 502}, {status: 500, body: `{"code":"Boom"}`}},
			wantWaits: []time.Duration{200 * time.Millisecond}, wantCalls: 2, wantErr: "HTTP 500 Boom"},
		{name: "rate limited more often than allowed", cfg: Config{RateLimitRetries: 2},
			script:    []answer{with(tooMany, "Retry-After", "1"), with(tooMany, "Retry-After", "1"), with(tooMany, "Retry-After", "1")},
			wantWaits: []time.Duration{time.Second, time.Second}, wantCalls: 3, wantErr: "rate limited by Test API until 2031-03-04T09:00:03Z: HTTP 429 TooMany: slow down"},
		{name: "a wait longer than MaxWait is not started", cfg: Config{MaxWait: time.Minute}, script: []answer{with(tooMany, "Retry-After", "3600")},
			wantCalls: 1, wantErr: "rate limited by Test API until 2031-03-04T10:00:00Z: HTTP 429 TooMany: slow down"},
		{name: "an error body is read", script: []answer{{status: 400, body: `{"code":"Bad","message":"no such thing"}`}},
			wantCalls: 1, wantErr: "HTTP 400 Bad: no such thing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newServer(t, tt.script...)
			clock := fakeclock.NewAuto(t0)
			c := newClient(t, s, clock, tt.cfg)
			_, err := c.Do(t.Context(), Call{Method: http.MethodGet, Path: "things"}, nil)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr) {
				t.Errorf("Do: err = %v, want %q", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.wantWaits, clock.Delays()); diff != "" {
				t.Errorf("waits (-want +got):\n%s", diff)
			}
			if got := len(s.requests()); got != tt.wantCalls || c.Calls() != int64(got) {
				t.Errorf("requests = %d (Calls %d), want %d", got, c.Calls(), tt.wantCalls)
			}
		})
	}
}

// TestWaitPastTheDeadline: the clock is years from the wall clock, the
// context has a second left, and the API asks for half a minute: the wait
// is not started (the wait and the deadline are compared as durations).
func TestWaitPastTheDeadline(t *testing.T) {
	t.Parallel()
	s := newServer(t, with(tooMany, "Retry-After", "30"))
	clock := fakeclock.NewAuto(t0)
	c := newClient(t, s, clock, Config{})
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	_, err := c.Do(ctx, Call{Method: http.MethodGet, Path: "things"}, nil)
	var limited *RateLimited
	if !errors.As(err, &limited) || !limited.Until.Equal(t0.Add(30*time.Second)) {
		t.Fatalf("Do: err = %v, want RateLimited until %v", err, t0.Add(30*time.Second))
	}
	if d := clock.Delays(); len(d) != 0 {
		t.Errorf("waited %v, want no wait", d)
	}
}

// TestPausesAreShared: a pause an answer asked for holds back the next
// call of its bucket, without a request, and no other bucket; a spent
// window (no requests remaining) pauses its bucket before any refusal.
func TestPausesAreShared(t *testing.T) {
	t.Parallel()
	date := t0.Format(http.TimeFormat)
	reset := strconv.FormatInt(t0.Add(30*time.Second).Unix(), 10)
	s := newServer(t,
		with(answer{status: 200, body: "{}"}, "Date", date, "X-Rate-Limit-Remaining", "0", "X-Rate-Limit-Reset", reset),
		answer{status: 200, body: "{}"},
		answer{status: 200, body: "{}"},
	)
	clock := fakeclock.NewAuto(t0)
	c := newClient(t, s, clock, Config{MaxWait: time.Minute})
	ctx := t.Context()
	for _, bucket := range []string{"users", "groups", "users"} {
		if _, err := c.Do(ctx, Call{Method: http.MethodGet, Path: bucket, Bucket: bucket}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if diff := cmp.Diff([]time.Duration{31 * time.Second}, clock.Delays()); diff != "" {
		t.Errorf("waits (-want +got): only the second call of users waits\n%s", diff)
	}
	if n, total := c.Waited(); n != 1 || total != 31*time.Second {
		t.Errorf("Waited = %d, %v; want 1, 31s", n, total)
	}

	// A pause too long to wait fails the next calls of its bucket at once,
	// without asking the API again.
	s2 := newServer(t, with(tooMany, "Retry-After", "600"))
	c2 := newClient(t, s2, fakeclock.NewAuto(t0), Config{MaxWait: time.Minute})
	for range 2 {
		var limited *RateLimited
		if _, err := c2.Do(ctx, Call{Method: http.MethodGet, Path: "x"}, nil); !errors.As(err, &limited) {
			t.Errorf("Do: err = %v, want RateLimited", err)
		}
	}
	if n := len(s2.requests()); n != 1 {
		t.Errorf("requests = %d, want 1", n)
	}
}

// TestHostPinning: requests go to the base URL's host only, whatever a
// path or a next-page link says.
func TestHostPinning(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	c := newClient(t, s, fakeclock.NewAuto(t0), Config{})
	u, _ := url.Parse(s.url)
	tests := []struct {
		path    string
		query   url.Values
		want    string
		refused bool
	}{
		{path: "users/a@example.com?limit=2", query: url.Values{"after": {"x y"}}, want: "GET /api/users/a@example.com?limit=2&after=x+y"},
		{path: "groups/1/members?$select=id,name&$top=5", want: "GET /api/groups/1/members?$select=id,name&$top=5"},
		{path: s.url + "users?page=2", want: "GET /api/users?page=2"},
		{path: "https://evil.example/api/users", refused: true},
		{path: "//evil.example/api/users", refused: true},
		{path: "http://user:pw@" + u.Host + "/api/users", refused: true},
		{path: "https://" + u.Host + "/api/users", refused: true}, // another scheme
	}
	for _, tt := range tests {
		_, err := c.Do(t.Context(), Call{Method: http.MethodGet, Path: tt.path, Query: tt.query}, nil)
		if tt.refused != (err != nil) {
			t.Errorf("Do(%q): err = %v, refused %v", tt.path, err, tt.refused)
		}
		if tt.refused && err != nil && strings.Contains(err.Error(), "pw") {
			t.Errorf("Do(%q): the error quotes the password: %v", tt.path, err)
		}
	}
	var want []string
	for _, tt := range tests {
		if !tt.refused {
			want = append(want, tt.want)
		}
	}
	if diff := cmp.Diff(want, s.requests()); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}

// TestJSON: a body is sent as JSON and an answer decoded.
func TestJSON(t *testing.T) {
	t.Parallel()
	s := newServer(t, answer{status: 201, body: `{"id":"42"}`}, answer{status: 204})
	c := newClient(t, s, fakeclock.NewAuto(t0), Config{})
	var out struct{ ID string }
	if _, err := c.Do(t.Context(), Call{Method: http.MethodPost, Path: "things", Body: map[string]int{"n": 1}}, &out); err != nil || out.ID != "42" {
		t.Errorf("Do = %+v, %v; want id 42", out, err)
	}
	if _, err := c.Do(t.Context(), Call{Method: http.MethodDelete, Path: "things/42"}, &out); err != nil {
		t.Errorf("Do on 204: %v", err)
	}
	want := []string{`POST /api/things  {"n":1}`, "DELETE /api/things/42"}
	if diff := cmp.Diff(want, s.requests()); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}

// TestPacing: paced requests are an interval apart on the clock.
func TestPacing(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	clock := fakeclock.NewAuto(t0)
	c := newClient(t, s, clock, Config{Interval: Interval(4)})
	for range 4 {
		if _, err := c.Do(t.Context(), Call{Method: http.MethodGet, Path: "x"}, nil); err != nil {
			t.Fatal(err)
		}
	}
	want := []time.Duration{250 * time.Millisecond, 250 * time.Millisecond, 250 * time.Millisecond}
	if diff := cmp.Diff(want, clock.Delays()); diff != "" {
		t.Errorf("waits (-want +got):\n%s", diff)
	}
	if Interval(0) != 0 {
		t.Errorf("Interval(0) = %v, want no pacing", Interval(0))
	}
}

// TestReachable: a call that could not reach the API, or got a server
// error, makes the client unreachable until one gets through.
func TestReachable(t *testing.T) {
	t.Parallel()
	s := newServer(t, answer{status: 503})
	c := newClient(t, s, fakeclock.NewAuto(t0), Config{})
	steps := []struct {
		path string
		want bool
	}{
		{"x", false}, // 503
		{"x", true},  // 200
	}
	if !c.Reachable() {
		t.Error("a new client is not reachable")
	}
	for i, st := range steps {
		c.Do(t.Context(), Call{Method: http.MethodGet, Path: st.path}, nil)
		if c.Reachable() != st.want {
			t.Errorf("after call %d: Reachable = %v, want %v", i, c.Reachable(), st.want)
		}
	}
	down := newClient(t, &server{url: "http://127.0.0.1:1/api/"}, fakeclock.NewAuto(t0), Config{})
	if _, err := down.Do(t.Context(), Call{Method: http.MethodGet, Path: "x"}, nil); err == nil || down.Reachable() {
		t.Errorf("against a closed port: err = %v, Reachable = %v", err, down.Reachable())
	}
}

func TestNextLink(t *testing.T) {
	t.Parallel()
	tests := []struct {
		links []string
		want  string
	}{
		{nil, ""},
		{[]string{`<https://x/users?limit=2>; rel="self"`}, ""},
		{[]string{`<https://x/users?limit=2>; rel="self", <https://x/users?after=b&limit=2>; rel="next"`}, "https://x/users?after=b&limit=2"},
		{[]string{`<https://x/a>; rel="self"`, `<https://x/b>; rel=next`}, "https://x/b"},
	}
	for _, tt := range tests {
		h := http.Header{"Link": tt.links}
		if got := NextLink(h); got != tt.want {
			t.Errorf("NextLink(%q) = %q, want %q", tt.links, got, tt.want)
		}
	}
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	b := Backoff{First: 2 * time.Second, Max: 30 * time.Second}
	var got []time.Duration
	for n := 1; n <= 6; n++ {
		got = append(got, b.Nth(n))
	}
	want := []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 30 * time.Second, 30 * time.Second}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Nth (-want +got):\n%s", diff)
	}
	if d := (Backoff{First: time.Second}).Nth(3); d != 4*time.Second {
		t.Errorf("a Backoff without a maximum waits %v, want 4s", d)
	}
}

// TestSettle: a change is asked after until reads show it, with pauses
// that double, and no longer than the total allows.
func TestSettle(t *testing.T) {
	t.Parallel()
	b := Backoff{First: 250 * time.Millisecond, Max: time.Second}
	tests := []struct {
		name      string
		showsAt   int // the ask that sees the change; 0: never
		total     time.Duration
		wantOK    bool
		wantWaits []time.Duration
	}{
		{"at once", 1, time.Minute, true, nil},
		{"on the fourth ask", 4, time.Minute, true, []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second}},
		{"never, within the total", 0, 2 * time.Second, false, []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clock := fakeclock.NewAuto(t0)
			asks := 0
			ok, err := Settle(t.Context(), clock, b, tt.total, func() (bool, error) {
				asks++
				return asks == tt.showsAt, nil
			})
			if err != nil || ok != tt.wantOK {
				t.Errorf("Settle = %v, %v; want %v", ok, err, tt.wantOK)
			}
			if diff := cmp.Diff(tt.wantWaits, clock.Delays()); diff != "" {
				t.Errorf("pauses (-want +got):\n%s", diff)
			}
		})
	}
	boom := errors.New("boom")
	if _, err := Settle(t.Context(), fakeclock.NewAuto(t0), b, time.Minute, func() (bool, error) { return false, boom }); err != boom {
		t.Errorf("Settle with a failing read = %v, want its error", err)
	}
}

// TestBaseURL: an API's URL setting is http(s) with a host, and nothing
// that could carry a credential or change every request (user info, a
// query); request paths join under its path.
func TestBaseURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string // want "": refused
	}{
		{"https://example.okta.com", "https://example.okta.com/"},
		{"https://ghe.example.com/api/v3", "https://ghe.example.com/api/v3/"},
		{"http://127.0.0.1:8080/v1.0/", "http://127.0.0.1:8080/v1.0/"},
		{"ftp://example.com/", ""},
		{"https:///path", ""},
		{"https://user:secret@example.com/", ""},
		{"https://example.com/?tenant=x", ""},
		{"example.com", ""},
	}
	for _, tt := range tests {
		u, err := BaseURL(tt.in)
		got := ""
		if err == nil {
			got = u.String()
		}
		if got != tt.want {
			t.Errorf("BaseURL(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

// TestConfirm: a grant that reads never show is a retryable system error
// that says what; a read that fails is classified as a call's error.
func TestConfirm(t *testing.T) {
	t.Parallel()
	c := newClient(t, newServer(t), fakeclock.NewAuto(t0), Config{})
	b := Backoff{First: time.Second, Max: time.Second}
	err := c.Confirm(t.Context(), b, 3*time.Second, "grant ops (group g1)", func() (bool, error) { return false, nil })
	var sys *gitgrant.SystemError
	if !errors.As(err, &sys) || !sys.Retryable || !strings.Contains(err.Error(), "grant ops (group g1)") || !strings.Contains(err.Error(), "not shown by reads within 3s") {
		t.Errorf("Confirm of what never shows = %v, want a retryable system error saying what and how long", err)
	}
	refused := &StatusError{Status: http.StatusForbidden, Message: "no"}
	err = c.Confirm(t.Context(), b, 3*time.Second, "grant ops (group g1)", func() (bool, error) { return false, refused })
	if !errors.Is(err, refused) || !strings.Contains(err.Error(), "confirm grant ops (group g1)") {
		t.Errorf("Confirm with a refused read = %v, want the refusal, classified", err)
	}
	if err := c.Confirm(t.Context(), b, 3*time.Second, "grant", func() (bool, error) { return true, nil }); err != nil {
		t.Errorf("Confirm of what shows = %v", err)
	}
}

// TestOn: a call on a role's target names both; one on no role names the
// whole the targets belong to.
func TestOn(t *testing.T) {
	t.Parallel()
	c := newClient(t, newServer(t), fakeclock.NewAuto(t0), Config{Target: "group", Whole: "the org"})
	for _, tt := range []struct{ op, role, target, want string }{
		{"grant", "ops", "00g1", "grant ops (group 00g1)"},
		{"read users of", "", "", "read users of the org"},
	} {
		if got := c.On(tt.op, tt.role, tt.target); got != tt.want {
			t.Errorf("On(%q, %q, %q) = %q, want %q", tt.op, tt.role, tt.target, got, tt.want)
		}
	}
	err := c.FailOn("grant", "ops", "00g1", &StatusError{Status: http.StatusNotFound})
	if !errors.Is(err, providers.ErrNotFound) || !strings.Contains(err.Error(), "grant ops (group 00g1)") {
		t.Errorf("FailOn = %v, want not found, naming the call", err)
	}
}

// TestCheckRoles: with no role declared, Check connects, and a refusal is
// a system error naming the call; with roles, each is checked until the
// API refuses gitgrant altogether.
func TestCheckRoles(t *testing.T) {
	t.Parallel()
	connect := Call{Method: http.MethodGet, Path: "users?limit=1"}
	s := newServer(t, answer{status: http.StatusUnauthorized, body: `{"Message":"bad token"}`})
	c := newClient(t, s, fakeclock.NewAuto(t0), Config{Target: "group", Whole: "the org"})
	noRoles := gitgrant.ProviderConfig{Name: "p"}
	var sys *gitgrant.SystemError
	if err := c.CheckRoles(t.Context(), noRoles, "read users of", connect, nil); !errors.As(err, &sys) || !strings.Contains(err.Error(), "read users of the org") {
		t.Errorf("CheckRoles refused = %v, want a system error naming the call", err)
	}
	if err := c.CheckRoles(t.Context(), noRoles, "read users of", connect, nil); err != nil {
		t.Errorf("CheckRoles = %v", err)
	}
	if diff := cmp.Diff([]string{"GET /api/users?limit=1", "GET /api/users?limit=1"}, s.requests()); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
	roles := gitgrant.ProviderConfig{Name: "p", Roles: map[string]gitgrant.RoleConfig{"a": {Target: "1"}, "b": {Target: "2"}}}
	var checked []string
	err := c.CheckRoles(t.Context(), roles, "read users of", connect, func(role string) error {
		checked = append(checked, role)
		return &gitgrant.SystemError{System: "test p", Op: "read", Err: errors.New("refused")}
	})
	if !errors.As(err, &sys) || !slices.Equal(checked, []string{"a"}) {
		t.Errorf("CheckRoles with roles = %v after checking %v, want the first refusal alone", err, checked)
	}
}

// TestGone: a 404 to a removal is success; any other error stays.
func TestGone(t *testing.T) {
	t.Parallel()
	refused := &StatusError{Status: http.StatusForbidden}
	for _, tt := range []struct{ err, want error }{
		{nil, nil},
		{fmt.Errorf("delete: %w", &StatusError{Status: http.StatusNotFound}), nil},
		{refused, refused},
		{context.Canceled, context.Canceled},
	} {
		if got := Gone(tt.err); got != tt.want {
			t.Errorf("Gone(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

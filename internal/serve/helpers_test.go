package serve

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gitgrant/gitgrant/internal/testing/fakeclock"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/approval"
	"github.com/gitgrant/gitgrant/internal/engine"
	"github.com/gitgrant/gitgrant/internal/ghapi"
	"github.com/gitgrant/gitgrant/internal/gitrepo"
	"github.com/gitgrant/gitgrant/internal/testing/accesstest"
	"github.com/gitgrant/gitgrant/providers"
	"github.com/gitgrant/gitgrant/providers/fake"
)

var t0 = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

// eventually polls cond until it holds, failing after a generous
// deadline: behaviour is asserted, never speed.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var git = accesstest.Git

// runLoopback runs s on a listener on a free loopback port until cancel;
// done then yields what Run returned.
func runLoopback(t testing.TB, s *Server) (cancel context.CancelFunc, done <-chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- s.Run(ctx, ln) }()
	return cancel, ran
}

// world is an access repository mirrored on the fake GitHub, with one
// fake provider "db" that outlives every pass.
type world struct {
	*accesstest.Repo
	t  testing.TB
	db *fake.Provider
}

const testConfig = `identities:
  alice: {principals: {db: alice}}
  bob: {principals: {db: bob}}
providers:
  db:
    type: exec
    command: [unused]
    roles:
      ro: {max_duration: 8h, approvals: 1}
      rw: {max_duration: 1h, approvals: 1}
`

func newWorld(t testing.TB, clock gitgrant.Clock) *world {
	t.Helper()
	return newWorldWith(t, clock, testConfig)
}

// newClockedWorld is newWorld on a fake clock that stands at t0.
func newClockedWorld(t testing.TB) (*world, *fakeclock.Clock) {
	t.Helper()
	clk := fakeclock.New(t0)
	return newWorld(t, clk), clk
}

// newWorldWith is newWorld with config as the first, trusted policy: a
// later config pushed to main is not in force (rule 13).
func newWorldWith(t testing.TB, clock gitgrant.Clock, config string) *world {
	t.Helper()
	now := clock.Now
	r := accesstest.New(t, now, map[string]string{"gitgrant.yaml": config, ".github/CODEOWNERS": "/requests/ @owner\n"}, now().Add(-48*time.Hour))
	return &world{Repo: r, t: t, db: fake.New(fake.Options{Name: "db", Roles: []string{"ro", "rw"}, Clock: clock})}
}

// commitFiles commits files straight to main and pushes.
func (w *world) commitFiles(at time.Time, files map[string]string) {
	w.Commit(at, "admin", "admin change", files)
}

// merge brings a request in through pull request n, approved by owner,
// and pushes main to the remote.
func (w *world) merge(n int, who, path, content string, merged time.Time) {
	w.mergeFiles(n, who, map[string]string{path: content}, merged)
}

// mergeFiles is merge for a pull request that adds several files.
func (w *world) mergeFiles(n int, who string, files map[string]string, merged time.Time) {
	w.MergePR(n, who, files, merged, "owner")
}

// keepOpen shares one fake provider across passes: a pass closes what it
// opened, and the fake stands for a system that outlives any pass.
type keepOpen struct{ providers.Provider }

func (keepOpen) Close() error { return nil }

// engine builds an engine on a clone of the remote in its own cache (as a
// separate replica or process would have), reading time from now.
func (w *world) engine(clock gitgrant.Clock) *engine.Engine {
	w.t.Helper()
	repo, err := gitrepo.Open(context.Background(), gitrepo.Options{Source: "file://" + w.Remote, CacheDir: w.t.TempDir()})
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { repo.Close() })
	cl, err := ghapi.New(ghapi.Config{Token: accesstest.Token, APIURL: w.GH.BaseURL(), Repository: "acme/access"}, ghapi.Options{Clock: fakeclock.NewAuto(clock.Now())}) // GitHub's waits pass at once
	if err != nil {
		w.t.Fatal(err)
	}
	v := approval.New(cl, engine.FileReader{Repo: repo}, &approval.MemoryCache{})
	v.Clock = clock
	db := w.db
	return &engine.Engine{
		TrustRoot: engine.TrustFirst,
		Repo:      repo, GitHub: cl, Verifier: v, Deps: providers.DefaultDeps(), Clock: clock,
		Retry: engineRetry,
		Registry: providers.Registry{"exec": func(context.Context, gitgrant.ProviderConfig, providers.Deps) (providers.Provider, error) {
			return keepOpen{db}, nil
		}},
	}
}

// members lists role's members in the fake provider.
func (w *world) members(role string) []string {
	ms, err := w.db.Members(context.Background(), role)
	if err != nil {
		w.t.Fatal(err)
	}
	out := []string{}
	for _, m := range ms {
		out = append(out, m.Principal)
	}
	return out
}

// cleanupsOf counts the commits on the remote's main whose trailers
// record the removal of path.
func (w *world) cleanupsOf(path string) int {
	log := git(w.t, w.Remote, time.Time{}, "admin", "log", "--format=%B", "main")
	return strings.Count(log, gitrepo.TrailerRequest+": "+path+"\n")
}

func (w *world) remoteFiles() string {
	return git(w.t, w.Remote, time.Time{}, "admin", "ls-tree", "-r", "--name-only", "main", "requests/")
}

func request(who, role, extra string) string {
	return fmt.Sprintf("requester: %s\ngrants: [{provider: db, role: %s}]\nreason: Look into INC-1\n%s", who, role, extra)
}

const secret = "s3cret-webhook"

// deliver posts a signed webhook delivery to h and returns the status.
func deliver(t testing.TB, h http.Handler, event, body string) int {
	t.Helper()
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(body))
	r := httptest.NewRequest(http.MethodPost, "/webhook", bytes.NewBufferString(body))
	r.Header.Set("X-GitHub-Event", event)
	r.Header.Set("X-GitHub-Delivery", "d-1")
	r.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec.Code
}

// get fetches path from h.
func get(t testing.TB, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code, rec.Body.String()
}

// commitAt dates gitgrant's own commits by clk (the wall clock when nil).
func commitAt(clk gitgrant.Clock) gitrepo.CommitOptions {
	if clk == nil {
		return gitrepo.CommitOptions{Clock: fakeclock.New(t0)}
	}
	return gitrepo.CommitOptions{Clock: clk}
}

// testLogger writes the server's log to the test's output.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

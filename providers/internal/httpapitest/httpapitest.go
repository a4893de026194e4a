// Package httpapitest is the test support the fakes of gitgrant's SaaS
// APIs share: a server that mounts each API under a path prefix (so that a
// request built from anything but the configured base URL misses it and
// fails the test), a request log and round-trip latency on the test's
// clock, OAuth 2.0 access tokens that expire on that clock, quota windows,
// and the test RSA key with RS256 verification. Each provider's fake keeps
// only its endpoints and payloads.
package httpapitest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/jwtsign"
	"github.com/gitgrant/gitgrant/internal/testing/fakeclock"
)

// NewServer starts a test server that serves each handler under its path
// prefix (stripped), and fails the test on any request outside them. It
// returns the server's root URL.
func NewServer(t testing.TB, mounts map[string]http.Handler) string {
	root := http.NewServeMux()
	var prefixes []string
	for prefix, h := range mounts {
		root.Handle(prefix+"/", http.StripPrefix(prefix, h))
		prefixes = append(prefixes, prefix)
	}
	slices.Sort(prefixes)
	root.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("fake API: request outside %v (an absolute URL?): %s %s", prefixes, r.Method, r.URL)
		http.Error(w, "outside the API's prefix", http.StatusBadRequest)
	})
	srv := httptest.NewServer(root)
	t.Cleanup(srv.Close)
	return srv.URL
}

// Unexpected is a catch-all handler for an API's mux: a request the fake
// does not serve fails the test.
func Unexpected(t testing.TB, answer http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("fake API: unexpected request %s %s", r.Method, r.URL)
		answer(w, r)
	}
}

// WriteJSON writes v as a JSON answer with the given status.
func WriteJSON(w http.ResponseWriter, code int, v any) {
	if w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// Fake is what every fake API does around its handlers: they run with Mu
// held (so the fake's own state is safe under it too), each request is
// logged as "METHOD uri" (without the mount prefix), and a manual clock
// moves by Latency per request, as a round trip would.
type Fake struct {
	Mu      sync.Mutex
	Clock   gitgrant.Clock
	Latency time.Duration
	// Tokens are the access tokens the fake issues and accepts.
	Tokens Tokens
	// Throttled counts the requests the fake refused for a rate limit.
	Throttled int
	log       []string
	calls     map[string]int
}

// Serve wraps a handler of the fake.
func (f *Fake) Serve(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		f.Mu.Lock()
		defer f.Mu.Unlock()
		f.log = append(f.log, r.Method+" "+r.URL.RequestURI())
		if m, ok := f.Clock.(*fakeclock.Clock); ok && f.Latency > 0 {
			m.Advance(f.Latency)
		}
		h(w, r)
	}
}

// Log is the requests served so far, in order.
func (f *Fake) Log() []string {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	return slices.Clone(f.log)
}

// Called counts a call the fake served, by the name of its operation
// ("CreateAccountAssignment", "memberships.list"), for APIs whose request
// lines do not name it. It is used under the lock.
func (f *Fake) Called(name string) {
	if f.calls == nil {
		f.calls = map[string]int{}
	}
	f.calls[name]++
}

// Calls is how often each operation was served.
func (f *Fake) Calls() map[string]int {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	return maps.Clone(f.calls)
}

// Set changes the fake's state under its lock.
func (f *Fake) Set(change func()) {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	change()
}

// Tokens issues OAuth 2.0 access tokens that expire TTL after they are
// issued on Now's clock, and checks bearer tokens. It is used under the
// fake's lock.
type Tokens struct {
	Now    func() time.Time
	Prefix string // of every token: a secret the tests look for
	TTL    time.Duration
	// Issued counts the tokens issued; Refused the requests refused for a
	// missing, unknown or expired token.
	Issued, Refused int
	live            map[string]time.Time
}

// Issue makes a new token and says how long it lives, in seconds.
func (t *Tokens) Issue() (string, int) {
	if t.live == nil {
		t.live = map[string]time.Time{}
	}
	t.Issued++
	token := fmt.Sprintf("%s%d", t.Prefix, t.Issued)
	t.live[token] = t.Now().Add(t.TTL)
	return token, int(t.TTL.Seconds())
}

// Valid says whether an Authorization header carries a live token, and
// counts it refused if not.
func (t *Tokens) Valid(authorization string) bool {
	token, ok := strings.CutPrefix(authorization, "Bearer ")
	if exp, live := t.live[token]; ok && live && t.Now().Before(exp) {
		return true
	}
	t.Refused++
	return false
}

// RevokeAll revokes every token issued, as an administrator may.
func (t *Tokens) RevokeAll() { clear(t.live) }

// Quota admits at most Limit units of requests per Window, per bucket, in
// windows aligned to the clock (as Okta's minutes and Graph's ten seconds
// are). A zero Limit admits everything. It is used under the fake's lock.
type Quota struct {
	Window time.Duration
	Limit  int
	used   map[string]int
	start  map[string]time.Time
}

// Take spends cost units of bucket's window at now. ok is false, and
// nothing spent, when the window cannot take them; left is what remains
// and reset when the window ends.
func (q *Quota) Take(bucket string, cost int, now time.Time) (ok bool, left int, reset time.Time) {
	if q.Limit == 0 {
		return true, 1 << 30, now
	}
	if q.used == nil {
		q.used, q.start = map[string]int{}, map[string]time.Time{}
	}
	start := now.Truncate(q.Window)
	if !q.start[bucket].Equal(start) {
		q.start[bucket], q.used[bucket] = start, 0
	}
	reset = start.Add(q.Window)
	if q.used[bucket]+cost > q.Limit {
		return false, q.Limit - q.used[bucket], reset
	}
	q.used[bucket] += cost
	return true, q.Limit - q.used[bucket], reset
}

// RSAKey is the tests' RSA key pair, made once per test binary, and its
// private key in PKCS#8 PEM (a secret no error or log may show).
var RSAKey = sync.OnceValues(func() (*rsa.PrivateKey, string) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		panic(err)
	}
	return k, string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
})

// VerifyRS256 checks that jwt is signed with RS256 by pub's key, and
// decodes its claims into claims.
func VerifyRS256(jwt string, pub *rsa.PublicKey, claims any) bool {
	return jwtsign.VerifyRS256(jwt, pub, claims) == nil
}

// ManualClock is a clock for a fake and the provider under test that
// moves only when advanced or waited on, so rate-limit windows and token
// lifetimes pass at once. Its date is fixed: nothing may compare it with
// the wall clock.
func ManualClock() *fakeclock.Clock {
	return fakeclock.NewAuto(time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC))
}

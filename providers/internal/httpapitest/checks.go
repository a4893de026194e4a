package httpapitest

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/testing/fakeclock"
	"github.com/gitgrant/gitgrant/providers"
	"github.com/gitgrant/gitgrant/providers/providertest"
	"github.com/google/go-cmp/cmp"
)

// Limited is a run of grants against a fake that rate-limits them, and
// what a provider's test expects of it.
type Limited struct {
	Name string
	// Grants is how many principals are granted a role, one after another;
	// the fake admits Quota units a window (0: no limit) and answers the
	// first Force429 requests with 429; the provider waits at most MaxWait
	// ("": its default).
	Grants, Quota, Force429 int
	MaxWait                 string
	// Fails: the run stops with a retryable error that says until when,
	// since the wait was longer than the provider may wait.
	Fails bool
	// Refusals is how many requests the fake refused (429s).
	Refusals int
	// MinTime is how far the clock moved at least (the waits).
	MinTime time.Duration
}

// CheckLimited runs each case on a fresh fake and provider of the API
// (named as the provider's errors name it: "Okta"). start sets them up as
// the case says and returns the fake, the grants (which stop at the first
// error) and how many principals then hold the role; unless the run
// fails, all of them must.
func CheckLimited(t *testing.T, api string, cases []Limited, start func(t *testing.T, c Limited) (f *Fake, grants func() error, granted func() int)) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			t.Parallel()
			f, grants, granted := start(t, c)
			f.checkLimited(t, api, c, grants)
			if n := granted(); !c.Fails && n != c.Grants {
				t.Errorf("%d principals hold the role, want %d", n, c.Grants)
			}
		})
	}
}

func (f *Fake) checkLimited(t *testing.T, api string, want Limited, grants func() error) {
	t.Helper()
	start := f.Clock.Now()
	err := grants()
	if want.Fails {
		var sys *gitgrant.SystemError
		if !errors.As(err, &sys) || !sys.Retryable || !strings.Contains(err.Error(), "rate limited by "+api+" until") {
			t.Fatalf("err = %v, want a retryable SystemError saying until when", err)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	f.Mu.Lock()
	refused := f.Throttled
	f.Mu.Unlock()
	if refused != want.Refusals {
		t.Errorf("the fake answered %d 429s, want %d", refused, want.Refusals)
	}
	if moved := f.Clock.Now().Sub(start); moved < want.MinTime {
		t.Errorf("the clock moved %v, want at least %v", moved, want.MinTime)
	}
}

// CheckTokenRenewal grants three principals in turn: the first on a new
// token; the second after the token ran out while the provider was idle
// (renewed before use: nothing refused); the third after an administrator
// revoked every token (refused once, then replaced).
func (f *Fake) CheckTokenRenewal(t *testing.T, clock *fakeclock.Clock, grant func(who string) error, who [3]string) {
	t.Helper()
	steps := []struct {
		name            string
		before          func()
		issued, refused int
	}{
		{"first call", func() {}, 1, 0},
		{"after the token ran out", func() { clock.Advance(2 * time.Hour) }, 2, 0},
		{"after the token was revoked", func() { f.Set(f.Tokens.RevokeAll) }, 3, 1},
	}
	for i, s := range steps {
		s.before()
		if err := grant(who[i]); err != nil {
			t.Fatalf("%s: Grant(%s): %v", s.name, who[i], err)
		}
		f.Mu.Lock()
		issued, refused := f.Tokens.Issued, f.Tokens.Refused
		f.Mu.Unlock()
		if issued != s.issued || refused != s.refused {
			t.Errorf("%s: tokens issued %d, refused %d; want %d, %d", s.name, issued, refused, s.issued, s.refused)
		}
	}
}

// CheckLogs opens a provider (with open, on deps that log into a buffer
// at debug level) and grants role to each principal, the clock moving two
// hours after each so that tokens are renewed. The caller has made the
// fake refuse a request for a rate limit: the log must say that the
// provider waited, and hold none of secrets.
func CheckLogs(t *testing.T, clock *fakeclock.Clock, deps providers.Deps, open func(providers.Deps) providers.Provider, role string, principals []string, secrets ...string) {
	t.Helper()
	var buf bytes.Buffer
	deps.Clock = clock
	deps.Logger = slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	p := open(deps)
	for _, who := range principals {
		if err := p.Grant(t.Context(), providers.Grant{Role: role, Principal: who, Until: clock.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		clock.Advance(2 * time.Hour)
	}
	logged := buf.String()
	if !strings.Contains(logged, "rate limited; waiting") {
		t.Errorf("the wait was not logged:\n%s", logged)
	}
	for _, s := range append(secrets, "Bearer") {
		if strings.Contains(logged, s) {
			t.Errorf("the log contains %q:\n%s", s, logged)
		}
	}
}

// CheckPacing runs grants against a fake that admits 5 requests a second:
// run opens a provider paced at rps, sets the fake's quota, grants, and
// says how many requests the fake refused. Paced just below the quota
// (4.5 a second) the provider is never refused; unpaced it is, and every
// grant still gets through.
func CheckPacing(t *testing.T, run func(t *testing.T, rps float64) (refused int)) {
	t.Helper()
	tests := []struct {
		name        string
		rps         float64
		wantRefused bool
	}{
		{"paced below the quota", 4.5, false},
		{"unpaced", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if refused := run(t, tt.rps); (refused > 0) != tt.wantRefused {
				t.Errorf("refused %d times, want refusals: %v", refused, tt.wantRefused)
			}
		})
	}
}

// Exchange is an operation of a provider of type P and the requests it
// must send, in order ("METHOD uri", as Fake logs them).
type Exchange[P any] struct {
	Name     string
	Settings map[string]any // over the provider's usual ones
	Do       func(ctx context.Context, p P) error
	Want     []string
}

// CheckRequests runs each exchange on a fresh fake and provider, which
// open makes with the exchange's settings, and compares the requests the
// fake served with the ones it must send.
func CheckRequests[P any](t *testing.T, open func(t *testing.T, settings map[string]any) (P, *Fake), exchanges []Exchange[P]) {
	t.Helper()
	for _, x := range exchanges {
		t.Run(x.Name, func(t *testing.T) {
			t.Parallel()
			p, f := open(t, x.Settings)
			if err := x.Do(t.Context(), p); err != nil {
				t.Fatal(err)
			}
			f.CheckLog(t, x.Want)
		})
	}
}

// ReportLimits reports, beside a benchmark's figures, the requests the
// fake refused for a rate limit (429s) and the tokens it issued, and how
// often and how long the provider's client waited for rate limits.
func (f *Fake) ReportLimits(b *testing.B, client interface{ Waited() (int64, time.Duration) }) {
	waits, waited := client.Waited()
	f.Mu.Lock()
	b.ReportMetric(float64(f.Throttled), "429s")
	b.ReportMetric(float64(f.Tokens.Issued), "tokens")
	f.Mu.Unlock()
	b.ReportMetric(float64(waits), "limit-waits")
	b.ReportMetric(waited.Seconds(), "limit-wait-s")
}

// CheckLog checks that the fake has served want, in order ("METHOD uri",
// as Log has them), and nothing else.
func (f *Fake) CheckLog(t testing.TB, want []string) {
	t.Helper()
	if diff := cmp.Diff(want, f.Log()); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}

// CheckCalls checks that the fake has served the operation name (as
// Called counts it) want times; why, when not empty, says where want comes
// from.
func (f *Fake) CheckCalls(t testing.TB, name string, want int, why string) {
	t.Helper()
	if n := f.Calls()[name]; n != want {
		if why != "" {
			why = " (" + why + ")"
		}
		t.Errorf("%s calls = %d, want %d%s", name, n, want, why)
	}
}

// PastTheContext is the failure case of a list of role's members that
// draws a 429 with a second left on its context: the wait the API asks
// for outlasts it, so the list fails at once, retryable, saying says. The
// wait is compared with the context's remaining time, never a manual
// clock's instant (which may be years from the wall clock) with the real
// deadline. throttle, run under the fake's lock, makes the next answer a
// 429.
func (f *Fake) PastTheContext(ctx context.Context, p providers.Provider, role string, throttle func(), says string) providertest.FailureCase {
	return providertest.FailureCase{Name: "rate limited past the context", Do: func() error {
		f.Set(throttle)
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		_, err := p.Members(ctx, role)
		return err
	}, Want: providertest.Failure{System: true, Retryable: true, Says: says}}
}

package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/testing/fakeclock"
	"github.com/gitgrant/gitgrant/providers"
)

const testSecret = "client~secret~that~must~never~leak"

// tokenEndpoint issues tokens that live an hour, or answers with the
// given status and OAuth error.
func tokenEndpoint(t *testing.T, status int, body string) (string, *atomic.Int32) {
	var issued atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if status != http.StatusOK {
			w.WriteHeader(status)
			fmt.Fprint(w, body)
			return
		}
		n := issued.Add(1)
		fmt.Fprintf(w, `{"access_token":"token-%d","token_type":"Bearer","expires_in":3600}`, n)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, &issued
}

func clientCredentials(tokenURL string) func(ctx context.Context) (*oauth2.Token, error) {
	cfg := clientcredentials.Config{ClientID: "app", ClientSecret: testSecret, TokenURL: tokenURL, AuthStyle: oauth2.AuthStyleInParams}
	return cfg.Token
}

// TestTokenLifetime: a token is kept until Early before it expires on the
// source's clock (which may be years from the wall clock), and one the API
// refused is fetched anew.
func TestTokenLifetime(t *testing.T) {
	t.Parallel()
	tokenURL, issued := tokenEndpoint(t, http.StatusOK, "")
	clock := fakeclock.New(t0)
	deps := providers.DefaultDeps()
	deps.Clock = clock
	src := NewTokenSource(TokenConfig{Fetch: clientCredentials(tokenURL)}, deps)
	steps := []struct {
		name    string
		before  func()
		want    string
		refused bool
	}{
		{"first use", func() {}, "Bearer token-1", false},
		{"58 minutes on", func() { clock.Advance(58 * time.Minute) }, "Bearer token-1", false},
		{"within a minute of the expiry", func() { clock.Advance(time.Minute + time.Second) }, "Bearer token-2", false},
		{"refused by the API", func() {
			if !src.Refused("Bearer token-2") {
				t.Error("Refused = false, want a new token to be tried")
			}
		}, "Bearer token-3", false},
		{"an older token refused changes nothing", func() { src.Refused("Bearer token-1") }, "Bearer token-3", false},
	}
	for _, s := range steps {
		s.before()
		got, err := src.Authorization(t.Context())
		if err != nil || got != s.want {
			t.Errorf("%s: Authorization = %q, %v; want %q", s.name, got, err, s.want)
		}
	}
	if n := issued.Load(); n != 3 {
		t.Errorf("tokens issued = %d, want 3", n)
	}
	if Static("SSWS x").Refused("SSWS x") {
		t.Error("a static credential claims it can be replaced")
	}
}

// TestTokenErrors: a failed token request says what the endpoint
// answered (without the secret), and whether a retry may help.
func TestTokenErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		status    int
		body      string
		describe  bool
		want      string
		retryable bool
	}{
		{"refused client, described", http.StatusUnauthorized,
			`{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret ` + testSecret + ` provided.\r\nTrace ID: 1"}`, true,
			"requesting an access token: HTTP 401 invalid_client: AADSTS7000215: Invalid client secret [redacted] provided.", false},
		{"refused key, not described", http.StatusBadRequest, `{"error":"invalid_grant","error_description":"account not found"}`, false,
			"requesting an access token: HTTP 400 invalid_grant", false},
		{"an error code that is not one", http.StatusBadRequest, `{"error":"<script>"}`, true,
			"requesting an access token: HTTP 400", false},
		{"endpoint down", http.StatusServiceUnavailable, `{"error":"temporarily_unavailable"}`, false,
			"requesting an access token: HTTP 503 temporarily_unavailable", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tokenURL, _ := tokenEndpoint(t, tt.status, tt.body)
			src := NewTokenSource(TokenConfig{Fetch: clientCredentials(tokenURL), Secrets: []string{testSecret}, Describe: tt.describe}, providers.DefaultDeps())
			_, err := src.Authorization(t.Context())
			var te *TokenError
			if !errors.As(err, &te) || err.Error() != tt.want || te.Retryable() != tt.retryable {
				t.Errorf("Authorization: err = %v, want %q (retryable %v)", err, tt.want, tt.retryable)
			}
		})
	}
	down := NewTokenSource(TokenConfig{Fetch: clientCredentials("http://127.0.0.1:1/token")}, providers.DefaultDeps())
	_, err := down.Authorization(t.Context())
	var te *TokenError
	if !errors.As(err, &te) || !te.Retryable() || strings.Contains(err.Error(), testSecret) {
		t.Errorf("token endpoint unreachable: err = %v, want a retryable TokenError without the secret", err)
	}
}

// TestClassify: what the reconciler makes of each kind of failure.
func TestClassify(t *testing.T) {
	t.Parallel()
	judged := &gitgrant.SystemError{System: "test p", Op: "x", Err: errors.New("judged"), Retryable: true}
	tests := []struct {
		name              string
		err               error
		notFound, invalid bool
		system, retryable bool
	}{
		{name: "not found, judged by the provider", err: fmt.Errorf("user x: %w", providers.ErrNotFound), notFound: true},
		{name: "invalid name", err: fmt.Errorf("x: %w", providers.ErrInvalidName), invalid: true},
		{name: "already a system error", err: judged, system: true, retryable: true},
		{name: "canceled", err: context.Canceled},
		{name: "rate limited", err: &RateLimited{API: "A", Until: t0, Err: &StatusError{Status: 429}}, system: true, retryable: true},
		{name: "token refused", err: &TokenError{Status: 401, Code: "invalid_client"}, system: true},
		{name: "token endpoint down", err: &TokenError{Transport: errors.New("dial")}, system: true, retryable: true},
		{name: "404", err: &StatusError{Status: 404}, notFound: true},
		{name: "403", err: &StatusError{Status: 403}, system: true},
		{name: "500", err: &StatusError{Status: 500}, system: true, retryable: true},
		{name: "400", err: &StatusError{Status: 400}},
		{name: "transport", err: errors.New("dial tcp: connection refused"), system: true, retryable: true},
		{name: "deadline", err: context.DeadlineExceeded, system: true, retryable: true},
	}
	for _, tt := range tests {
		err := Classify("test p", "p", "grant r", tt.err)
		var sys *gitgrant.SystemError
		isSys := errors.As(err, &sys)
		if errors.Is(err, providers.ErrNotFound) != tt.notFound || errors.Is(err, providers.ErrInvalidName) != tt.invalid ||
			isSys != tt.system || isSys && sys.Retryable != tt.retryable {
			t.Errorf("%s: Classify = %v (system %v)", tt.name, err, isSys)
		}
		if !strings.Contains(err.Error(), "grant r") {
			t.Errorf("%s: %v does not name the call", tt.name, err)
		}
	}
	if Classify("s", "p", "x", nil) != nil {
		t.Error("Classify(nil) is an error")
	}
}

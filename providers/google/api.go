package google

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/providers"
)

const (
	// maxThrottleRetries bounds the 429 waits of one call, on top of
	// maxWait.
	maxThrottleRetries = 8
	// maxServerRetries bounds the retries of one call after a 5xx.
	maxServerRetries = 3
	// defaultThrottleWait is used when a 429 does not say how long.
	defaultThrottleWait = 2 * time.Second
)

// apiClient sends JSON requests to one Google REST API with OAuth 2.0
// tokens from x/oauth2, paced below the API's quota, waiting out 429s
// (within bounds), retrying 5xx a few times, and fetching a fresh token
// once when the API says the current one is no longer valid.
type apiClient struct {
	system  string // "google <provider name>", for SystemError
	base    *url.URL
	http    *http.Client
	tokens  *refreshableSource
	pace    *pacer
	maxWait time.Duration
	logger  *slog.Logger
	sleep   func(ctx context.Context, d time.Duration) error
	now     func() time.Time
	calls   atomic.Int64 // API requests sent, for figures and tests
	// reachable is false after the last call failed to reach the API.
	reachable atomic.Bool
}

// apiError is Google's error body: {"error": {"code", "message", "status"}}.
type apiError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Status  string `json:"status"`
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%d %s: %s", e.Code, e.Status, e.Message)
}

// rateLimited is a 429 that gitgrant did not wait out.
type rateLimited struct {
	until time.Time
	err   error
}

func (e *rateLimited) Error() string {
	return fmt.Sprintf("rate limited by Google until %s: %v", e.until.UTC().Format(time.RFC3339), e.err)
}
func (e *rateLimited) Unwrap() error { return e.err }

// do sends one request to path (relative to the API's base URL, built only
// from validated names) and decodes the JSON answer into out.
func (c *apiClient) do(ctx context.Context, method, path string, query url.Values, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return err
		}
	}
	u := *c.base
	u.Path += path
	u.RawQuery = query.Encode()
	refreshed := false
	for throttled, failed := 0, 0; ; {
		if err := c.pace.wait(ctx, c.sleep); err != nil {
			return err
		}
		code, header, raw, err := c.send(ctx, method, u.String(), body)
		if err != nil {
			c.reachable.Store(false)
			return err
		}
		c.reachable.Store(code < 500)
		if code < 300 {
			if out == nil || len(raw) == 0 {
				return nil
			}
			return json.Unmarshal(raw, out)
		}
		apiErr := parseError(code, raw)
		switch {
		case code == http.StatusUnauthorized && !refreshed:
			// The token expired or was revoked before its stated
			// expiry (clock skew, rotation): fetch a new one, once.
			refreshed = true
			c.tokens.reset()
			c.logger.InfoContext(ctx, "google: access token refused; fetching a new one", "method", method, "path", path)
			continue
		case code == http.StatusTooManyRequests:
			wait := retryAfter(header, c.now())
			until := c.now().Add(wait)
			if throttled >= maxThrottleRetries || wait > c.maxWait {
				return &rateLimited{until: until, err: apiErr}
			}
			if !providers.FitsDeadline(ctx, wait) {
				return &rateLimited{until: until, err: apiErr}
			}
			throttled++
			c.pace.backOff(wait)
			c.logger.InfoContext(ctx, "google: rate limited; waiting", "method", method, "path", path, "wait", wait.String())
			if err := c.sleep(ctx, wait); err != nil {
				return err
			}
			continue
		case code >= 500 && failed < maxServerRetries:
			failed++
			if err := c.sleep(ctx, time.Duration(failed)*200*time.Millisecond); err != nil {
				return err
			}
			continue
		}
		return apiErr
	}
}

// send performs one HTTP exchange. Errors never carry the token: the
// oauth2 transport keeps it in a header, and url.Error names only the URL.
func (c *apiClient) send(ctx context.Context, method, u string, body []byte) (int, http.Header, []byte, error) {
	c.calls.Add(1)
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, r)
	if err != nil {
		return 0, nil, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return 0, nil, nil, err
	}
	return resp.StatusCode, resp.Header, raw, nil
}

func parseError(code int, raw []byte) *apiError {
	var body struct {
		Error apiError `json:"error"`
	}
	if json.Unmarshal(raw, &body) != nil || body.Error.Code == 0 {
		return &apiError{Code: code, Status: http.StatusText(code), Message: "(no error body)"}
	}
	return &body.Error
}

// retryAfter reads Retry-After in seconds or as an HTTP date.
func retryAfter(h http.Header, now time.Time) time.Duration {
	v := h.Get("Retry-After")
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return max(time.Duration(s)*time.Second, 100*time.Millisecond)
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 100*time.Millisecond)
	}
	return defaultThrottleWait
}

func statusOf(err error) (int, string) {
	var e *apiError
	if errors.As(err, &e) {
		return e.Code, e.Status
	}
	return 0, ""
}

// wrap turns an API error into the errors the reconciler acts on.
func (c *apiClient) wrap(name, what string, err error) error {
	var limited *rateLimited
	var apiErr *apiError
	var retrieve *oauth2.RetrieveError
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("provider %s: %s: %w", name, what, err)
	case errors.As(err, &limited):
		return providers.Unavailable(c.system, what, err)
	case errors.As(err, &retrieve):
		// The token endpoint refused the key (revoked, disabled,
		// wrong audience): a person has to fix the credentials. Its
		// body is not quoted: only its status and error code.
		code := 0
		if retrieve.Response != nil {
			code = retrieve.Response.StatusCode
		}
		return &gitgrant.SystemError{System: c.system, Op: what + ": fetching an access token",
			Err: fmt.Errorf("token endpoint answered %d %s", code, oauthErrorCode(retrieve)), Retryable: code >= 500}
	case errors.As(err, &apiErr):
		switch {
		case apiErr.Code == http.StatusNotFound:
			return fmt.Errorf("provider %s: %s: %v: %w", name, what, apiErr, providers.ErrNotFound)
		case apiErr.Code == http.StatusUnauthorized, apiErr.Code == http.StatusForbidden:
			return &gitgrant.SystemError{System: c.system, Op: what, Err: apiErr}
		case apiErr.Code >= 500:
			return providers.Unavailable(c.system, what, apiErr)
		}
		return fmt.Errorf("provider %s: %s: %w", name, what, apiErr)
	}
	// Transport errors: DNS, refused connections, timeouts.
	return providers.Unavailable(c.system, what, err)
}

var oauthCodePattern = regexp.MustCompile(`^[a-z_]{1,40}$`)

// oauthErrorCode is the RFC 6749 error code of a token endpoint's answer
// (invalid_grant, ...), which says what to fix without quoting anything
// else of it.
func oauthErrorCode(e *oauth2.RetrieveError) string {
	code := e.ErrorCode
	if code == "" {
		var body struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(e.Body, &body) == nil {
			code = body.Error
		}
	}
	if !oauthCodePattern.MatchString(code) {
		return "(no error code)"
	}
	return code
}

// refreshableSource hands out tokens from x/oauth2 and can start over
// with a fresh source when the API refuses a token it still holds.
type refreshableSource struct {
	newSource func() (oauth2.TokenSource, error)
	mu        sync.Mutex
	src       oauth2.TokenSource
}

func (s *refreshableSource) Token() (*oauth2.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.src == nil {
		src, err := s.newSource()
		if err != nil {
			return nil, err
		}
		s.src = oauth2.ReuseTokenSource(nil, src)
	}
	return s.src.Token()
}

func (s *refreshableSource) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.src = nil
}

// pacer spaces requests at most rate per second, and pauses everyone
// after a 429 so that the other callers do not hit the limit too.
type pacer struct {
	interval time.Duration
	now      func() time.Time
	mu       sync.Mutex
	next     time.Time
}

func (p *pacer) wait(ctx context.Context, sleep func(context.Context, time.Duration) error) error {
	if p.interval <= 0 {
		return nil
	}
	p.mu.Lock()
	now := p.now()
	at := now
	if p.next.After(now) {
		at = p.next
	}
	p.next = at.Add(p.interval)
	p.mu.Unlock()
	if d := at.Sub(now); d > 0 {
		return sleep(ctx, d)
	}
	return nil
}

func (p *pacer) backOff(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if until := p.now().Add(d); until.After(p.next) {
		p.next = until
	}
}

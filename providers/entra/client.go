package entra

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/gitgrant/gitgrant/providers"
)

const (
	// maxAttempts bounds the tries of one call: throttling waited out and
	// a refused token replaced.
	maxAttempts = 6
	// tokenEarly is how long before its expiry a token is replaced.
	tokenEarly = time.Minute
)

// client sends requests to Microsoft Graph for one tenant. Graph throttles
// per application and tenant and says how long to stay away (Retry-After
// on 429, and on some 503s and 504s); while one call waits, every call of
// the provider waits, since sending more only extends the penalty.
type client struct {
	base    *url.URL // Graph root with version, path ending in "/"
	http    *http.Client
	token   *tokenSource
	now     func() time.Time
	sleep   func(ctx context.Context, d time.Duration) error
	maxWait time.Duration
	log     func(ctx context.Context, msg string, args ...any)

	mu          sync.Mutex
	pausedUntil time.Time

	calls  atomic.Int64 // requests sent, for the benchmark
	waits  atomic.Int64 // rate-limit waits started
	waited atomic.Int64 // and their total, in nanoseconds
}

// tokenSource gets app-only tokens with the client credentials grant and
// keeps one until shortly before it expires, judged by the injected clock.
type tokenSource struct {
	cfg        clientcredentials.Config
	secret     string
	httpClient *http.Client
	now        func() time.Time

	mu  sync.Mutex // held while fetching, so concurrent callers share one token
	tok *oauth2.Token
}

func (s *tokenSource) header(ctx context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok != nil && s.now().Add(tokenEarly).Before(s.tok.Expiry) {
		return "Bearer " + s.tok.AccessToken, nil
	}
	tok, err := s.cfg.Token(context.WithValue(ctx, oauth2.HTTPClient, s.httpClient))
	if err != nil {
		return "", s.failure(err)
	}
	if tok.Expiry.IsZero() {
		tok.Expiry = time.Now().Add(time.Hour)
	}
	// x/oauth2 sets Expiry from expires_in by the real clock; re-base it
	// on the injected one.
	tok.Expiry = s.now().Add(time.Until(tok.Expiry))
	s.tok = tok
	return "Bearer " + tok.AccessToken, nil
}

func (s *tokenSource) refused(header string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok != nil && header == "Bearer "+s.tok.AccessToken {
		s.tok = nil
	}
}

// tokenFailure is a token request that failed, with Entra's error code
// and description only: never the request, which holds the secret.
type tokenFailure struct {
	status    int
	code      string
	desc      string
	transport error
}

func (s *tokenSource) failure(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil {
		desc, _, _ := strings.Cut(re.ErrorDescription, "\r\n") // Entra appends trace and correlation ids
		return &tokenFailure{status: re.Response.StatusCode, code: re.ErrorCode, desc: scrub(desc, s.secret)}
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return &tokenFailure{transport: errors.New(scrub(ue.Err.Error(), s.secret))}
	}
	return &tokenFailure{transport: errors.New("token response unusable")}
}

func scrub(s, secret string) string {
	if secret == "" {
		return s
	}
	return strings.ReplaceAll(s, secret, "[redacted]")
}

func (e *tokenFailure) Error() string {
	if e.transport != nil {
		return fmt.Sprintf("requesting an access token: %v", e.transport)
	}
	s := fmt.Sprintf("requesting an access token: HTTP %d", e.status)
	if e.code != "" {
		s += " " + e.code
	}
	if e.desc != "" {
		s += ": " + e.desc
	}
	return s
}

func (e *tokenFailure) retryable() bool {
	return e.transport != nil || e.status >= 500 || e.status == http.StatusTooManyRequests
}

// graphError is an answer other than 2xx, with Graph's error object.
type graphError struct {
	status int
	Body   struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func (e *graphError) Error() string {
	if e.Body.Code == "" {
		return fmt.Sprintf("HTTP %d", e.status)
	}
	return fmt.Sprintf("HTTP %d %s: %s", e.status, e.Body.Code, e.Body.Message)
}

// throttled is throttling gitgrant did not wait out.
type throttled struct {
	until time.Time
	err   error
}

func (e *throttled) Error() string {
	return fmt.Sprintf("throttled by Microsoft Graph until %s: %v", e.until.UTC().Format(time.RFC3339), e.err)
}
func (e *throttled) Unwrap() error { return e.err }

// do sends one request and decodes a JSON answer into out. target is
// relative to the Graph root, or an absolute @odata.nextLink (then it must
// be on the Graph host).
func (c *client) do(ctx context.Context, method, target string, body, out any) error {
	u, err := c.base.Parse(target)
	if err != nil || u.Scheme != c.base.Scheme || u.Host != c.base.Host {
		return fmt.Errorf("refusing to follow %q off Microsoft Graph", target)
	}
	var payload []byte
	if body != nil {
		if payload, err = json.Marshal(body); err != nil {
			return err
		}
	}
	var refused bool
	for attempt := 1; ; attempt++ {
		if err := c.waitPause(ctx, nil); err != nil {
			return err
		}
		auth, err := c.token.header(ctx)
		if err != nil {
			return err
		}
		req, err := http.NewRequestWithContext(ctx, method, u.String(), bytes.NewReader(payload))
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", auth)
		req.Header.Set("Accept", "application/json")
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		c.calls.Add(1)
		resp, err := c.http.Do(req)
		if err != nil {
			return err
		}
		data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
		resp.Body.Close()
		if err != nil {
			return err
		}
		if resp.StatusCode >= 200 && resp.StatusCode < 300 {
			if out != nil && len(bytes.TrimSpace(data)) > 0 {
				if err := json.Unmarshal(data, out); err != nil {
					return fmt.Errorf("decoding %s %s: %w", method, u.Path, err)
				}
			}
			return nil
		}
		gerr := &graphError{status: resp.StatusCode}
		_ = json.Unmarshal(data, gerr)
		retryAfter := resp.Header.Get("Retry-After")
		switch code := resp.StatusCode; {
		case (code == http.StatusTooManyRequests || ((code == http.StatusServiceUnavailable || code == http.StatusGatewayTimeout) && retryAfter != "")) && attempt < maxAttempts:
			wait := time.Duration(min(1<<attempt, 30)) * time.Second // Graph's advice without Retry-After
			if s, err := strconv.Atoi(retryAfter); err == nil && s >= 0 {
				wait = max(time.Duration(s)*time.Second, time.Second)
			}
			c.pause(c.now().Add(wait))
			if err := c.waitPause(ctx, gerr); err != nil {
				return err
			}
			continue
		case code == http.StatusUnauthorized && !refused:
			// The token expired or was revoked before we expected.
			refused = true
			c.token.refused(auth)
			continue
		}
		return gerr
	}
}

func (c *client) pause(until time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if until.After(c.pausedUntil) {
		c.pausedUntil = until
	}
}

// waitPause waits while Graph asked to stay away. A wait longer than
// maxWait or past the context's deadline is not started.
func (c *client) waitPause(ctx context.Context, cause error) error {
	c.mu.Lock()
	until, now := c.pausedUntil, c.now()
	c.mu.Unlock()
	if !until.After(now) {
		return nil
	}
	if cause == nil {
		cause = errors.New("an earlier request was throttled")
	}
	wait := until.Sub(now)
	if wait > c.maxWait {
		return &throttled{until: until, err: cause}
	}
	if !providers.FitsDeadline(ctx, wait) {
		return &throttled{until: until, err: cause}
	}
	c.log(ctx, "entra: throttled by Microsoft Graph; waiting", "until", until.UTC().Format(time.RFC3339), "wait", wait.String())
	c.waits.Add(1)
	c.waited.Add(int64(wait))
	return c.sleep(ctx, wait)
}

// page is one page of a Graph collection.
type page[T any] struct {
	NextLink string `json:"@odata.nextLink"`
	Value    []T    `json:"value"`
}

// list reads every page of a collection.
func list[T any](ctx context.Context, c *client, target string) ([]T, error) {
	var all []T
	for target != "" {
		var p page[T]
		if err := c.do(ctx, http.MethodGet, target, nil, &p); err != nil {
			return nil, err
		}
		all = append(all, p.Value...)
		target = p.NextLink
	}
	return all, nil
}

func isStatus(err error, code int) bool {
	var ge *graphError
	return errors.As(err, &ge) && ge.status == code
}

func isCode(err error, code string) bool {
	var ge *graphError
	return errors.As(err, &ge) && ge.Body.Code == code
}

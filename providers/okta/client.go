package okta

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

	"github.com/gitgrant/gitgrant/providers"
)

// maxAttempts bounds the tries of one call: rate limits waited out and a
// refused token replaced.
const maxAttempts = 6

// client sends requests to one Okta org and keeps within its rate limits.
// Okta counts each endpoint separately (and the org as a whole), and says
// in every answer how many requests the current window has left and when
// it resets. When a window is spent, the next call to that endpoint waits
// for the reset instead of drawing a 429; a 429 (concurrent callers, or
// other clients of the org) is waited out the same way.
type client struct {
	base    *url.URL // org URL, path ending in "/"
	http    *http.Client
	auth    authorizer
	now     func() time.Time
	sleep   func(ctx context.Context, d time.Duration) error
	maxWait time.Duration
	log     func(ctx context.Context, msg string, args ...any)

	mu      sync.Mutex
	resetAt map[string]time.Time // endpoint -> when its spent window resets

	calls  atomic.Int64 // requests sent, for the benchmark
	waits  atomic.Int64 // rate-limit waits started
	waited atomic.Int64 // and their total, in nanoseconds
}

// apiError is an answer other than 2xx, with Okta's error object.
type apiError struct {
	status  int
	Code    string `json:"errorCode"`
	Summary string `json:"errorSummary"`
}

func (e *apiError) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("HTTP %d", e.status)
	}
	return fmt.Sprintf("HTTP %d %s: %s", e.status, e.Code, e.Summary)
}

// rateLimited is a rate limit gitgrant did not wait out.
type rateLimited struct {
	until time.Time
	err   error
}

func (e *rateLimited) Error() string {
	return fmt.Sprintf("rate limited by Okta until %s: %v", e.until.UTC().Format(time.RFC3339), e.err)
}
func (e *rateLimited) Unwrap() error { return e.err }

// do sends one request to endpoint (the name of its rate-limit bucket) and
// decodes a JSON answer into out. target is relative to the org URL, or
// absolute for a Link that Okta gave (then it must be on the org's host).
func (c *client) do(ctx context.Context, endpoint, method, target string, out any) (http.Header, error) {
	u, err := c.base.Parse(target)
	if err != nil || u.Scheme != c.base.Scheme || u.Host != c.base.Host {
		return nil, fmt.Errorf("refusing to follow %q off the Okta org", target)
	}
	var refused bool
	for attempt := 1; ; attempt++ {
		if err := c.waitWindow(ctx, endpoint, nil); err != nil {
			return nil, err
		}
		auth, err := c.auth.header(ctx)
		if err != nil {
			return nil, err
		}
		req, err := http.NewRequestWithContext(ctx, method, u.String(), http.NoBody)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", auth)
		req.Header.Set("Accept", "application/json")
		c.calls.Add(1)
		resp, err := c.http.Do(req)
		if err != nil {
			return nil, err
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		c.noteWindow(endpoint, resp)
		if resp.StatusCode >= 200 && resp.StatusCode < 300 {
			if out != nil && len(bytes.TrimSpace(body)) > 0 {
				if err := json.Unmarshal(body, out); err != nil {
					return nil, fmt.Errorf("decoding %s %s: %w", method, u.Path, err)
				}
			}
			return resp.Header, nil
		}
		apiErr := &apiError{status: resp.StatusCode}
		_ = json.Unmarshal(body, apiErr)
		switch {
		case resp.StatusCode == http.StatusTooManyRequests && attempt < maxAttempts:
			c.mu.Lock()
			if _, ok := c.resetAt[endpoint]; !ok {
				// No reset header: Okta's windows are a minute long.
				c.resetAt[endpoint] = c.now().Add(time.Minute)
			}
			c.mu.Unlock()
			if err := c.waitWindow(ctx, endpoint, apiErr); err != nil {
				return nil, err
			}
			continue
		case resp.StatusCode == http.StatusUnauthorized && !refused && c.auth.renewable():
			// The token expired or was revoked before we expected:
			// fetch a new one and try once more.
			refused = true
			c.auth.refused(auth)
			continue
		}
		return resp.Header, apiErr
	}
}

// noteWindow remembers when an endpoint's window resets once it has no
// requests left (or Okta refused one with 429).
func (c *client) noteWindow(endpoint string, resp *http.Response) {
	h := resp.Header
	remaining, errR := strconv.Atoi(h.Get("X-Rate-Limit-Remaining"))
	reset, errT := strconv.ParseInt(h.Get("X-Rate-Limit-Reset"), 10, 64)
	spent := resp.StatusCode == http.StatusTooManyRequests || (errR == nil && remaining <= 0)
	if !spent {
		return
	}
	var at time.Time
	if errT == nil {
		// The reset is Okta's clock; measure it from Okta's Date so that
		// our own clock's skew does not matter. One second more, since
		// both have a resolution of a second.
		wait := time.Until(time.Unix(reset, 0))
		if date, err := http.ParseTime(h.Get("Date")); err == nil {
			wait = time.Unix(reset, 0).Sub(date)
		}
		at = c.now().Add(max(wait, 0) + time.Second)
	} else if s, err := strconv.Atoi(h.Get("Retry-After")); err == nil {
		at = c.now().Add(time.Duration(s) * time.Second)
	} else {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if at.After(c.resetAt[endpoint]) {
		c.resetAt[endpoint] = at
	}
}

// waitWindow waits until the endpoint's spent window resets. A wait longer
// than maxWait or past the context's deadline is not started.
func (c *client) waitWindow(ctx context.Context, endpoint string, cause error) error {
	c.mu.Lock()
	until, ok := c.resetAt[endpoint]
	now := c.now()
	if ok && !until.After(now) {
		delete(c.resetAt, endpoint)
		ok = false
	}
	c.mu.Unlock()
	if !ok {
		return nil
	}
	if cause == nil {
		cause = errors.New("the endpoint's rate limit window is spent")
	}
	wait := until.Sub(now)
	if wait > c.maxWait {
		return &rateLimited{until: until, err: cause}
	}
	if !providers.FitsDeadline(ctx, wait) {
		return &rateLimited{until: until, err: cause}
	}
	c.log(ctx, "okta: rate limit window spent; waiting", "endpoint", endpoint, "until", until.UTC().Format(time.RFC3339), "wait", wait.String())
	c.waits.Add(1)
	c.waited.Add(int64(wait))
	return c.sleep(ctx, wait)
}

// nextLink returns the rel="next" target of a Link header, or "".
func nextLink(h http.Header) string {
	for _, v := range h.Values("Link") {
		for _, link := range strings.Split(v, ",") {
			target, params, ok := strings.Cut(strings.TrimSpace(link), ";")
			if !ok {
				continue
			}
			for _, p := range strings.Split(params, ";") {
				if k, v, _ := strings.Cut(strings.TrimSpace(p), "="); k == "rel" && strings.Trim(v, `"`) == "next" {
					return strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(target), "<"), ">")
				}
			}
		}
	}
	return ""
}

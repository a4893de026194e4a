// Package httpapi is the one HTTP layer of gitgrant's SaaS providers. A
// Client sends JSON requests to one API and only to its host, authorises
// them with a cached token (or a static one), keeps within the API's rate
// limits (Retry-After, X-Rate-Limit windows, pacing), retries what a
// retry can fix, and classifies what is left into the errors the
// reconciler acts on. Providers that speak through an SDK or a client
// library of their own (aws, github-team) take the Pacer or the Limiter
// alone.
//
// Every wait is a duration on the provider's one clock
// (providers.Deps.Clock), checked against the caller's deadline as a
// duration (gitgrant.FitsDeadline), never as an instant: the clock may be
// years from the wall clock. A provider package keeps only its endpoints,
// its payloads and what its API's error body looks like.
package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"errors"
	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/providers"
)

// maxBody bounds what is read of one answer.
const maxBody = 32 << 20

// Config describes one API and how to treat it.
type Config struct {
	// API names the service in errors and logs: "Okta", "Microsoft Graph".
	API string
	// System is the system of the errors the reconciler sees, the
	// provider's type and name: "okta corp".
	System string
	// Provider is the provider entry's name, for messages.
	Provider string
	// BaseURL is what request paths are relative to. Requests go to its
	// scheme and host only, whatever a path or a next-page link says.
	BaseURL *url.URL
	// Auth authorises each request; nil sends no Authorization header.
	Auth Authorizer
	// MaxWait is the longest rate-limit pause a call waits out; a longer
	// one fails the call at once, retryable, saying until when.
	MaxWait time.Duration
	// Interval spaces requests at least this far apart; zero does not pace.
	Interval time.Duration
	// RateLimitRetries is how many rate-limited answers one call waits
	// out; default 5.
	RateLimitRetries int
	// ServerRetries is how often one call is retried after a 5xx, 200 ms,
	// 400 ms, ... apart; default none.
	ServerRetries int
	// Backoff is the pause after a rate-limited answer whose headers do
	// not say how long (at least a second).
	Backoff Backoff
	// Problem reads the API's error body into its error code and message;
	// nil keeps neither.
	Problem func(body []byte) (code, message string)
	// Target and Whole name, for On, what a role's target is and what
	// holds the targets: "group" and "the org".
	Target, Whole string
}

// Client sends the requests of one provider to its API. It is safe for
// concurrent use.
type Client struct {
	cfg    Config
	http   *http.Client
	log    *slog.Logger
	clock  gitgrant.Clock
	limits *Limiter
	pacer  *Pacer

	calls atomic.Int64 // requests sent
	// unreachable is set while the last call could not reach the API or
	// got a server error.
	unreachable atomic.Bool
}

// New makes a Client on deps' HTTP client, logger and clock.
func New(cfg Config, deps providers.Deps) *Client {
	if cfg.RateLimitRetries == 0 {
		cfg.RateLimitRetries = 5
	}
	hc := deps.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	log := Logger(deps, cfg.Provider)
	return &Client{
		cfg:    cfg,
		http:   hc,
		log:    log,
		clock:  gitgrant.ClockOr(deps.Clock),
		limits: NewLimiter(cfg.API, cfg.MaxWait, deps.Clock, log),
		pacer:  NewPacer(cfg.Interval, deps.Clock),
	}
}

// Logger is deps' logger (or none) naming the provider.
func Logger(deps providers.Deps, provider string) *slog.Logger {
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return log.With("provider", provider)
}

// Call is one request.
type Call struct {
	Method string
	// Path is relative to the base URL, with or without a query; or an
	// absolute URL the API handed out (a next-page link), which must be
	// on the base URL's scheme and host.
	Path string
	// Query is added to Path's own query.
	Query url.Values
	// Body, when not nil, is sent as JSON.
	Body any
	// Bucket names the rate-limit window the call counts against, for
	// APIs that limit each endpoint on its own; "" is the API's one window.
	Bucket string
}

// Do sends call, waiting out rate limits and retrying as the Config says,
// and decodes a JSON answer into out (when not nil). It returns the
// answer's header, for paging links. An answer other than 2xx is a
// *StatusError; rate limits not waited out are a *RateLimited; a token
// that could not be had is a *TokenError.
func (c *Client) Do(ctx context.Context, call Call, out any) (http.Header, error) {
	target, err := c.resolve(call)
	if err != nil {
		return nil, err
	}
	var body []byte
	if call.Body != nil {
		if body, err = json.Marshal(call.Body); err != nil {
			return nil, err
		}
	}
	var refused bool
	var throttled, failed int
	for {
		if err := c.limits.Wait(ctx, call.Bucket, nil); err != nil {
			return nil, err
		}
		if err := c.pacer.Wait(ctx); err != nil {
			return nil, err
		}
		auth, err := c.authorization(ctx)
		if err != nil {
			return nil, err
		}
		resp, data, err := c.send(ctx, call.Method, target, body, auth)
		if err != nil {
			c.unreachable.Store(true)
			return nil, err
		}
		c.unreachable.Store(resp.StatusCode >= 500)
		limited := c.note(call.Bucket, resp, throttled+1)
		if resp.StatusCode >= 200 && resp.StatusCode < 300 {
			if out != nil && len(bytes.TrimSpace(data)) > 0 {
				if err := json.Unmarshal(data, out); err != nil {
					return nil, fmt.Errorf("decoding the answer to %s %s: %w", call.Method, resp.Request.URL.Path, err)
				}
			}
			return resp.Header, nil
		}
		status := &StatusError{Status: resp.StatusCode}
		if c.cfg.Problem != nil {
			status.Code, status.Message = c.cfg.Problem(data)
		}
		switch {
		case limited && throttled < c.cfg.RateLimitRetries:
			throttled++
			if err := c.limits.Wait(ctx, call.Bucket, status); err != nil {
				return nil, err
			}
			continue
		case limited:
			return resp.Header, c.limits.Refuse(call.Bucket, status)
		case resp.StatusCode == http.StatusUnauthorized && !refused && c.cfg.Auth != nil && c.cfg.Auth.Refused(auth):
			// The token expired or was revoked before its time (clock
			// skew, rotation): fetch a new one, once.
			refused = true
			c.log.InfoContext(ctx, "access token refused; fetching a new one", "api", c.cfg.API)
			continue
		case resp.StatusCode >= 500 && failed < c.cfg.ServerRetries:
			failed++
			if err := gitgrant.Sleep(ctx, c.clock, time.Duration(failed)*200*time.Millisecond); err != nil {
				return nil, err
			}
			continue
		}
		return resp.Header, status
	}
}

// resolve makes call's URL, which must be on the base URL's host.
func (c *Client) resolve(call Call) (string, error) {
	base := c.cfg.BaseURL
	u, err := base.Parse(call.Path)
	if err != nil {
		return "", fmt.Errorf("refusing to send a request to a malformed URL: %w", err)
	}
	if u.Scheme != base.Scheme || u.Host != base.Host || u.User != nil {
		return "", fmt.Errorf("refusing to send a request to %s: it is not on %s", u.Redacted(), base.Redacted())
	}
	if len(call.Query) > 0 {
		if u.RawQuery != "" {
			u.RawQuery += "&"
		}
		u.RawQuery += call.Query.Encode()
	}
	return u.String(), nil
}

func (c *Client) authorization(ctx context.Context) (string, error) {
	if c.cfg.Auth == nil {
		return "", nil
	}
	return c.cfg.Auth.Authorization(ctx)
}

// send performs one exchange. Its errors carry the URL, never the
// Authorization header.
func (c *Client) send(ctx context.Context, method, target string, body []byte, auth string) (*http.Response, []byte, error) {
	var r io.Reader = http.NoBody
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, r)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	c.calls.Add(1)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, nil, err
	}
	return resp, data, nil
}

// note records the pause an answer asks for, and says whether the answer
// refused the request for a rate limit: a 429, or a 503 or 504 that says
// when to come back. An answer that accepted the request but spent its
// window (no requests remaining) pauses the next call of the bucket
// instead of drawing a refusal.
func (c *Client) note(bucket string, resp *http.Response, nth int) bool {
	h, code := resp.Header, resp.StatusCode
	limited := code == http.StatusTooManyRequests ||
		(code == http.StatusServiceUnavailable || code == http.StatusGatewayTimeout) && h.Get("Retry-After") != ""
	if !limited && !Spent(h) {
		return false
	}
	now := c.clock.Now()
	d, ok := Delay(h, now)
	switch {
	case ok:
		c.limits.PauseUntil(bucket, now.Add(d))
	case limited:
		// Every delay is at least a second, as the headers' are.
		c.limits.PauseUntil(bucket, now.Add(max(c.cfg.Backoff.Nth(nth), time.Second)))
	}
	return limited
}

// Fail turns err from a call into the error the reconciler acts on; what
// names the call ("grant ops (group 00g1)").
func (c *Client) Fail(what string, err error) error {
	return Classify(c.cfg.System, c.cfg.Provider, what, err)
}

// On names a call that op makes on role's target, for errors: "grant ops
// (group 00g1)"; with role "", a call on the whole: "read users of the
// org".
func (c *Client) On(op, role, target string) string {
	if role == "" {
		return op + " " + c.cfg.Whole
	}
	return fmt.Sprintf("%s %s (%s %s)", op, role, c.cfg.Target, target)
}

// FailOn is Fail for the call On names.
func (c *Client) FailOn(op, role, target string, err error) error {
	return c.Fail(c.On(op, role, target), err)
}

// CheckRoles is Check for a provider whose roles are targets on this API:
// with no role declared it sends connect, a call on the whole that op
// names ("read users of"); otherwise it checks each role with role, and
// stops at the first error that says the API refuses gitgrant altogether.
func (c *Client) CheckRoles(ctx context.Context, cfg gitgrant.ProviderConfig, op string, connect Call, role func(string) error) error {
	return providers.CheckRoles(cfg, providers.RoleChecks{
		Connect: func() error {
			_, err := c.Do(ctx, connect, nil)
			return c.FailOn(op, "", "", err) // nil stays nil
		},
		Role: role,
		Last: providers.IsSystem,
	})
}

// Confirm waits (as Settle) until visible says that a change the API
// accepted shows in its reads. An error of visible is Fail("confirm
// "+what); a change not shown within total is Unavailable, retryable:
// the next run checks again. what names the change ("grant ops (group
// 00g1)").
func (c *Client) Confirm(ctx context.Context, b Backoff, total time.Duration, what string, visible func() (bool, error)) error {
	shown, err := Settle(ctx, c.clock, b, total, visible)
	switch {
	case err != nil:
		return c.Fail("confirm "+what, err)
	case !shown:
		return providers.Unavailable(c.cfg.System, what,
			fmt.Errorf("the change was accepted but not shown by reads within %v; the next run checks again", total))
	}
	return nil
}

// Calls is how many requests the client has sent, retries included.
func (c *Client) Calls() int64 { return c.calls.Load() }

// Waited is how many rate-limit pauses the client waited out, and how
// long they took in all.
func (c *Client) Waited() (int64, time.Duration) { return c.limits.Waited() }

// Reachable says whether the last call reached the API and got an answer
// other than a server error.
func (c *Client) Reachable() bool { return !c.unreachable.Load() }

// NextLink returns the rel="next" target of an answer's Link header
// (RFC 8288), or "".
func NextLink(h http.Header) string {
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

// BaseURL parses an API's URL setting: http or https, with a host and no
// user info or query. Its path ends in "/", so that request paths are
// relative to it.
func BaseURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.RawQuery != "" {
		return nil, errors.New("not an http(s) URL without user info or query")
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	return u, nil
}

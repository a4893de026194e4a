package ghapi

import (
	"bytes"
	"container/list"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gitgrant/gitgrant"
)

// Stats counts what a Transport did. Requests is every request that went
// out on the network (retries included); NotModified the 304s answered
// from the cache (GitHub does not charge them against the rate limit).
type Stats struct {
	Requests       int64 `json:"requests"`
	NotModified    int64 `json:"not_modified"`
	Retries        int64 `json:"retries"`
	RateLimitWaits int64 `json:"rate_limit_waits"`
	ServerErrors   int64 `json:"server_errors"`
}

// RateLimitedError is returned instead of waiting when GitHub asks for a
// longer pause than the transport may take. Until says when to try again.
type RateLimitedError struct {
	Until     time.Time
	Secondary bool
}

func (e *RateLimitedError) Error() string {
	kind := "primary"
	if e.Secondary {
		kind = "secondary"
	}
	return fmt.Sprintf("GitHub %s rate limit: retry after %s", kind, e.Until.UTC().Format(time.RFC3339))
}

// Transport is an http.RoundTripper for GitHub's REST API. It waits out
// primary and secondary rate limits (bounded, and aware of the request's
// context), retries idempotent requests on 5xx and network errors with
// exponential backoff and jitter, revalidates GET responses with ETags so
// that unchanged data costs a 304, and counts every request.
type Transport struct {
	Base http.RoundTripper
	// Clock times waits and rate-limit windows; nil is the wall clock.
	Clock gitgrant.Clock
	// MaxRetries bounds attempts after the first (default 4).
	MaxRetries int
	// MaxWait bounds one rate-limit wait; a longer one fails with
	// *RateLimitedError (default 2 minutes).
	MaxWait time.Duration
	// Backoff is the first retry delay, doubled each time up to MaxBackoff
	// (defaults 500ms and 15s), with jitter.
	Backoff, MaxBackoff time.Duration
	// CacheEntries bounds the ETag cache (default 512; negative disables).
	CacheEntries int
	// Logger receives waits and retries (method and path only: never
	// headers, so never a token).
	Logger *slog.Logger

	requests, notModified, retries, waits, serverErrors atomic.Int64

	mu           sync.Mutex
	blockedUntil time.Time
	lru          *list.List
	cache        map[string]*list.Element
}

type cacheEntry struct {
	key    string
	etag   string
	header http.Header
	body   []byte
}

// Stats returns the counters so far.
func (t *Transport) Stats() Stats {
	return Stats{
		Requests: t.requests.Load(), NotModified: t.notModified.Load(), Retries: t.retries.Load(),
		RateLimitWaits: t.waits.Load(), ServerErrors: t.serverErrors.Load(),
	}
}

func (t *Transport) now() time.Time { return gitgrant.ClockOr(t.Clock).Now() }

func (t *Transport) sleep(ctx context.Context, d time.Duration) error {
	return gitgrant.Sleep(ctx, t.Clock, d)
}

func (t *Transport) base() http.RoundTripper {
	if t.Base != nil {
		return t.Base
	}
	return http.DefaultTransport
}

func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete, http.MethodOptions:
		return true
	}
	return false
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	maxRetries := t.MaxRetries
	if maxRetries == 0 {
		maxRetries = 4
	}
	if err := t.waitPrimary(ctx); err != nil {
		return nil, err
	}
	cached := t.lookup(req)
	for attempt := 0; ; attempt++ {
		out, err := t.prepare(req, attempt, cached)
		if err != nil {
			return nil, err
		}
		t.requests.Add(1)
		resp, err := t.base().RoundTrip(out)
		last := attempt >= maxRetries
		if err != nil {
			if last || !idempotent(req.Method) || ctx.Err() != nil {
				return nil, err
			}
			t.log("GitHub unreachable: retrying", req, "err", err, "attempt", attempt+1)
			if err := t.backoff(ctx, attempt, 0); err != nil {
				return nil, err
			}
			continue
		}
		t.notePrimary(resp)
		if wait, secondary, limited := t.rateLimited(resp); limited {
			if wait > t.maxWait() {
				drain(resp)
				return nil, &RateLimitedError{Until: t.now().Add(wait), Secondary: secondary}
			}
			if last {
				return resp, nil
			}
			drain(resp)
			t.waits.Add(1)
			t.retries.Add(1)
			t.log("GitHub rate limit: waiting", req, "wait", wait, "secondary", secondary)
			if err := t.sleep(ctx, wait); err != nil {
				return nil, err
			}
			continue
		}
		if resp.StatusCode >= 500 {
			t.serverErrors.Add(1)
			if !last && idempotent(req.Method) {
				retryAfter := parseRetryAfter(resp.Header.Get("Retry-After"), t.now())
				t.log("GitHub server error: retrying", req, "status", resp.StatusCode, "attempt", attempt+1)
				drain(resp)
				if err := t.backoff(ctx, attempt, retryAfter); err != nil {
					return nil, err
				}
				continue
			}
		}
		return t.finish(req, resp, cached)
	}
}

func (t *Transport) log(msg string, req *http.Request, args ...any) {
	if t.Logger == nil {
		return
	}
	t.Logger.Warn(msg, append([]any{"method", req.Method, "path", req.URL.Path}, args...)...)
}

// prepare clones the request for one attempt, rewinding its body and
// adding If-None-Match when a cached response can be revalidated.
func (t *Transport) prepare(req *http.Request, attempt int, cached *cacheEntry) (*http.Request, error) {
	out := req.Clone(req.Context())
	if attempt > 0 && req.Body != nil && req.Body != http.NoBody {
		if req.GetBody == nil {
			return nil, errors.New("github: cannot retry a request whose body cannot be rewound")
		}
		b, err := req.GetBody()
		if err != nil {
			return nil, err
		}
		out.Body = b
	}
	if cached != nil {
		out.Header.Set("If-None-Match", cached.etag)
	}
	return out, nil
}

func (t *Transport) finish(req *http.Request, resp *http.Response, cached *cacheEntry) (*http.Response, error) {
	// The transport owns rate-limit waits; this header stops go-github from
	// refusing requests on its own before our wait could happen.
	resp.Header.Set("X-From-Cache", "1")
	if resp.StatusCode == http.StatusNotModified && cached != nil {
		drain(resp)
		t.notModified.Add(1)
		h := cached.header.Clone()
		for k, v := range resp.Header {
			if strings.HasPrefix(k, "X-Ratelimit") {
				h[k] = v
			}
		}
		h.Set("X-From-Cache", "1")
		return &http.Response{
			Status: "200 OK", StatusCode: http.StatusOK, Proto: resp.Proto, ProtoMajor: resp.ProtoMajor, ProtoMinor: resp.ProtoMinor,
			Header: h, Body: io.NopCloser(bytes.NewReader(cached.body)), ContentLength: int64(len(cached.body)), Request: req,
		}, nil
	}
	if req.Method == http.MethodGet && resp.StatusCode == http.StatusOK && resp.Header.Get("ETag") != "" && t.CacheEntries >= 0 {
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20+1))
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		if len(body) <= 1<<20 {
			t.store(req, resp, body)
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
	}
	return resp, nil
}

func (t *Transport) maxWait() time.Duration {
	if t.MaxWait > 0 {
		return t.MaxWait
	}
	return 2 * time.Minute
}

// backoff sleeps before retry attempt+1: at least retryAfter, otherwise an
// exponential delay with jitter in [d/2, d).
func (t *Transport) backoff(ctx context.Context, attempt int, retryAfter time.Duration) error {
	t.retries.Add(1)
	base, limit := t.Backoff, t.MaxBackoff
	if base <= 0 {
		base = 500 * time.Millisecond
	}
	if limit <= 0 {
		limit = 15 * time.Second
	}
	d := base << min(attempt, 16)
	if d > limit || d <= 0 {
		d = limit
	}
	d = d/2 + rand.N(d/2+1)
	if retryAfter > d {
		d = min(retryAfter, t.maxWait())
	}
	return t.sleep(ctx, d)
}

// waitPrimary waits, before sending, when an earlier response said the
// primary limit is used up.
func (t *Transport) waitPrimary(ctx context.Context) error {
	t.mu.Lock()
	until := t.blockedUntil
	t.mu.Unlock()
	wait := until.Sub(t.now())
	if wait <= 0 {
		return nil
	}
	if wait > t.maxWait() {
		return &RateLimitedError{Until: until}
	}
	t.waits.Add(1)
	return t.sleep(ctx, wait)
}

func (t *Transport) notePrimary(resp *http.Response) {
	switch resp.Header.Get("X-RateLimit-Remaining") {
	case "":
		return
	case "0":
	default: // requests remain again: no reason to wait any more
		t.mu.Lock()
		t.blockedUntil = time.Time{}
		t.mu.Unlock()
		return
	}
	reset, err := strconv.ParseInt(resp.Header.Get("X-RateLimit-Reset"), 10, 64)
	if err != nil {
		return
	}
	t.mu.Lock()
	t.blockedUntil = time.Unix(reset, 0).Add(time.Second)
	t.mu.Unlock()
}

// rateLimited recognises GitHub's rate-limit answers (403 or 429) and says
// how long to wait, following GitHub's guidance: Retry-After if present;
// else the reset time when no requests remain; else at least a minute.
func (t *Transport) rateLimited(resp *http.Response) (time.Duration, bool, bool) {
	if resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusTooManyRequests {
		return 0, false, false
	}
	now := t.now()
	if ra := resp.Header.Get("Retry-After"); ra != "" {
		return max(parseRetryAfter(ra, now), time.Second), true, true
	}
	if resp.Header.Get("X-RateLimit-Remaining") == "0" {
		reset, err := strconv.ParseInt(resp.Header.Get("X-RateLimit-Reset"), 10, 64)
		if err == nil {
			return max(time.Unix(reset, 0).Sub(now)+time.Second, time.Second), false, true
		}
	}
	if resp.StatusCode == http.StatusTooManyRequests || t.secondaryBody(resp) {
		return time.Minute, true, true
	}
	return 0, false, false
}

// secondaryBody peeks at a 403's body for GitHub's secondary-limit message,
// leaving the body readable.
func (t *Transport) secondaryBody(resp *http.Response) bool {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return bytes.Contains(bytes.ToLower(body), []byte("secondary rate limit"))
}

func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if at, err := http.ParseTime(v); err == nil {
		return max(at.Sub(now), 0)
	}
	return 0
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
}

func cacheKey(req *http.Request) string {
	return req.URL.String() + "\x00" + req.Header.Get("Accept")
}

func (t *Transport) lookup(req *http.Request) *cacheEntry {
	if req.Method != http.MethodGet || req.Header.Get("If-None-Match") != "" || t.CacheEntries < 0 {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if el, ok := t.cache[cacheKey(req)]; ok {
		t.lru.MoveToFront(el)
		return el.Value.(*cacheEntry)
	}
	return nil
}

func (t *Transport) store(req *http.Request, resp *http.Response, body []byte) {
	limit := t.CacheEntries
	if limit == 0 {
		limit = 512
	}
	e := &cacheEntry{key: cacheKey(req), etag: resp.Header.Get("ETag"), header: resp.Header.Clone(), body: body}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cache == nil {
		t.cache, t.lru = map[string]*list.Element{}, list.New()
	}
	if el, ok := t.cache[e.key]; ok {
		el.Value = e
		t.lru.MoveToFront(el)
		return
	}
	t.cache[e.key] = t.lru.PushFront(e)
	for t.lru.Len() > limit {
		old := t.lru.Back()
		t.lru.Remove(old)
		delete(t.cache, old.Value.(*cacheEntry).key)
	}
}

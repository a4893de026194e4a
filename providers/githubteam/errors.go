package githubteam

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/google/go-github/v60/github"

	"github.com/gitgrant/gitgrant/providers"
	"github.com/gitgrant/gitgrant/providers/internal/httpapi"
)

// maxRateLimitRetries bounds the waits of one call, on top of maxWait.
const maxRateLimitRetries = 5

// call runs one API request, waiting out rate limits: until the primary
// limit resets, or as long as a secondary limit's Retry-After says. The
// pause holds back every call of the provider (httpapi.Limiter); a wait
// longer than maxWait, or past the context's deadline, is not started: the
// call fails at once with a retryable error that says when to come back.
func (p *Provider) call(ctx context.Context, do func() (*github.Response, error)) (*github.Response, error) {
	for attempt := 0; ; attempt++ {
		if err := p.limits.Wait(ctx, "", nil); err != nil {
			return nil, err
		}
		resp, err := do()
		wait, limited := p.rateLimitWait(err)
		if !limited {
			return resp, err
		}
		p.limits.PauseUntil("", p.clock.Now().Add(wait))
		if attempt == maxRateLimitRetries {
			return resp, p.limits.Refuse("", err)
		}
		if err := p.limits.Wait(ctx, "", err); err != nil {
			return resp, err
		}
	}
}

// rateLimitWait says whether err is a rate limit and how long to wait.
// go-github reports the primary limit as *RateLimitError (also without a
// request, while it knows the limit is spent) and a secondary one as
// *AbuseRateLimitError; a 429, which go-github v60 does not classify, is a
// plain *ErrorResponse with Retry-After or X-RateLimit-Reset.
func (p *Provider) rateLimitWait(err error) (time.Duration, bool) {
	var primary *github.RateLimitError
	var secondary *github.AbuseRateLimitError
	var resp *github.ErrorResponse
	switch {
	case errors.As(err, &primary):
		// The reset time has a resolution of a second; come back just after.
		return max(primary.Rate.Reset.Time.Sub(p.clock.Now())+time.Second, time.Second), true
	case errors.As(err, &secondary):
		if d := secondary.GetRetryAfter(); d > 0 {
			return d, true
		}
		return defaultSecondaryWait, true
	case errors.As(err, &resp) && resp.Response != nil:
		h, code := resp.Response.Header, resp.Response.StatusCode
		if code != http.StatusTooManyRequests && !(code == http.StatusForbidden && (h.Get("Retry-After") != "" || httpapi.Spent(h))) {
			return 0, false
		}
		if d, ok := httpapi.Delay(h, p.clock.Now()); ok {
			return d, true
		}
		return defaultSecondaryWait, true
	}
	return 0, false
}

func isNotFound(err error) bool {
	var resp *github.ErrorResponse
	return errors.As(err, &resp) && resp.Response != nil && resp.Response.StatusCode == http.StatusNotFound
}

// wrap turns an API error into the errors the reconciler acts on: an
// answer by its status, as httpapi's clients' (a 404 is not found, or the
// token cannot see it; 401 and 403 refuse gitgrant), anything else as
// httpapi classifies it.
func (p *Provider) wrap(op, role, slug string, err error) error {
	what := fmt.Sprintf("%s %s (team %s/%s)", op, role, p.org, slug)
	if role == "" {
		what = op + " " + p.org
	}
	var limited *httpapi.RateLimited
	var resp *github.ErrorResponse
	if !errors.As(err, &limited) && errors.As(err, &resp) && resp.Response != nil {
		return providers.FromHTTPStatus(p.system(), p.cfg.Name, what, resp.Response.StatusCode, err)
	}
	return httpapi.Classify(p.system(), p.cfg.Name, what, err)
}

func (p *Provider) system() string { return "github-team " + p.cfg.Name }

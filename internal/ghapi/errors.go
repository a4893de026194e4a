package ghapi

import (
	"errors"
	"net/http"

	"github.com/google/go-github/v60/github"

	"github.com/gitgrant/gitgrant"
)

// What GitHub's refusals mean, for callers that decide by them with
// errors.Is. A missing file is fs.ErrNotExist instead (ReadFile, Contents).
var (
	// ErrForbidden: GitHub answered 403, and not for a rate limit: the
	// token may not do what was asked.
	ErrForbidden = errors.New("github: forbidden")
	// ErrNotFound: GitHub answered 404, which it also answers to a token
	// that may not see what was asked for.
	ErrNotFound = errors.New("github: not found")
)

// fail is the one place a failed call to GitHub becomes gitgrant's error:
// a *gitgrant.SystemError, retryable when GitHub did not answer, answered
// 5xx or 429, or set a rate limit; its chain also holds ErrForbidden or
// ErrNotFound for those answers. The error's text is err's.
func fail(op string, resp *github.Response, err error) error {
	retry := resp == nil || resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests || rateLimited(err)
	if kind := refusedAs(resp, err); kind != nil {
		err = &statusError{err: err, kind: kind}
	}
	return &gitgrant.SystemError{System: "github", Op: op, Err: err, Retryable: retry}
}

// refusedAs is ErrForbidden for a 403 that is not a rate limit, ErrNotFound
// for a 404, else nil.
func refusedAs(resp *github.Response, err error) error {
	switch {
	case resp == nil || rateLimited(err):
		return nil
	case resp.StatusCode == http.StatusForbidden:
		return ErrForbidden
	case resp.StatusCode == http.StatusNotFound:
		return ErrNotFound
	}
	return nil
}

func rateLimited(err error) bool {
	var waited *RateLimitedError
	var primary *github.RateLimitError
	var secondary *github.AbuseRateLimitError
	return errors.As(err, &waited) || errors.As(err, &primary) || errors.As(err, &secondary)
}

// statusError keeps the text of GitHub's error and adds what its status
// means.
type statusError struct {
	err, kind error
}

func (e *statusError) Error() string   { return e.err.Error() }
func (e *statusError) Unwrap() []error { return []error{e.err, e.kind} }

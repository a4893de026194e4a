package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/providers"
)

// Authorizer gives each request its Authorization header.
type Authorizer interface {
	Authorization(ctx context.Context) (string, error)
	// Refused is told that the API refused header (401). It reports
	// whether another credential may be tried.
	Refused(header string) bool
}

// Static is an Authorization header that never changes, such as an API
// token's; a refused one cannot be replaced.
type Static string

func (s Static) Authorization(context.Context) (string, error) { return string(s), nil }
func (Static) Refused(string) bool                             { return false }

// TokenConfig describes where a TokenSource gets its tokens.
type TokenConfig struct {
	// Fetch gets a new token. Its context carries the provider's HTTP
	// client for x/oauth2 (oauth2.HTTPClient).
	Fetch func(ctx context.Context) (*oauth2.Token, error)
	// Early is how long before its expiry a token is replaced, so that it
	// does not run out between being read and reaching the API; default a
	// minute.
	Early time.Duration
	// Secrets are cut out of anything a failed token request reports.
	Secrets []string
	// Describe keeps the token endpoint's error_description in errors;
	// without it, only the status and the error code are reported.
	Describe bool
}

// TokenSource keeps one OAuth 2.0 access token until shortly before it
// expires, judged by the provider's clock, and fetches a new one when the
// API refuses it. Concurrent callers share one fetch.
type TokenSource struct {
	cfg   TokenConfig
	http  *http.Client
	clock gitgrant.Clock

	mu  sync.Mutex // held while fetching
	tok *oauth2.Token
}

var _ Authorizer = (*TokenSource)(nil)

// NewTokenSource makes a TokenSource on deps' HTTP client and clock.
func NewTokenSource(cfg TokenConfig, deps providers.Deps) *TokenSource {
	if cfg.Early == 0 {
		cfg.Early = time.Minute
	}
	hc := deps.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	return &TokenSource{cfg: cfg, http: hc, clock: gitgrant.ClockOr(deps.Clock)}
}

// Authorization returns "Bearer <token>", fetching a token when there is
// none that lasts long enough.
func (s *TokenSource) Authorization(ctx context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok != nil && s.clock.Now().Add(s.cfg.Early).Before(s.tok.Expiry) {
		return "Bearer " + s.tok.AccessToken, nil
	}
	tok, err := s.cfg.Fetch(context.WithValue(ctx, oauth2.HTTPClient, s.http))
	if err != nil {
		return "", s.failure(err)
	}
	if tok.Expiry.IsZero() {
		// x/oauth2 sets Expiry from expires_in; without one, keep the
		// token for the usual hour.
		tok.Expiry = time.Now().Add(time.Hour)
	}
	// x/oauth2 computes Expiry by the wall clock; re-base it on the
	// provider's, so that a clock moved by a test runs tokens out.
	tok.Expiry = s.clock.Now().Add(time.Until(tok.Expiry))
	s.tok = tok
	return "Bearer " + tok.AccessToken, nil
}

// Refused forgets the token the API refused, if it is still the one held.
func (s *TokenSource) Refused(header string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok != nil && header == "Bearer "+s.tok.AccessToken {
		s.tok = nil
	}
	return true
}

// TokenError is a token request that failed. It keeps the status, the
// OAuth error code and (when the source describes errors) the first line
// of the description, with the source's secrets cut out; never the
// request, which holds a secret or a signed assertion.
type TokenError struct {
	Status      int
	Code        string
	Description string
	// Transport is why no answer came, when none did.
	Transport error
}

func (e *TokenError) Error() string {
	if e.Transport != nil {
		return fmt.Sprintf("requesting an access token: %v", e.Transport)
	}
	return "requesting an access token: " + describeAnswer(e.Status, e.Code, e.Description)
}

// Retryable says whether a retry may help: the token endpoint was
// unreachable or failed on its side. A refused client, key or scope needs
// someone to fix the configuration.
func (e *TokenError) Retryable() bool {
	return e.Transport != nil || e.Status >= 500 || e.Status == http.StatusTooManyRequests
}

// oauthCode is what an RFC 6749 error code looks like; anything else is
// not quoted.
var oauthCode = regexp.MustCompile(`^[a-z_]{1,40}$`)

func (s *TokenSource) failure(err error) error {
	var te *TokenError
	var re *oauth2.RetrieveError
	var ue *url.Error
	switch {
	case errors.As(err, &te):
		return te
	case errors.As(err, &re) && re.Response == nil:
		return &TokenError{Transport: errors.New("the token response is unusable")}
	case errors.As(err, &re):
		out := &TokenError{Status: re.Response.StatusCode, Code: re.ErrorCode}
		if out.Code == "" {
			var body struct {
				Error string `json:"error"`
			}
			if json.Unmarshal(re.Body, &body) == nil {
				out.Code = body.Error
			}
		}
		if !oauthCode.MatchString(out.Code) {
			out.Code = ""
		}
		if s.cfg.Describe {
			desc, _, _ := strings.Cut(re.ErrorDescription, "\r\n") // Entra appends trace and correlation ids
			out.Description = s.scrub(desc)
		}
		return out
	case errors.As(err, &ue):
		return &TokenError{Transport: errors.New(s.scrub(ue.Err.Error()))}
	}
	// x/oauth2's own messages (an unreadable or incomplete answer, a
	// transport error it formatted) name the endpoint, not the request.
	return &TokenError{Transport: errors.New(s.scrub(err.Error()))}
}

func (s *TokenSource) scrub(text string) string {
	for _, secret := range s.cfg.Secrets {
		if secret != "" {
			text = strings.ReplaceAll(text, secret, "[redacted]")
		}
	}
	return text
}

package ghapi

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/oauth2"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/jwtsign"
)

// ParsePrivateKey reads a GitHub App private key (PKCS#1 as GitHub issues
// it, or PKCS#8). Errors never include the key material.
func ParsePrivateKey(pemData []byte) (*rsa.PrivateKey, error) {
	k, err := jwtsign.ParseRSAKey(pemData)
	if err != nil {
		return nil, fmt.Errorf("GitHub App private key: %w", err)
	}
	return k, nil
}

// AppJWT signs the short-lived RS256 JWT a GitHub App uses to ask for
// installation tokens: issued 60 s in the past against clock drift, valid
// nine minutes (GitHub allows ten).
func AppJWT(appID int64, key *rsa.PrivateKey, now time.Time) (string, error) {
	return jwtsign.SignRS256(key, "", map[string]any{
		"iat": now.Add(-60 * time.Second).Unix(),
		"exp": now.Add(9 * time.Minute).Unix(),
		"iss": strconv.FormatInt(appID, 10),
	})
}

// AppTokenSource mints installation access tokens for a GitHub App and
// reuses each until RefreshBefore its expiry, so that a token never lapses
// in the middle of a reconcile. It is an oauth2.TokenSource.
type AppTokenSource struct {
	AppID          int64
	InstallationID int64
	Key            *rsa.PrivateKey
	// BaseURL is the API base with a trailing slash.
	BaseURL string
	// HTTP sends the exchange; it must not add authentication itself.
	HTTP *http.Client
	// Clock judges token lifetimes; nil is the wall clock.
	Clock gitgrant.Clock
	// RefreshBefore is how long before expiry a new token is minted
	// (default 5 minutes).
	RefreshBefore time.Duration
	// Repositories, when set, narrows the token to these repository names
	// (least privilege: the access repository only).
	Repositories []string

	mu     sync.Mutex
	token  *oauth2.Token
	minted int
}

var _ oauth2.TokenSource = (*AppTokenSource)(nil)

// Minted is how many installation tokens this source has obtained.
func (s *AppTokenSource) Minted() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.minted
}

func (s *AppTokenSource) now() time.Time { return gitgrant.ClockOr(s.Clock).Now() }

// Token returns a valid installation token, minting one when the current
// one is missing or close to expiry.
func (s *AppTokenSource) Token() (*oauth2.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	before := s.RefreshBefore
	if before <= 0 {
		before = 5 * time.Minute
	}
	if s.token != nil && s.now().Before(s.token.Expiry.Add(-before)) {
		return s.token, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tok, err := s.exchange(ctx)
	if err != nil {
		return nil, err
	}
	s.token = tok
	s.minted++
	return tok, nil
}

func (s *AppTokenSource) exchange(ctx context.Context) (*oauth2.Token, error) {
	var body io.Reader = http.NoBody
	if len(s.Repositories) > 0 {
		b, _ := json.Marshal(map[string]any{"repositories": s.Repositories})
		body = bytes.NewReader(b)
	}
	resp, data, err := s.asApp(ctx, http.MethodPost, fmt.Sprintf("app/installations/%d/access_tokens", s.InstallationID), body)
	if err != nil {
		return nil, fmt.Errorf("GitHub App installation %d: get access token: %w", s.InstallationID, err)
	}
	if resp.StatusCode != http.StatusCreated {
		var e struct {
			Message string `json:"message"`
		}
		_ = json.Unmarshal(data, &e)
		return nil, fmt.Errorf("GitHub App installation %d: get access token: %s: %s", s.InstallationID, resp.Status, e.Message)
	}
	var out struct {
		Token     string    `json:"token"`
		ExpiresAt time.Time `json:"expires_at"`
	}
	if err := json.Unmarshal(data, &out); err != nil || out.Token == "" {
		return nil, fmt.Errorf("GitHub App installation %d: get access token: unreadable answer", s.InstallationID)
	}
	return &oauth2.Token{AccessToken: out.Token, TokenType: "token", Expiry: out.ExpiresAt}, nil
}

// asApp sends a request to GitHub authenticated as the App itself, with
// a JWT signed by its key (for the endpoints no installation token may
// call), and returns the answer and up to 64 KiB of its body.
func (s *AppTokenSource) asApp(ctx context.Context, method, path string, body io.Reader) (*http.Response, []byte, error) {
	jwt, err := AppJWT(s.AppID, s.Key, s.now())
	if err != nil {
		return nil, nil, err
	}
	req, err := http.NewRequestWithContext(ctx, method, s.BaseURL+path, body)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+jwt)
	req.Header.Set("Accept", "application/vnd.github+json")
	req.Header.Set("X-GitHub-Api-Version", "2022-11-28")
	client := s.HTTP
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp, data, nil
}

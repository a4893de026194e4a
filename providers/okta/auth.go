package okta

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// authorizer gives the Authorization header of the next request, and
// forgets a token the server refused.
type authorizer interface {
	header(ctx context.Context) (string, error)
	refused(header string)
	// renewable says whether a refused token can be replaced by a new one.
	renewable() bool
}

// apiToken is an Okta API token: "SSWS <token>", valid until revoked.
type apiToken string

func (a apiToken) header(context.Context) (string, error) { return "SSWS " + string(a), nil }
func (apiToken) refused(string)                           {}
func (apiToken) renewable() bool                          { return false }

// tokenEarly is how long before its expiry a token is replaced, so that
// it does not run out between being read and reaching Okta.
const tokenEarly = time.Minute

// assertionLifetime is how long a client assertion is valid; Okta accepts
// at most an hour.
const assertionLifetime = 5 * time.Minute

// serviceApp gets access tokens for an OAuth 2.0 service app with the
// client credentials grant, authenticated by a private-key JWT
// (client_assertion) signed with RS256. A new assertion is signed for each
// token request: Okta refuses a reused jti.
type serviceApp struct {
	clientID, keyID, tokenURL string
	scopes                    []string
	key                       *rsa.PrivateKey
	httpClient                *http.Client
	now                       func() time.Time

	mu  sync.Mutex // held while fetching, so concurrent callers share one token
	tok *oauth2.Token
}

func (s *serviceApp) renewable() bool { return true }

func (s *serviceApp) header(ctx context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok != nil && s.now().Add(tokenEarly).Before(s.tok.Expiry) {
		return "Bearer " + s.tok.AccessToken, nil
	}
	assertion, err := s.assertion()
	if err != nil {
		return "", err
	}
	cfg := clientcredentials.Config{
		ClientID: s.clientID,
		TokenURL: s.tokenURL,
		Scopes:   s.scopes,
		EndpointParams: url.Values{
			"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
			"client_assertion":      {assertion},
		},
		AuthStyle: oauth2.AuthStyleInParams,
	}
	tok, err := cfg.Token(context.WithValue(ctx, oauth2.HTTPClient, s.httpClient))
	if err != nil {
		return "", tokenError(err)
	}
	if tok.Expiry.IsZero() {
		// x/oauth2 computes Expiry from expires_in with the real clock;
		// without one, keep the token for Okta's default hour.
		tok.Expiry = time.Now().Add(time.Hour)
	}
	// Re-base the expiry on the injected clock, so that tests that move it
	// see tokens run out.
	tok.Expiry = s.now().Add(time.Until(tok.Expiry))
	s.tok = tok
	return "Bearer " + tok.AccessToken, nil
}

func (s *serviceApp) refused(header string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok != nil && header == "Bearer "+s.tok.AccessToken {
		s.tok = nil
	}
}

// assertion signs the client assertion JWT Okta's token endpoint expects:
// iss and sub the client id, aud the token endpoint, a unique jti.
func (s *serviceApp) assertion() (string, error) {
	jti := make([]byte, 16)
	if _, err := rand.Read(jti); err != nil {
		return "", err
	}
	now := s.now()
	header := map[string]string{"alg": "RS256", "typ": "JWT"}
	if s.keyID != "" {
		header["kid"] = s.keyID
	}
	claims := map[string]any{
		"iss": s.clientID,
		"sub": s.clientID,
		"aud": s.tokenURL,
		"iat": now.Unix(),
		"exp": now.Add(assertionLifetime).Unix(),
		"jti": hex.EncodeToString(jti),
	}
	var parts []string
	for _, v := range []any{header, claims} {
		b, err := json.Marshal(v)
		if err != nil {
			return "", err
		}
		parts = append(parts, base64.RawURLEncoding.EncodeToString(b))
	}
	input := strings.Join(parts, ".")
	sum := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(rand.Reader, s.key, crypto.SHA256, sum[:])
	if err != nil {
		return "", fmt.Errorf("signing the client assertion: %w", err)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

// parsePrivateKey reads an RSA private key in PEM, PKCS#1 or PKCS#8. Its
// errors never quote the input.
func parsePrivateKey(pemText string) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode([]byte(pemText))
	if block == nil {
		return nil, errors.New("private key is not PEM (-----BEGIN PRIVATE KEY-----)")
	}
	if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, errors.New("private key is neither PKCS#1 nor PKCS#8")
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("private key is %T; Okta's private_key_jwt here needs RSA (RS256)", k)
	}
	return rk, nil
}

// tokenFailure is a token request that failed. It keeps only Okta's error
// code and description, never the request (which holds the assertion).
type tokenFailure struct {
	status    int
	code      string
	desc      string
	transport error
}

func tokenError(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil {
		return &tokenFailure{status: re.Response.StatusCode, code: re.ErrorCode, desc: re.ErrorDescription}
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return &tokenFailure{transport: ue.Err}
	}
	return &tokenFailure{transport: errors.New("token response unusable")}
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

// retryable: the token endpoint was unreachable or failed on its side; a
// refused client or scope needs someone to fix the configuration.
func (e *tokenFailure) retryable() bool {
	return e.transport != nil || e.status >= 500 || e.status == http.StatusTooManyRequests
}

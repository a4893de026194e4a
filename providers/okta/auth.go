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
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/gitgrant/gitgrant"
)

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
	clock                     gitgrant.Clock
}

// token fetches a new access token; ctx carries the HTTP client.
func (s *serviceApp) token(ctx context.Context) (*oauth2.Token, error) {
	assertion, err := s.assertion()
	if err != nil {
		return nil, err
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
	return cfg.Token(ctx)
}

// assertion signs the client assertion JWT Okta's token endpoint expects:
// iss and sub the client id, aud the token endpoint, a unique jti.
func (s *serviceApp) assertion() (string, error) {
	jti := make([]byte, 16)
	if _, err := rand.Read(jti); err != nil {
		return "", err
	}
	now := s.clock.Now()
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

package okta

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"net/url"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/jwtsign"
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
	return jwtsign.SignRS256(s.key, s.keyID, map[string]any{
		"iss": s.clientID,
		"sub": s.clientID,
		"aud": s.tokenURL,
		"iat": now.Unix(),
		"exp": now.Add(assertionLifetime).Unix(),
		"jti": hex.EncodeToString(jti),
	})
}

package ghfake

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gitgrant/gitgrant/internal/jwtsign"
)

// accessToken implements POST /app/installations/{id}/access_tokens: the
// bearer must be an RS256 JWT signed by the installation's app, issued by
// its app id, valid now and for at most ten minutes (GitHub's rules).
func (s *Server) accessToken(w http.ResponseWriter, r *http.Request) {
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	s.mu.Lock()
	defer s.mu.Unlock()
	appID, ok := s.installs[id]
	if !ok {
		notFound(w, r)
		return
	}
	jwt := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	if err := verifyJWT(jwt, s.apps[appID], appID, s.now()); err != nil {
		writeJSON(w, r, http.StatusUnauthorized, map[string]any{"message": "A JSON web token could not be decoded: " + err.Error()})
		return
	}
	buf := make([]byte, 16)
	_, _ = rand.Read(buf)
	tok := "ghs_" + hex.EncodeToString(buf)
	exp := s.now().Add(s.tokenTTL)
	s.tokens[tok] = exp
	s.actors[tok] = s.appSlug(appID) + "[bot]"
	s.bots[tok] = true
	s.minted++
	writeJSON(w, r, http.StatusCreated, map[string]any{"token": tok, "expires_at": exp.UTC().Format(time.RFC3339)})
}

// getApp implements GET /app: the App the bearer JWT is signed by.
func (s *Server) getApp(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	jwt := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	var claims struct {
		Iss json.RawMessage `json:"iss"`
	}
	_ = jwtsign.Peek(jwt, &claims)
	appID, _ := strconv.ParseInt(strings.Trim(string(claims.Iss), `"`), 10, 64)
	key, ok := s.apps[appID]
	if !ok {
		writeJSON(w, r, http.StatusUnauthorized, map[string]any{"message": "A JSON web token could not be decoded"})
		return
	}
	if err := verifyJWT(jwt, key, appID, s.now()); err != nil {
		writeJSON(w, r, http.StatusUnauthorized, map[string]any{"message": "A JSON web token could not be decoded: " + err.Error()})
		return
	}
	slug := s.appSlug(appID)
	writeJSON(w, r, http.StatusOK, map[string]any{"id": appID, "slug": slug, "name": slug, "owner": user("acme"),
		"html_url": "https://github.example/apps/" + slug})
}

// getUser implements GET /user: the user a token belongs to. An
// installation token may not call it, as on GitHub.
func (s *Server) getUser(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	login, bot := s.actor(r)
	s.mu.Unlock()
	if bot {
		writeJSON(w, r, http.StatusForbidden, map[string]any{"message": "Resource not accessible by integration",
			"documentation_url": "https://docs.github.com/rest/users/users#get-the-authenticated-user"})
		return
	}
	writeJSON(w, r, http.StatusOK, user(login))
}

func verifyJWT(tok string, key *rsa.PublicKey, appID int64, now time.Time) error {
	var claims struct {
		Iss json.RawMessage `json:"iss"`
		Iat int64           `json:"iat"`
		Exp int64           `json:"exp"`
	}
	if err := jwtsign.VerifyRS256(tok, key, &claims); err != nil {
		return err
	}
	if strings.Trim(string(claims.Iss), `"`) != strconv.FormatInt(appID, 10) {
		return errors.New("iss is not the app id")
	}
	n := now.Unix()
	switch {
	case claims.Exp <= n:
		return errors.New("'Expiration time' claim ('exp') is too far in the past")
	case claims.Iat > n+60:
		return errors.New("'Issued at' claim ('iat') is in the future")
	case claims.Exp-claims.Iat > 600:
		return errors.New("'Expiration time' claim ('exp') is too far in the future")
	}
	return nil
}

// listUserKeys implements GET /users/{login}/keys: the user's public SSH
// keys, as authorized_keys lines without comments, as GitHub lists them.
func (s *Server) listUserKeys(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	keys := s.userKeys[strings.ToLower(r.PathValue("login"))]
	s.mu.Unlock()
	out := []map[string]any{}
	for i, k := range keys {
		fields := strings.Fields(k)
		if len(fields) >= 2 {
			k = fields[0] + " " + fields[1] // GitHub drops the comment
		}
		out = append(out, map[string]any{"id": i + 1, "key": k})
	}
	writeJSON(w, r, http.StatusOK, paginate(w, r, out))
}

// Package jwtsign is gitgrant's one RS256 JSON Web Token code: reading an
// RSA private key from PEM, signing a compact JWT with it (a GitHub App's
// JWT, an Okta client assertion), and checking one (the fakes that stand
// for GitHub, Okta and Google). Nothing here quotes key material in an
// error.
package jwtsign

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

var enc = base64.RawURLEncoding

// ParseRSAKey reads an RSA private key in PEM, PKCS#1 or PKCS#8. Its
// errors never quote the input.
func ParseRSAKey(pemData []byte) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode(pemData)
	if block == nil {
		return nil, errors.New("not PEM: no PEM block found (-----BEGIN PRIVATE KEY-----)")
	}
	if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, errors.New("not an RSA private key in PKCS#1 or PKCS#8 form")
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("a %T, not an RSA key; RS256 needs RSA", k)
	}
	return rk, nil
}

// SignRS256 signs claims into a compact JWT with key; the header says
// alg RS256, typ JWT, and kid when keyID is not "".
func SignRS256(key *rsa.PrivateKey, keyID string, claims any) (string, error) {
	header := map[string]string{"alg": "RS256", "typ": "JWT"}
	if keyID != "" {
		header["kid"] = keyID
	}
	var parts []string
	for _, v := range []any{header, claims} {
		b, err := json.Marshal(v)
		if err != nil {
			return "", err
		}
		parts = append(parts, enc.EncodeToString(b))
	}
	input := strings.Join(parts, ".")
	sum := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		return "", fmt.Errorf("signing the JWT: %w", err)
	}
	return input + "." + enc.EncodeToString(sig), nil
}

// VerifyRS256 checks that jwt is signed with RS256 by pub's key and
// decodes its claims into claims. It checks no claim: that is the
// caller's.
func VerifyRS256(jwt string, pub *rsa.PublicKey, claims any) error {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return errors.New("not a JWT")
	}
	if pub == nil {
		return errors.New("no public key to verify with")
	}
	var header struct {
		Alg string `json:"alg"`
	}
	if err := decodeSegment(parts[0], &header); err != nil || header.Alg != "RS256" {
		return errors.New("header must say alg RS256")
	}
	sig, err := enc.DecodeString(parts[2])
	if err != nil {
		return errors.New("bad signature encoding")
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig); err != nil {
		return errors.New("signature does not verify with the public key")
	}
	if err := decodeSegment(parts[1], claims); err != nil {
		return errors.New("bad claims")
	}
	return nil
}

func decodeSegment(seg string, v any) error {
	b, err := enc.DecodeString(seg)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// Peek decodes jwt's claims into claims without checking its signature:
// only to learn which key to check it with (its issuer).
func Peek(jwt string, claims any) error {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return errors.New("not a JWT")
	}
	return decodeSegment(parts[1], claims)
}

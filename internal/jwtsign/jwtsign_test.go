package jwtsign_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"

	"github.com/gitgrant/gitgrant/internal/jwtsign"
)

func TestSignVerify(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	jwt, err := jwtsign.SignRS256(key, "k1", map[string]any{"iss": "me"})
	if err != nil {
		t.Fatal(err)
	}
	var header struct{ Alg, Typ, Kid string }
	if err := jwtsign.Peek("x."+strings.SplitN(jwt, ".", 2)[0]+".y", &header); err != nil || header != (struct{ Alg, Typ, Kid string }{"RS256", "JWT", "k1"}) {
		t.Errorf("header = %+v, %v", header, err)
	}
	var claims struct{ Iss string }
	if err := jwtsign.VerifyRS256(jwt, &key.PublicKey, &claims); err != nil || claims.Iss != "me" {
		t.Errorf("VerifyRS256 = %v, claims %+v", err, claims)
	}
	parts := strings.Split(jwt, ".")
	for _, tt := range []struct{ name, jwt, want string }{
		{"other key", jwt, "does not verify"},
		{"two parts", parts[0] + "." + parts[1], "not a JWT"},
		{"claims changed", parts[0] + "." + parts[0] + "." + parts[2], "does not verify"},
		{"signature not base64url", parts[0] + "." + parts[1] + ".!", "signature encoding"},
	} {
		pub := &key.PublicKey
		if tt.name == "other key" {
			pub = &other.PublicKey
		}
		if err := jwtsign.VerifyRS256(tt.jwt, pub, &claims); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: VerifyRS256 = %v, want %q", tt.name, err, tt.want)
		}
	}
}

func TestParseRSAKey(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8 := func(k any) []byte {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	}
	for _, tt := range []struct {
		name string
		pem  []byte
		want string // in the error; "" parses
	}{
		{"PKCS#1", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), ""},
		{"PKCS#8", pkcs8(key), ""},
		{"not PEM", []byte("secretbytes"), "not PEM"},
		{"garbage in PEM", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("secretbytes")}), "not an RSA private key"},
		{"ECDSA", pkcs8(ec), "not an RSA key"},
	} {
		k, err := jwtsign.ParseRSAKey(tt.pem)
		switch {
		case tt.want == "" && (err != nil || !k.Equal(key)):
			t.Errorf("%s: ParseRSAKey = %v", tt.name, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "secretbytes")):
			t.Errorf("%s: ParseRSAKey error = %v, want %q", tt.name, err, tt.want)
		}
	}
}

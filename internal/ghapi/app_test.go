package ghapi_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gitgrant/gitgrant/internal/testing/fakeclock"

	"github.com/google/go-cmp/cmp"

	"github.com/gitgrant/gitgrant/internal/ghapi"
	"github.com/gitgrant/gitgrant/internal/ghfake"
)

var (
	keyOnce sync.Once
	keys    [2]*rsa.PrivateKey
)

func testKeys(t *testing.T) (*rsa.PrivateKey, *rsa.PrivateKey) {
	keyOnce.Do(func() {
		for i := range keys {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			keys[i] = k
		}
	})
	return keys[0], keys[1]
}

func pemOf(k *rsa.PrivateKey) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
}

// appClient is a fake GitHub with the repository acme/access and App 42
// (installation 7) whose key is appKey, on a clock at t0, and a client that
// authenticates as the App with signingKey.
func appClient(t *testing.T, appKey, signingKey *rsa.PrivateKey) (*ghfake.Server, *fakeclock.Clock, *ghapi.Client) {
	t.Helper()
	clk := fakeclock.NewAuto(t0)
	gh := ghfake.New(clk.Now)
	t.Cleanup(gh.Close)
	gh.AddRepo("acme", "access", "main")
	gh.AddApp(42, &appKey.PublicKey, 7, time.Hour)
	return gh, clk, newClient(t, gh, clk, ghapi.Config{AppID: 42, InstallationID: 7, PrivateKey: pemOf(signingKey)})
}

// The fake verifies the JWT with the app's public key and mints one-hour
// tokens; the client reuses a token and mints the next one five minutes
// before the current one lapses.
func TestAppAuthRefreshesBeforeExpiry(t *testing.T) {
	t.Parallel()
	key, _ := testKeys(t)
	gh, clk, c := appClient(t, key, key)

	steps := []struct {
		advance    time.Duration
		wantMinted int
	}{
		{0, 1},
		{30 * time.Minute, 1},
		{24 * time.Minute, 1}, // 54 min: still 6 minutes left
		{2 * time.Minute, 2},  // 56 min: within 5 minutes of expiry, refreshed
		{10 * time.Minute, 2},
		{50 * time.Minute, 3},
	}
	for i, s := range steps {
		clk.Advance(s.advance)
		if _, err := c.DefaultBranch(context.Background()); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if got := gh.MintedTokens(); got != s.wantMinted {
			t.Errorf("step %d: %d tokens minted, want %d", i, got, s.wantMinted)
		}
	}
	if got := c.App.Minted(); got != 3 {
		t.Errorf("client minted %d, want 3", got)
	}
	if got := gh.Count("POST", "/app/installations/7/access_tokens"); got != 3 {
		t.Errorf("%d token exchanges, want 3", got)
	}
}

func TestAppAuthWithTheWrongKeyFails(t *testing.T) {
	t.Parallel()
	key, other := testKeys(t)
	_, _, c := appClient(t, key, other)
	_, err := c.DefaultBranch(context.Background())
	if err == nil || !strings.Contains(err.Error(), "signature does not verify") {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(err.Error(), "PRIVATE KEY") {
		t.Errorf("the error shows key material")
	}
}

func TestAppJWTClaims(t *testing.T) {
	t.Parallel()
	key, _ := testKeys(t)
	jwt, err := ghapi.AppJWT(42, key, t0)
	if err != nil {
		t.Fatal(err)
	}
	if parts := strings.Split(jwt, "."); len(parts) != 3 {
		t.Fatalf("jwt has %d parts", len(parts))
	}
	// The fake's verifier is GitHub's rules: checked in the test above; here
	// an expired JWT must be refused.
	clk := fakeclock.NewAuto(t0.Add(11 * time.Minute))
	gh := ghfake.New(clk.Now)
	defer gh.Close()
	gh.AddApp(42, &key.PublicKey, 7, time.Hour)
	src := &ghapi.AppTokenSource{AppID: 42, InstallationID: 7, Key: key, BaseURL: gh.BaseURL(), Clock: fakeclock.New(t0)}
	if _, err := src.Token(); err == nil || !strings.Contains(err.Error(), "exp") {
		t.Errorf("expired JWT accepted: %v", err)
	}
}

func TestParsePrivateKey(t *testing.T) {
	t.Parallel()
	key, _ := testKeys(t)
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(key)
	tests := []struct {
		name    string
		pem     []byte
		wantErr string
	}{
		{"PKCS#1 as GitHub issues it", pemOf(key), ""},
		{"PKCS#8", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), ""},
		{"not PEM", []byte("ghp_notakey"), "no PEM block"},
		{"garbage in PEM", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: []byte("secretbytes")}), "not an RSA private key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := ghapi.ParsePrivateKey(tt.pem)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			if err != nil && (strings.Contains(err.Error(), "secretbytes") || strings.Contains(err.Error(), "ghp_")) {
				t.Errorf("error repeats the input: %v", err)
			}
		})
	}
}

func TestConfigFromEnv(t *testing.T) {
	t.Parallel()
	files := map[string]string{"/keys/app.pem": "PEM"}
	readFile := func(p string) ([]byte, error) {
		if s, ok := files[p]; ok {
			return []byte(s), nil
		}
		return nil, fs.ErrNotExist
	}
	tests := []struct {
		name    string
		env     map[string]string
		want    ghapi.Config
		wantErr []string
	}{
		{"actions token", map[string]string{"GITHUB_TOKEN": "t", "GITHUB_REPOSITORY": "acme/access", "GITHUB_API_URL": "https://api.github.com"},
			ghapi.Config{Token: "t", Repository: "acme/access", APIURL: "https://api.github.com"}, nil},
		{"app", map[string]string{ghapi.EnvAppID: "42", ghapi.EnvInstallationID: "7", ghapi.EnvPrivateKeyFile: "/keys/app.pem", "GITHUB_REPOSITORY": "acme/access"},
			ghapi.Config{AppID: 42, InstallationID: 7, PrivateKey: []byte("PEM"), Repository: "acme/access"}, nil},
		{"app without installation or key", map[string]string{ghapi.EnvAppID: "42"},
			ghapi.Config{AppID: 42}, []string{ghapi.EnvInstallationID + ": required", ghapi.EnvPrivateKeyFile + ": required"}},
		{"unreadable key file", map[string]string{ghapi.EnvAppID: "42", ghapi.EnvInstallationID: "7", ghapi.EnvPrivateKeyFile: "/nope"},
			ghapi.Config{AppID: 42, InstallationID: 7}, []string{"cannot read the key file /nope"}},
		{"bad repository", map[string]string{"GITHUB_REPOSITORY": "acme"}, ghapi.Config{Repository: "acme"}, []string{`"acme" is not owner/name`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ghapi.ConfigFromEnv(func(k string) string { return tt.env[k] }, readFile)
			for _, w := range tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("err = %v, want it to contain %q", err, w)
				}
			}
			if len(tt.wantErr) == 0 && err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
		})
	}
}

func TestConfigNeverPrintsSecrets(t *testing.T) {
	t.Parallel()
	c := ghapi.Config{Token: "ghp_secret", PrivateKey: []byte("-----BEGIN KEY"), AppID: 1, InstallationID: 2}
	for _, s := range []string{c.String(), fmt.Sprintf("%v %+v %#v", c, c, c)} {
		if strings.Contains(s, "ghp_secret") || strings.Contains(s, "BEGIN") {
			t.Errorf("secret printed: %s", s)
		}
	}
}

func TestEnterpriseURLs(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want, wantErr string }{
		{"https://api.github.com", "https://api.github.com/", ""},
		{"https://ghe.example.com/api/v3", "https://ghe.example.com/api/v3/", ""},
		{"https://ghe.example.com", "https://ghe.example.com/api/v3/", ""},
		{"https://ghe.example.com/api/v3/", "https://ghe.example.com/api/v3/", ""},
		{"ftp://ghe.example.com", "", "not an http(s) URL"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			c, err := ghapi.New(ghapi.Config{APIURL: tt.in, Repository: "acme/access"}, ghapi.Options{})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := ghapi.BaseURL(c); got != tt.want {
				t.Errorf("base URL %s, want %s", got, tt.want)
			}
			wantWeb := strings.Replace(strings.TrimSuffix(strings.TrimSuffix(tt.want, "/"), "/api/v3"), "api.github.com", "github.com", 1) + "/acme/access"
			if got := c.RepoURL(); got != wantWeb {
				t.Errorf("repository URL %s, want %s", got, wantWeb)
			}
		})
	}
}

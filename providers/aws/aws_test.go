package aws

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/google/go-cmp/cmp"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/testing/testenv"
	"github.com/gitgrant/gitgrant/providers"
	"github.com/gitgrant/gitgrant/providers/internal/httpapitest"
	"github.com/gitgrant/gitgrant/providers/providertest"
)

const (
	psAdmin   = "arn:aws:sso:::permissionSet/ssoins-0123456789abcdef/ps-00000000000000a1"
	psRead    = "arn:aws:sso:::permissionSet/ssoins-0123456789abcdef/ps-00000000000000b2"
	account   = "111122223333"
	keyID     = "ASIAFAKEGITGRANT0001"
	secretKey = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYFAKESECRETKEY"
	sessionTk = "IQoJb3JpZ2luX2VjEFAKESESSIONTOKENTHATMUSTNEVERLEAK"
)

func roles() map[string]string {
	return map[string]string{"admin": psAdmin + "@" + account, "read": psRead + "@" + account}
}

func testConfig(f *fakeAWS, roles map[string]string, settings map[string]any) gitgrant.ProviderConfig {
	rc := map[string]gitgrant.RoleConfig{}
	for role, target := range roles {
		rc[role] = gitgrant.RoleConfig{Target: target}
	}
	s := map[string]any{
		"instance_arn":        testInstance,
		"identity_store_id":   testStore,
		"region":              testRegion,
		"endpoint_url":        f.url,
		"requests_per_second": 0,
	}
	for k, v := range settings {
		s[k] = v
	}
	return gitgrant.ProviderConfig{Name: "aws-prod", Type: Type, Roles: rc, Settings: s}
}

// countingCreds hands out the test key, counting how often it is asked.
type countingCreds struct {
	n      atomic.Int32
	expiry time.Duration // how long each handed-out key claims to live
}

func (c *countingCreds) Retrieve(context.Context) (sdkaws.Credentials, error) {
	c.n.Add(1)
	cr := sdkaws.Credentials{AccessKeyID: keyID, SecretAccessKey: secretKey, SessionToken: sessionTk, Source: "test"}
	if c.expiry > 0 {
		cr.CanExpire, cr.Expires = true, time.Now().Add(c.expiry)
	}
	return cr, nil
}

func newFake(t testing.TB) *fakeAWS {
	f := newFakeAWS(t)
	f.addKey(keyID, secretKey, sessionTk, time.Time{})
	f.permissionSets[psAdmin], f.permissionSets[psRead] = true, true
	f.accounts[account] = true
	return f
}

// open opens a provider as Open does, with the fake's static test
// credentials in place of the default chain.
func open(t testing.TB, cfg gitgrant.ProviderConfig, creds sdkaws.CredentialsProvider) (*Provider, error) {
	t.Helper()
	if creds == nil {
		creds = &countingCreds{}
	}
	var s Settings
	if err := providers.Decode(cfg, &s); err != nil {
		return nil, err
	}
	p, err := openWith(cfg, s, providers.DefaultDeps(), sdkaws.Config{Region: testRegion, Credentials: sdkaws.NewCredentialsCache(creds)})
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { p.Close() })
	return p, nil
}

func mustOpen(t testing.TB, cfg gitgrant.ProviderConfig, creds sdkaws.CredentialsProvider) *Provider {
	t.Helper()
	p, err := open(t, cfg, creds)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return p
}

func TestConformance(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.pollsToFinish = 1 // IN_PROGRESS, then SUCCEEDED at the first status read
	var names []string
	for i := range 22 {
		name := fmt.Sprintf("dev-%02d", i)
		f.addUser(name, name+"@acme.example")
		names = append(names, name)
	}
	f.addGroup("Platform Admins")
	names = append(names, "group:Platform Admins", "o.brien+ops@acme.example")
	f.addUser("o.brien+ops@acme.example", "sean@acme.example")
	providertest.Run(t, providertest.Harness{
		Open: func(t *testing.T) providers.Provider {
			return mustOpen(t, testConfig(f, roles(), nil), nil)
		},
		Roles:            []string{"admin", "read"},
		Principals:       names,
		MissingPrincipal: "nobody",
		HostileNames:     []string{"group:", "group:\x00", "user-id:../x", "group-id:*"},
		OpenWithTarget: func(t *testing.T, target string) (providers.Provider, error) {
			return open(t, testConfig(f, map[string]string{"hostile": target}, nil), nil)
		},
		Down: func(t *testing.T) (providers.Provider, error) {
			cfg := testConfig(f, roles(), map[string]any{"endpoint_url": fmt.Sprintf("http://127.0.0.1:%d", testenv.FreePort(t)), "max_attempts": 2})
			return open(t, cfg, nil)
		},
		Secrets: []string{secretKey, sessionTk},
	})
}

// TestAsyncAndThrottling: grants and revokes wait for the asynchronous
// status (IN_PROGRESS three times, then SUCCEEDED), ThrottlingException is
// retried by the SDK, and the calls made are the documented ones.
func TestAsyncAndThrottling(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.pollsToFinish = 3
	alice := f.addUser("alice", "alice@acme.example")
	p := mustOpen(t, testConfig(f, roles(), nil), nil)
	ctx := t.Context()
	f.Mu.Lock()
	f.throttle = 2
	f.Mu.Unlock()
	if err := p.Grant(ctx, providers.Grant{Role: "admin", Principal: "alice", Until: time.Now().Add(time.Hour)}); err != nil {
		t.Fatalf("Grant: %v", err)
	}
	if diff := cmp.Diff([]string{alice}, f.assigned(psAdmin, account)); diff != "" {
		t.Errorf("assignments (-want +got):\n%s", diff)
	}
	if err := p.Revoke(ctx, "admin", "alice"); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if err := p.Revoke(ctx, "admin", "alice"); err != nil {
		t.Fatalf("Revoke again (FAILED: does not exist): %v", err)
	}
	want := map[string]int{
		"GetUserId":                               1 + 2, // two throttled attempts first
		"CreateAccountAssignment":                 1,
		"DeleteAccountAssignment":                 2,
		"DescribeAccountAssignmentCreationStatus": 3,
		"DescribeAccountAssignmentDeletionStatus": 6,
	}
	if diff := cmp.Diff(want, f.Calls()); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	if got := p.Calls(); got != 15 {
		t.Errorf("Calls() = %d, want 15 (attempts included)", got)
	}
}

// TestThrottledTooLong: when the SDK's retries run out under throttling,
// the error is retryable for the reconciler.
func TestThrottledTooLong(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.addUser("alice", "alice@acme.example")
	f.throttle = 100
	p := mustOpen(t, testConfig(f, roles(), map[string]any{"max_attempts": 2}), nil)
	err := p.Grant(t.Context(), providers.Grant{Role: "admin", Principal: "alice"})
	var sys *gitgrant.SystemError
	if !errors.As(err, &sys) || !sys.Retryable {
		t.Errorf("Grant under constant throttling: err = %v, want a retryable system error", err)
	}
}

// TestCredentialsExpireMidRun: session credentials (web identity, SSO)
// expire during a run. Expiring on schedule, the SDK's cache fetches new
// ones; refused early by AWS (ExpiredTokenException), the provider
// empties the cache and retries once.
func TestCredentialsExpireMidRun(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		claimed time.Duration // what the credentials say (and, on schedule, when the fake stops taking them)
		refuse  bool          // the fake refuses them at once after the first grant, whatever they claim
	}{
		// Real time: the SDK's credential cache reads the system clock (it
		// takes no clock). The first grant takes milliseconds; five seconds
		// (was 1.5) leave room for a CI machine running every package at
		// once; the wait overlaps the other parallel tests.
		{"on schedule", 5 * time.Second, false},
		{"refused early", time.Hour, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t)
			f.addUser("alice", "alice@acme.example")
			f.addUser("bob", "bob@acme.example")
			creds := &rotatingCreds{fake: f, claimed: tt.claimed, serverSide: tt.claimed}
			p := mustOpen(t, testConfig(f, roles(), nil), creds)
			ctx := t.Context()
			if err := p.Grant(ctx, providers.Grant{Role: "read", Principal: "alice"}); err != nil {
				t.Fatal(err)
			}
			if tt.refuse {
				f.expireKeys()
			} else {
				time.Sleep(tt.claimed + 100*time.Millisecond)
			}
			if err := p.Grant(ctx, providers.Grant{Role: "read", Principal: "bob"}); err != nil {
				t.Fatalf("Grant after the credentials expired: %v", err)
			}
			if n := creds.n.Load(); n != 2 {
				t.Errorf("credentials fetched %d times, want 2", n)
			}
		})
	}
}

// rotatingCreds issues a new key each time, registered with the fake to
// expire after serverSide, while claiming to live for claimed.
type rotatingCreds struct {
	fake                *fakeAWS
	claimed, serverSide time.Duration
	n                   atomic.Int32
}

func (c *rotatingCreds) Retrieve(context.Context) (sdkaws.Credentials, error) {
	n := c.n.Add(1)
	id := fmt.Sprintf("ASIAROTATING%08d", n)
	c.fake.addKey(id, secretKey, sessionTk, time.Now().Add(c.serverSide))
	return sdkaws.Credentials{AccessKeyID: id, SecretAccessKey: secretKey, SessionToken: sessionTk, CanExpire: true, Expires: time.Now().Add(c.claimed)}, nil
}

// TestMembersPagesAndNames: 250 assignments come in three pages; users
// are reported by user name (or email with match_by: email), groups as
// group:<name>, and a deleted user by id so that it can be revoked.
func TestMembersPagesAndNames(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	var wantNames, wantEmails []string
	for i := range 249 {
		name := fmt.Sprintf("user-%03d", i)
		id := f.addUser(name, name+"@acme.example")
		f.assignments[psRead+"|"+account+"|"+id] = "USER"
		wantNames = append(wantNames, name)
		wantEmails = append(wantEmails, name+"@acme.example")
	}
	gid := f.addGroup("Auditors")
	f.assignments[psRead+"|"+account+"|"+gid] = "GROUP"
	odd := f.addGroup("SRE (on-call)") // a name gitgrant cannot take back
	f.assignments[psRead+"|"+account+"|"+odd] = "GROUP"
	f.assignments[psRead+"|"+account+"|deadbeef-0000"] = "USER" // deleted from the directory
	tests := []struct {
		matchBy string
		want    []string
	}{
		{MatchUserName, append(append([]string{"group-id:" + odd, "group:Auditors"}, wantNames...), "user-id:deadbeef-0000")},
		{MatchEmail, append(append([]string{"group-id:" + odd, "group:Auditors"}, wantEmails...), "user-id:deadbeef-0000")},
	}
	for _, tt := range tests {
		t.Run(tt.matchBy, func(t *testing.T) {
			p := mustOpen(t, testConfig(f, roles(), map[string]any{"match_by": tt.matchBy}), nil)
			providertest.CheckMembers(t, p, "read", tt.want)
			if err := p.Revoke(t.Context(), "read", "user-id:deadbeef-0000"); err != nil {
				t.Errorf("Revoke by id: %v", err)
			}
			f.Mu.Lock()
			f.assignments[psRead+"|"+account+"|deadbeef-0000"] = "USER"
			f.Mu.Unlock()
		})
	}
}

// TestConcurrentConflicts: a change of an assignment that another
// client is changing gets a ConflictException from Identity Center, which
// is waited out; the provider's own concurrent changes of one assignment
// wait for each other instead of conflicting.
func TestConcurrentConflicts(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.pollsToFinish = 3
	alice := f.addUser("alice", "alice@acme.example")
	other := mustOpen(t, testConfig(f, roles(), nil), nil) // another gitgrant, or the console
	p := mustOpen(t, testConfig(f, roles(), nil), nil)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			prov := p
			if i == 0 {
				prov = other
			}
			errs[i] = prov.Grant(t.Context(), providers.Grant{Role: "admin", Principal: "alice"})
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Errorf("concurrent Grant: %v", err)
		}
	}
	if diff := cmp.Diff([]string{alice}, f.assigned(psAdmin, account)); diff != "" {
		t.Errorf("assignments (-want +got):\n%s", diff)
	}
	if n := f.Calls()["CreateAccountAssignment"]; n < 4 {
		t.Errorf("CreateAccountAssignment calls = %d, want at least 4 (one per grant, plus conflicts)", n)
	}
}

func TestOpenRefuses(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	openFake := func(cfg gitgrant.ProviderConfig) (providers.Provider, error) { return open(t, cfg, nil) }
	providertest.CheckRefusals(t, testConfig(f, roles(), nil), openFake, []providertest.Refusal{
		{Name: "instance", Settings: map[string]any{"instance_arn": "arn:aws:sso:::instance/x"}, Says: "instance_arn"},
		{Name: "store", Settings: map[string]any{"identity_store_id": "d-1"}, Says: "identity_store_id"},
		{Name: "match_by", Settings: map[string]any{"match_by": "phone"}, Says: "match_by"},
		{Name: "max_wait", Settings: map[string]any{"max_wait": "-1s"}, Says: "max_wait"},
		{Name: "rps", Settings: map[string]any{"requests_per_second": "fast"}, Says: "requests_per_second"},
		{Name: "max_attempts", Settings: map[string]any{"max_attempts": 21}, Says: "max_attempts"},
	}, secretKey, sessionTk)
	if _, err := Open(t.Context(), testConfig(f, roles(), map[string]any{"region": "moon-1"}), providers.DefaultDeps()); err == nil || !strings.Contains(err.Error(), "region") {
		t.Errorf("Open with a bad region = %v", err)
	}
}

// TestPacingStaysUnderQuota: paced just below Identity Center's limit,
// the provider is never throttled; unpaced, it is, and the SDK's retries
// still get every grant through.
func TestPacingStaysUnderQuota(t *testing.T) {
	t.Parallel()
	httpapitest.CheckPacing(t, func(t *testing.T, rps float64) int {
		f := newFake(t)
		f.pollsToFinish = 0 // SUCCEEDED at once: only the pacing is measured
		f.quota.Limit = 5   // each service
		var names []string
		for i := range 8 {
			names = append(names, fmt.Sprintf("dev-%d", i))
			f.addUser(names[i], names[i]+"@acme.example")
		}
		p := mustOpen(t, testConfig(f, roles(), map[string]any{"requests_per_second": rps}), nil)
		if err := providertest.GrantEach(t.Context(), p, "admin", names, time.Time{}); err != nil {
			t.Fatal(err)
		}
		f.Mu.Lock()
		defer f.Mu.Unlock()
		return f.Throttled
	})
}

// TestOpenDefaultChain: Open finds credentials through the SDK's default
// chain (here the environment, as GitHub Actions with static keys sets
// it; web identity and profiles come through the same loader), and the
// SDK signs with them. AWS_CA_BUNDLE (a corporate proxy's CA) is honoured,
// not an error.
func TestOpenDefaultChain(t *testing.T) {
	for k, v := range map[string]string{
		"AWS_CA_BUNDLE":     caBundle(t),
		"AWS_ACCESS_KEY_ID": keyID, "AWS_SECRET_ACCESS_KEY": secretKey, "AWS_SESSION_TOKEN": sessionTk,
		"AWS_REGION": testRegion, "AWS_EC2_METADATA_DISABLED": "true", "AWS_PROFILE": "",
		"AWS_CONFIG_FILE": t.TempDir() + "/none", "AWS_SHARED_CREDENTIALS_FILE": t.TempDir() + "/none",
		"AWS_ROLE_ARN": "", "AWS_WEB_IDENTITY_TOKEN_FILE": "", "AWS_ENDPOINT_URL": "",
	} {
		t.Setenv(k, v)
	}
	f := newFake(t)
	alice := f.addUser("alice", "alice@acme.example")
	cfg := testConfig(f, roles(), nil)
	delete(cfg.Settings, "region")
	p, err := Open(t.Context(), cfg, providers.DefaultDeps())
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer p.Close()
	if err := p.Grant(t.Context(), providers.Grant{Role: "read", Principal: "alice"}); err != nil {
		t.Fatalf("Grant: %v", err)
	}
	if diff := cmp.Diff([]string{alice}, f.assigned(psRead, account)); diff != "" {
		t.Errorf("assignments (-want +got):\n%s", diff)
	}
}

// caBundle writes a self-signed CA certificate in PEM and returns its path.
func caBundle(t *testing.T) string {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "gitgrant test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

package handoff_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gitgrant/gitgrant/internal/testing/golden"

	"github.com/google/go-cmp/cmp"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/handoff"
	"github.com/gitgrant/gitgrant/internal/testing/sshkeys"
	"github.com/gitgrant/gitgrant/internal/testing/testenv"
	"github.com/gitgrant/gitgrant/providers"
)

const secret = "Pq7RzK2mVwX9sLtB4nHcJ8dFgY3aE6uQ0iOoZxWv"

func payload() handoff.Payload {
	return handoff.Payload{
		Account: providers.Account{Name: "gg_readwrite_k3j2h1g0f9e8", Secret: secret,
			Connect: providers.Connection{Host: "db.internal", Port: 5432, Database: "orders", Kind: handoff.KindPostgres}},
		Provider: "orders-db", Role: "readwrite",
		Repository: "acme/access", PullRequest: 42, Request: "requests/orders-db/alice.yaml",
		Until: time.Date(2026, 11, 23, 17, 0, 0, 0, time.UTC),
	}
}

func identity(t *testing.T, path string, ask handoff.Passphrase) handoff.Identity {
	t.Helper()
	id, err := handoff.LoadIdentity(path, ask)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// A secret sealed to several keys opens with each of their private keys,
// ed25519 and RSA alike, and with no other.
func TestSealOpenRoundTrip(t *testing.T) {
	t.Parallel()
	ed := sshkeys.Generate(t, sshkeys.Ed25519, "")
	rsa := sshkeys.Generate(t, sshkeys.RSA, "")
	stranger := sshkeys.Generate(t, sshkeys.Ed25519, "")
	want := payload()
	sealed, err := handoff.Seal(want, []string{ed.Public, rsa.Public})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(sealed, "-----BEGIN AGE ENCRYPTED FILE-----\n") || strings.Contains(sealed, secret) {
		t.Fatalf("sealed is not an armored age file, or shows the secret:\n%s", sealed)
	}
	for _, key := range []sshkeys.Pair{ed, rsa} {
		got, err := handoff.Open(sealed, identity(t, key.Private, nil))
		if err != nil {
			t.Fatalf("%s: %v", key.Private, err)
		}
		if diff := cmp.Diff(want, got); diff != "" || got.Account.Secret != secret {
			t.Errorf("%s: opened (-want +got):\n%s", key.Private, diff)
		}
	}
	if _, err := handoff.Open(sealed, identity(t, stranger.Private, nil)); !errors.Is(err, handoff.ErrNotForYou) {
		t.Errorf("a stranger's key: %v, want ErrNotForYou", err)
	}
}

// Keys made by OpenSSH's own ssh-keygen, in its formats, with and
// without a passphrase.
func TestKeysFromSSHKeygen(t *testing.T) {
	t.Parallel()
	keygen := testenv.Client(t, "ssh-keygen", "install openssh-client")
	dir := t.TempDir()
	for _, tt := range []struct{ name, passphrase string }{
		{"ed25519", ""}, {"rsa", ""}, {"ed25519", "correct horse"}, {"rsa", "correct horse"},
	} {
		t.Run(fmt.Sprintf("%s passphrase=%v", tt.name, tt.passphrase != ""), func(t *testing.T) {
			path := filepath.Join(dir, fmt.Sprintf("id_%s_%v", tt.name, tt.passphrase != ""))
			if out, err := exec.Command(keygen, "-q", "-t", tt.name, "-N", tt.passphrase, "-C", "test", "-f", path).CombinedOutput(); err != nil {
				t.Fatalf("ssh-keygen: %v\n%s", err, out)
			}
			pub, err := os.ReadFile(path + ".pub")
			if err != nil {
				t.Fatal(err)
			}
			sealed, err := handoff.Seal(payload(), []string{string(pub)})
			if err != nil {
				t.Fatal(err)
			}
			asked := 0
			ask := func(string) ([]byte, error) { asked++; return []byte(tt.passphrase), nil }
			got, err := handoff.Open(sealed, identity(t, path, ask))
			if err != nil || got.Account.Secret != secret {
				t.Fatalf("Open: %v (secret matches: %v)", err, got.Account.Secret == secret)
			}
			if wantAsked := map[bool]int{true: 1, false: 0}[tt.passphrase != ""]; asked != wantAsked {
				t.Errorf("asked for the passphrase %d times, want %d", asked, wantAsked)
			}
		})
	}
}

func TestPassphraseProtectedKey(t *testing.T) {
	t.Parallel()
	key := sshkeys.Generate(t, sshkeys.Ed25519, "open sesame")
	other := sshkeys.Generate(t, sshkeys.Ed25519, "")
	sealed, err := handoff.Seal(payload(), []string{key.Public})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := handoff.LoadIdentity(key.Private, nil); err == nil || !strings.Contains(err.Error(), "no terminal to ask") {
		t.Errorf("without a way to ask: %v, want a clear refusal", err)
	}
	wrong := func(string) ([]byte, error) { return []byte("wrong"), nil }
	if _, err := handoff.Open(sealed, identity(t, key.Private, wrong)); err == nil {
		t.Error("a wrong passphrase opened the secret")
	}
	// A protected key that is not a recipient is never asked for its
	// passphrase.
	sealedOther, err := handoff.Seal(payload(), []string{other.Public})
	if err != nil {
		t.Fatal(err)
	}
	asked := false
	spy := func(string) ([]byte, error) { asked = true; return nil, errors.New("no") }
	if _, err := handoff.Open(sealedOther, identity(t, key.Private, spy)); !errors.Is(err, handoff.ErrNotForYou) || asked {
		t.Errorf("Open = %v, asked %v; want ErrNotForYou without asking", err, asked)
	}
	right := func(string) ([]byte, error) { return []byte("open sesame"), nil }
	if got, err := handoff.Open(sealed, identity(t, key.Private, right)); err != nil || got.Account.Secret != secret {
		t.Errorf("the right passphrase: %v", err)
	}
}

func TestRecipientsSkipWhatAgeCannotUse(t *testing.T) {
	t.Parallel()
	ed := sshkeys.Generate(t, sshkeys.Ed25519, "")
	short := sshkeys.Generate(t, sshkeys.RSA1024, "")
	ecdsa := sshkeys.Generate(t, sshkeys.ECDSA, "")
	_, listed, err := handoff.Recipients([]string{short.Public, ecdsa.Public, "not a key", ed.Public})
	if err != nil {
		t.Fatal(err)
	}
	var skipped []string
	for _, k := range listed {
		if k.Skipped != "" {
			skipped = append(skipped, k.Type+": "+k.Skipped)
		}
	}
	for i, want := range []string{"ssh-rsa: an RSA key of 1024 bits", "ecdsa-sha2-nistp256: an ecdsa-sha2-nistp256 key", "unknown: not a public SSH key"} {
		if i >= len(skipped) || !strings.HasPrefix(skipped[i], want) {
			t.Errorf("skipped = %q, want [%d] to start with %q", skipped, i, want)
		}
	}
	if _, _, err := handoff.Recipients([]string{short.Public, ecdsa.Public}); !errors.Is(err, handoff.ErrNoKey) {
		t.Errorf("no usable key: %v, want ErrNoKey", err)
	}
	if _, err := handoff.Seal(payload(), nil); !errors.Is(err, handoff.ErrNoKey) {
		t.Errorf("Seal without keys: %v, want ErrNoKey", err)
	}
}

type fakeKeys map[string][]string

func (f fakeKeys) UserSSHKeys(_ context.Context, login string) ([]string, error) {
	if keys, ok := f[login]; ok {
		return keys, nil
	}
	return nil, errors.New("404 Not Found")
}

func TestKeysFor(t *testing.T) {
	t.Parallel()
	ed := sshkeys.Generate(t, sshkeys.Ed25519, "").Public
	rsa := sshkeys.Generate(t, sshkeys.RSA, "").Public
	ecdsa := sshkeys.Generate(t, sshkeys.ECDSA, "").Public
	gh := fakeKeys{"alice": {ed}, "bob": {ecdsa}, "carol": {}}
	tests := []struct {
		name    string
		login   string
		id      gitgrant.Identity
		want    []string
		wantErr []string
	}{
		{name: "GitHub's keys", login: "alice", want: []string{ed}},
		{name: "the identity's keys win", login: "alice", id: gitgrant.Identity{SSHKeys: []string{rsa}}, want: []string{rsa}},
		{name: "only an ECDSA key", login: "bob", wantErr: []string{"GitHub's keys of bob", "none can be used", "ecdsa-sha2-nistp256", "identities.bob.ssh_keys", "ssh-keygen -t ed25519"}},
		{name: "no key at all", login: "carol", wantErr: []string{"there are none", "Settings, SSH and GPG keys"}},
		{name: "GitHub fails", login: "dave", wantErr: []string{"reading dave's public SSH keys from GitHub", "404"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := handoff.KeysFor(t.Context(), tt.login, tt.id, gh)
			if tt.wantErr == nil {
				if err != nil || !cmp.Equal(tt.want, got) {
					t.Errorf("KeysFor = %v, %v; want %v", got, err, tt.want)
				}
				return
			}
			for _, w := range tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("KeysFor error %v, want it to mention %q", err, w)
				}
			}
		})
	}
}

func TestPayloadNeverShowsItsSecret(t *testing.T) {
	t.Parallel()
	p := payload()
	js, err := p.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{fmt.Sprintf("%v %+v %#v %s %x", p, p, p, p, p), string(js)} {
		if strings.Contains(out, secret) {
			t.Errorf("shows the secret: %s", out)
		}
	}
}

// The comment shows the account, where and until when in clear, the
// secret only sealed; what it shows is checked against what it seals.
func TestNotice(t *testing.T) {
	t.Parallel()
	key := sshkeys.Generate(t, sshkeys.Ed25519, "")
	p := payload()
	n, err := handoff.NewNotice(p, "alice", []string{key.Public})
	if err != nil {
		t.Fatal(err)
	}
	body := n.Markdown(42)
	if strings.Contains(body, secret) {
		t.Fatal("the comment shows the secret")
	}
	// The golden file shows the comment with a fixed key and armor.
	fixed := n
	fixed.Keys = []handoff.Key{{Type: "ssh-ed25519", Fingerprint: "SHA256:Ub0uR3Vn0jO1h4zYp8m9L2kQ6cXwTfEaGdSiHbJlN5o"}}
	fixed.Sealed = "-----BEGIN AGE ENCRYPTED FILE-----\nYWdlLWVuY3J5cHRpb24ub3JnL3YxCi0+IHNzaC1lZDI1NTE5IC4uLgo=\n-----END AGE ENCRYPTED FILE-----\n"
	golden.CheckString(t, filepath.Join("testdata", "notice.golden"), fixed.Markdown(42))

	parsed, ok, err := handoff.ParseNotice(body)
	if !ok || err != nil {
		t.Fatalf("ParseNotice: ok=%v, %v", ok, err)
	}
	if diff := cmp.Diff(n, parsed, cmp.FilterPath(func(p cmp.Path) bool {
		return p.String() == "Requester"
	}, cmp.Ignore())); diff != "" {
		t.Errorf("parsed (-want +got):\n%s", diff)
	}
	opened, err := handoff.Open(parsed.Sealed, identity(t, key.Private, nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := parsed.Check(opened, "acme/access", 42); err != nil {
		t.Errorf("Check: %v", err)
	}
	if err := parsed.Check(opened, "acme/access", 43); err == nil || !strings.Contains(err.Error(), "copied from elsewhere") {
		t.Errorf("Check on another pull request: %v", err)
	}
	// Someone edits the clear text to point at their own server.
	edited, _, err := handoff.ParseNotice(strings.Replace(body, "host=db.internal", "host=evil.example", 1))
	if err != nil {
		t.Fatal(err)
	}
	if err := edited.Check(opened, "acme/access", 42); err == nil || !strings.Contains(err.Error(), "was edited") {
		t.Errorf("Check of an edited comment: %v", err)
	}
	if _, ok, _ := handoff.ParseNotice("<!-- gitgrant:plan -->\nplan"); ok {
		t.Error("another gitgrant comment parsed as a hand-off")
	}
	if _, ok, err := handoff.ParseNotice(strings.Replace(body, "-----END AGE", "-----FIN AGE", 1)); !ok || err == nil {
		t.Errorf("a cut armor: ok=%v, %v; want an error", ok, err)
	}
}

func TestDSNAndCommand(t *testing.T) {
	t.Parallel()
	pg := providers.Account{Name: "gg_ro_abc", Secret: "Pw0rd", Connect: providers.Connection{Host: "db.internal", Port: 5432, Database: "orders db", Kind: handoff.KindPostgres}}
	my := providers.Account{Name: "gg_ro_abc", Secret: "Pw0rd", Connect: providers.Connection{Host: "::1", Port: 3306, Database: "shop", Kind: handoff.KindMySQL}}
	tests := []struct {
		a            providers.Account
		dsn, command string
	}{
		{pg, "postgres://gg_ro_abc:Pw0rd@db.internal:5432/orders%20db",
			"PGPASSWORD=Pw0rd psql --host=db.internal --username=gg_ro_abc --port=5432 '--dbname=orders db'"},
		{my, "mysql://gg_ro_abc:Pw0rd@[::1]:3306/shop",
			"mariadb --host=::1 --user=gg_ro_abc --password=Pw0rd --port=3306 --database=shop"},
	}
	for _, tt := range tests {
		if got := handoff.DSN(tt.a); got != tt.dsn {
			t.Errorf("DSN = %q, want %q", got, tt.dsn)
		}
		if got := handoff.Command(tt.a); got != tt.command {
			t.Errorf("Command = %q, want %q", got, tt.command)
		}
	}
}

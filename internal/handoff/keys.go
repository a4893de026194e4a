package handoff

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"strings"

	"filippo.io/age"
	"filippo.io/age/agessh"
	"golang.org/x/crypto/ssh"

	"github.com/gitgrant/gitgrant"
)

// ErrNoKey says the requester has no public SSH key a secret can be
// encrypted to. The request is refused: gitgrant never creates an
// account whose secret it cannot hand over.
var ErrNoKey = errors.New("no SSH key to encrypt to")

// Key is one public key a secret was, or could not be, encrypted to.
type Key struct {
	// Type is the key's algorithm, "ssh-ed25519" or "ssh-rsa".
	Type string `json:"type"`
	// Fingerprint is "SHA256:..." as ssh-keygen -l prints it.
	Fingerprint string `json:"fingerprint"`
	// Skipped says why the key cannot be used; empty when it can.
	Skipped string `json:"skipped,omitempty"`
}

func (k Key) String() string { return k.Fingerprint + " (" + k.Type + ")" }

// minRSABits is the smallest RSA key age encrypts to.
const minRSABits = 2048

// parseKey reads one authorized_keys line into the recipient it stands
// for, or says why it cannot be one.
func parseKey(line string) (age.Recipient, Key, error) {
	pub, _, _, rest, err := ssh.ParseAuthorizedKey([]byte(strings.TrimSpace(line)))
	if err != nil {
		return nil, Key{}, fmt.Errorf("not a public SSH key in authorized_keys form (%v)", err)
	}
	if len(strings.TrimSpace(string(rest))) > 0 {
		return nil, Key{}, errors.New("more than one key on a line")
	}
	k := Key{Type: pub.Type(), Fingerprint: ssh.FingerprintSHA256(pub)}
	switch pub.Type() {
	case ssh.KeyAlgoED25519:
		r, err := agessh.NewEd25519Recipient(pub)
		return r, k, err
	case ssh.KeyAlgoRSA:
		if ck, ok := pub.(ssh.CryptoPublicKey); ok {
			if rk, ok := ck.CryptoPublicKey().(*rsa.PublicKey); ok && rk.N.BitLen() < minRSABits {
				return nil, k, fmt.Errorf("an RSA key of %d bits; age encrypts only to RSA keys of %d bits or more", rk.N.BitLen(), minRSABits)
			}
		}
		r, err := agessh.NewRSARecipient(pub)
		return r, k, err
	}
	return nil, k, fmt.Errorf("an %s key; secrets can be encrypted only to ssh-ed25519 and ssh-rsa keys (a security key or ECDSA key cannot decrypt)", pub.Type())
}

// CheckKey says why a public key listed in gitgrant.yaml cannot receive
// secrets (schema validation uses it); nil when it can.
func CheckKey(line string) error {
	_, _, err := parseKey(line)
	return err
}

// Recipients turns public keys into age recipients. Keys that cannot be
// used (ECDSA, security keys, short RSA keys) are listed with the reason
// and skipped; none usable is ErrNoKey.
func Recipients(keys []string) ([]age.Recipient, []Key, error) {
	var out []age.Recipient
	var listed []Key
	for _, line := range keys {
		r, k, err := parseKey(line)
		if err != nil {
			k.Skipped = err.Error()
			if k.Type == "" {
				k.Type = "unknown"
			}
			listed = append(listed, k)
			continue
		}
		out = append(out, r)
		listed = append(listed, k)
	}
	if len(out) == 0 {
		return nil, listed, ErrNoKey
	}
	return out, listed, nil
}

// KeyLister lists the public SSH keys of a GitHub user (ghapi.Client's
// UserSSHKeys).
type KeyLister interface {
	UserSSHKeys(ctx context.Context, login string) ([]string, error)
}

// KeysFor chooses the public keys a requester's secrets are encrypted to:
// the identity's ssh_keys when gitgrant.yaml lists some (reviewed like the
// rest of the policy), else the keys GitHub lists for login. It checks
// that at least one can be used, and otherwise says how to fix it, so that
// the grant can be refused before any account exists.
func KeysFor(ctx context.Context, login string, id gitgrant.Identity, gh KeyLister) ([]string, error) {
	keys, source := id.SSHKeys, "identities."+login+".ssh_keys in gitgrant.yaml"
	if len(keys) == 0 {
		if gh == nil {
			return nil, fmt.Errorf("%s lists no SSH key and GitHub cannot be asked for %s's: %w", source, login, ErrNoKey)
		}
		var err error
		if keys, err = gh.UserSSHKeys(ctx, login); err != nil {
			return nil, fmt.Errorf("reading %s's public SSH keys from GitHub: %w", login, err)
		}
		source = "GitHub's keys of " + login
	}
	if _, listed, err := Recipients(keys); err != nil {
		var skipped []string
		for _, k := range listed {
			skipped = append(skipped, fmt.Sprintf("%s: %s", k, k.Skipped))
		}
		why := "there are none"
		if len(skipped) > 0 {
			why = "none can be used: " + strings.Join(skipped, "; ")
		}
		return nil, fmt.Errorf("%w: the password of an ephemeral account is encrypted to the requester's SSH keys, and in %s %s. "+
			"Fix: add an ssh-ed25519 key (ssh-keygen -t ed25519) to the GitHub account (Settings, SSH and GPG keys), or have an admin list it under identities.%s.ssh_keys in gitgrant.yaml",
			ErrNoKey, source, why, login)
	}
	return keys, nil
}

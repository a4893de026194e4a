// Package handoff hands the secret of an ephemeral account to the person
// it was made for, through the pull request that asked for it: the secret
// is encrypted with age to the requester's public SSH keys and posted,
// armored, in a comment that shows the account's name and host in clear;
// `gitgrant credentials` finds the comment and decrypts it with the
// requester's private key. It is the only package that imports age.
package handoff

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"filippo.io/age"
	"filippo.io/age/agessh"
	"filippo.io/age/armor"
	"golang.org/x/crypto/ssh"

	"github.com/gitgrant/gitgrant/providers"
)

// Payload is what is sealed: the account with its secret, and what binds
// it to one request, so that a sealed file copied elsewhere is noticed.
type Payload struct {
	Account providers.Account
	// Provider and Role are the grant the account stands for.
	Provider string
	Role     string
	// Repository ("owner/name"), PullRequest and Request (the request
	// file's path) say which request the account was made for.
	Repository  string
	PullRequest int
	Request     string
	// Until is when the account is dropped.
	Until time.Time
}

// String shows the payload without its secret.
func (p Payload) String() string {
	return fmt.Sprintf("%s for %s/%s until %s", p.Account, p.Provider, p.Role, p.Until.UTC().Format(time.RFC3339))
}

// GoString keeps %#v from printing the secret.
func (p Payload) GoString() string { return p.String() }

// Format prints String for every verb.
func (p Payload) Format(f fmt.State, _ rune) { fmt.Fprint(f, p.String()) }

// LogValue keeps the secret out of structured logs.
func (p Payload) LogValue() slog.Value { return slog.StringValue(p.String()) }

// MarshalJSON leaves the secret out; Seal encodes it on purpose.
func (p Payload) MarshalJSON() ([]byte, error) { return json.Marshal(p.wire(false)) }

// wireFormat is the sealed JSON. Version 1.
type wireFormat struct {
	Version     int                  `json:"v"`
	Account     string               `json:"account"`
	Secret      string               `json:"secret,omitempty"`
	Connect     providers.Connection `json:"connect"`
	Provider    string               `json:"provider"`
	Role        string               `json:"role"`
	Repository  string               `json:"repository,omitempty"`
	PullRequest int                  `json:"pull_request,omitempty"`
	Request     string               `json:"request,omitempty"`
	Until       time.Time            `json:"until"`
}

const wireVersion = 1

func (p Payload) wire(withSecret bool) wireFormat {
	w := wireFormat{Version: wireVersion, Account: p.Account.Name, Connect: p.Account.Connect, Provider: p.Provider, Role: p.Role,
		Repository: p.Repository, PullRequest: p.PullRequest, Request: p.Request, Until: p.Until.UTC().Truncate(time.Second)}
	if withSecret {
		w.Secret = p.Account.Secret
	}
	return w
}

// Seal encrypts p to every usable key (authorized_keys lines) and returns
// the armored age file. No usable key is ErrNoKey.
func Seal(p Payload, keys []string) (string, error) {
	if p.Account.Name == "" || p.Account.Secret == "" {
		return "", errors.New("handoff: nothing to seal: the account has no name or no secret")
	}
	recipients, _, err := Recipients(keys)
	if err != nil {
		return "", err
	}
	plain, err := json.Marshal(p.wire(true))
	if err != nil {
		return "", err
	}
	defer clear(plain)
	var out bytes.Buffer
	aw := armor.NewWriter(&out)
	w, err := age.Encrypt(aw, recipients...)
	if err != nil {
		return "", fmt.Errorf("handoff: encrypt: %w", err)
	}
	if _, err := w.Write(plain); err != nil {
		return "", fmt.Errorf("handoff: encrypt: %w", err)
	}
	if err := w.Close(); err != nil {
		return "", fmt.Errorf("handoff: encrypt: %w", err)
	}
	if err := aw.Close(); err != nil {
		return "", fmt.Errorf("handoff: armor: %w", err)
	}
	return out.String(), nil
}

// ErrNotForYou says no key given can decrypt the sealed file: it was
// encrypted to other keys.
var ErrNotForYou = errors.New("the credentials are encrypted to other SSH keys")

// Identity is a private key to decrypt with (LoadIdentity).
type Identity struct {
	age  age.Identity
	File string
}

// Open decrypts an armored age file that Seal wrote.
func Open(armored string, identities ...Identity) (Payload, error) {
	ids := make([]age.Identity, len(identities))
	for i, id := range identities {
		ids[i] = id.age
	}
	r, err := age.Decrypt(armor.NewReader(strings.NewReader(armored)), ids...)
	if err != nil {
		var none *age.NoIdentityMatchError
		if errors.As(err, &none) {
			return Payload{}, ErrNotForYou
		}
		return Payload{}, fmt.Errorf("handoff: decrypt: %w", err)
	}
	plain, err := io.ReadAll(io.LimitReader(r, 64<<10))
	defer clear(plain)
	if err != nil {
		return Payload{}, fmt.Errorf("handoff: decrypt: %w", err)
	}
	var w wireFormat
	if err := json.Unmarshal(plain, &w); err != nil {
		// The message of a JSON error can quote the input: say nothing of it.
		return Payload{}, errors.New("handoff: the decrypted credentials are not gitgrant's format")
	}
	if w.Version != wireVersion {
		return Payload{}, fmt.Errorf("handoff: the credentials are in format version %d; this gitgrant reads %d (upgrade gitgrant)", w.Version, wireVersion)
	}
	if w.Account == "" || w.Secret == "" {
		return Payload{}, errors.New("handoff: the decrypted credentials name no account or hold no secret")
	}
	return Payload{
		Account:  providers.Account{Name: w.Account, Secret: w.Secret, Connect: w.Connect},
		Provider: w.Provider, Role: w.Role, Repository: w.Repository, PullRequest: w.PullRequest, Request: w.Request,
		Until: w.Until,
	}, nil
}

// Passphrase asks for the passphrase of a private key file; nil means
// there is no one to ask.
type Passphrase func(keyFile string) ([]byte, error)

// LoadIdentity reads an SSH private key (ssh-ed25519 or ssh-rsa, OpenSSH
// or PEM format) for Open. A key protected by a passphrase needs its
// public half (read from the key or from path.pub) and ask, which is
// called only when the key matches a recipient of the file.
func LoadIdentity(path string, ask Passphrase) (Identity, error) {
	id, err := loadIdentity(path, ask)
	return Identity{age: id, File: path}, err
}

func loadIdentity(path string, ask Passphrase) (age.Identity, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the SSH key: %w", err)
	}
	id, err := agessh.ParseIdentity(data)
	if err == nil {
		return id, nil
	}
	var missing *ssh.PassphraseMissingError
	if !errors.As(err, &missing) {
		return nil, fmt.Errorf("%s is not an SSH private key gitgrant can decrypt with (ssh-ed25519 or ssh-rsa): %v", path, err)
	}
	if ask == nil {
		return nil, fmt.Errorf("%s is protected by a passphrase and there is no terminal to ask for it: run gitgrant credentials in a terminal", path)
	}
	pub := missing.PublicKey
	if pub == nil {
		pubData, err := os.ReadFile(path + ".pub")
		if err != nil {
			return nil, fmt.Errorf("%s is protected by a passphrase and its public key is needed too: %v", path, err)
		}
		if pub, _, _, _, err = ssh.ParseAuthorizedKey(pubData); err != nil {
			return nil, fmt.Errorf("%s.pub: %v", path, err)
		}
	}
	return agessh.NewEncryptedSSHIdentity(pub, data, func() ([]byte, error) { return ask(path) })
}

// Package sshkeys makes SSH key pairs for tests: the private key in a
// file, as ~/.ssh holds it, and the public key as an authorized_keys line,
// as GitHub lists it.
package sshkeys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

// Pair is a key pair on disk.
type Pair struct {
	// Private is the private key's file (OpenSSH format), with the public
	// key beside it in Private+".pub".
	Private string
	// Public is the public key, "ssh-ed25519 AAAA... comment".
	Public string
}

// Kinds of key Generate makes.
const (
	Ed25519 = "ed25519"
	RSA     = "rsa"     // 3072 bits, ssh-keygen's default
	RSA1024 = "rsa1024" // too short for age
	ECDSA   = "ecdsa"   // a type age cannot encrypt to
)

// Generate makes a key pair of kind in a temporary directory; a non-empty
// passphrase protects the private key.
func Generate(t testing.TB, kind, passphrase string) Pair {
	t.Helper()
	var key crypto.Signer
	var err error
	switch kind {
	case Ed25519:
		_, key, err = ed25519.GenerateKey(rand.Reader)
	case RSA:
		key, err = rsa.GenerateKey(rand.Reader, 3072)
	case RSA1024:
		key, err = rsa.GenerateKey(rand.Reader, 1024)
	case ECDSA:
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		t.Fatalf("sshkeys: unknown kind %q", kind)
	}
	if err != nil {
		t.Fatal(err)
	}
	var block *pem.Block
	if passphrase == "" {
		block, err = ssh.MarshalPrivateKey(key, kind+"@test")
	} else {
		block, err = ssh.MarshalPrivateKeyWithPassphrase(key, kind+"@test", []byte(passphrase))
	}
	if err != nil {
		t.Fatal(err)
	}
	pub, err := ssh.NewPublicKey(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	p := Pair{
		Private: filepath.Join(t.TempDir(), "id_"+kind),
		Public:  strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub))) + " " + kind + "@test",
	}
	if err := os.WriteFile(p.Private, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p.Private+".pub", []byte(p.Public+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

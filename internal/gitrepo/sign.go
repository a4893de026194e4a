package gitrepo

import (
	"bytes"
	"crypto/rand"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	"golang.org/x/crypto/ssh"
)

// Signer signs the canonical encoding of a commit and returns an armored
// signature for its gpgsig header (the same contract as go-git's Signer).
type Signer interface {
	Sign(message io.Reader) ([]byte, error)
}

// OpenPGPSigner signs with an OpenPGP private key, as git's gpg.format=openpgp.
type OpenPGPSigner struct{ entity *openpgp.Entity }

// NewOpenPGPSigner reads an armored private key, decrypting it with
// passphrase when it is encrypted.
func NewOpenPGPSigner(armoredKey []byte, passphrase string) (*OpenPGPSigner, error) {
	ring, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(armoredKey))
	if err != nil {
		return nil, fmt.Errorf("reading OpenPGP signing key: %w", err)
	}
	if len(ring) == 0 {
		return nil, errors.New("reading OpenPGP signing key: no key found")
	}
	e := ring[0]
	if e.PrivateKey == nil {
		return nil, errors.New("OpenPGP signing key holds no private key")
	}
	if e.PrivateKey.Encrypted {
		if err := e.PrivateKey.Decrypt([]byte(passphrase)); err != nil {
			return nil, fmt.Errorf("decrypting OpenPGP signing key: %w", err)
		}
	}
	for _, sub := range e.Subkeys {
		if sub.PrivateKey != nil && sub.PrivateKey.Encrypted {
			_ = sub.PrivateKey.Decrypt([]byte(passphrase))
		}
	}
	return &OpenPGPSigner{entity: e}, nil
}

func (s *OpenPGPSigner) Sign(message io.Reader) ([]byte, error) {
	var b bytes.Buffer
	if err := openpgp.ArmoredDetachSign(&b, s.entity, message, nil); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// SSHSigner signs with an SSH key in the SSHSIG format that git uses with
// gpg.format=ssh (verified by `git verify-commit` with an allowed signers
// file), namespace "git".
type SSHSigner struct{ key ssh.Signer }

// NewSSHSigner wraps an SSH private key (from a file or an agent).
func NewSSHSigner(key ssh.Signer) *SSHSigner { return &SSHSigner{key: key} }

// NewSSHSignerFromFile reads an OpenSSH private key file.
func NewSSHSignerFromFile(keyFile, passphrase string) (*SSHSigner, error) {
	pem, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("reading SSH signing key: %w", err)
	}
	var key ssh.Signer
	if passphrase != "" {
		key, err = ssh.ParsePrivateKeyWithPassphrase(pem, []byte(passphrase))
	} else {
		key, err = ssh.ParsePrivateKey(pem)
	}
	if err != nil {
		return nil, fmt.Errorf("reading SSH signing key %s: %w", keyFile, err)
	}
	return NewSSHSigner(key), nil
}

const (
	sshsigMagic     = "SSHSIG"
	sshsigNamespace = "git"
	sshsigHash      = "sha512"
)

func (s *SSHSigner) Sign(message io.Reader) ([]byte, error) {
	h := sha512.New()
	if _, err := io.Copy(h, message); err != nil {
		return nil, err
	}
	signed := append([]byte(sshsigMagic), ssh.Marshal(struct {
		Namespace, Reserved, Hash string
		Digest                    []byte
	}{sshsigNamespace, "", sshsigHash, h.Sum(nil)})...)
	var sig *ssh.Signature
	var err error
	if as, ok := s.key.(ssh.AlgorithmSigner); ok && s.key.PublicKey().Type() == ssh.KeyAlgoRSA {
		sig, err = as.SignWithAlgorithm(rand.Reader, signed, ssh.KeyAlgoRSASHA512)
	} else {
		sig, err = s.key.Sign(rand.Reader, signed)
	}
	if err != nil {
		return nil, fmt.Errorf("SSH signing: %w", err)
	}
	blob := append([]byte(sshsigMagic), ssh.Marshal(struct {
		Version   uint32
		PublicKey []byte
		Namespace string
		Reserved  string
		Hash      string
		Signature []byte
	}{1, s.key.PublicKey().Marshal(), sshsigNamespace, "", sshsigHash, ssh.Marshal(sig)})...)
	enc := base64.StdEncoding.EncodeToString(blob)
	var b strings.Builder
	b.WriteString("-----BEGIN SSH SIGNATURE-----\n")
	for len(enc) > 70 {
		b.WriteString(enc[:70] + "\n")
		enc = enc[70:]
	}
	b.WriteString(enc + "\n-----END SSH SIGNATURE-----\n")
	return []byte(b.String()), nil
}

package providers

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
)

// An Account carries a password, so every way Go has of printing or
// encoding it leaves the password out: fmt's verbs, slog and JSON show the
// name and where it connects. Only Secret, read on purpose, gives it.

// String shows the account without its secret.
func (a Account) String() string {
	return fmt.Sprintf("account %s on %s", a.Name, a.Connect)
}

// GoString keeps %#v from printing the secret.
func (a Account) GoString() string { return a.String() }

// Format prints String for every verb (%d or %x of a struct would print
// each field otherwise).
func (a Account) Format(f fmt.State, _ rune) { fmt.Fprint(f, a.String()) }

// LogValue keeps the secret out of structured logs.
func (a Account) LogValue() slog.Value {
	return slog.GroupValue(slog.String("name", a.Name), slog.Any("connect", a.Connect))
}

// MarshalJSON leaves the secret out: nothing gitgrant writes as JSON
// (reports, the ledger, metrics) may hold it. The hand-off seals it
// explicitly.
func (a Account) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Name    string     `json:"name"`
		Connect Connection `json:"connect"`
	}{a.Name, a.Connect})
}

// String is host:port/database.
func (c Connection) String() string {
	s := c.Host
	if c.Port != 0 {
		s = fmt.Sprintf("%s:%d", s, c.Port)
	}
	if c.Database != "" {
		s += "/" + c.Database
	}
	return s
}

// ErrOwnsObjects says an ephemeral account was not dropped because it
// owns objects (or holds privileges) that gitgrant may not reassign: its
// access has ended (it can no longer log in and holds no role), and a
// person has to move the objects before gitgrant can drop it.
var ErrOwnsObjects = errors.New("the account owns objects")

// PasswordLen is the length of an ephemeral account's password: 40
// characters of [A-Za-z0-9], 238 bits, nothing any client or DSN needs to
// quote.
const PasswordLen = 40

const passwordAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// NewPassword is a fresh random password for an ephemeral account, from
// crypto/rand.
func NewPassword() string {
	out := make([]byte, PasswordLen)
	const limit = 256 - 256%len(passwordAlphabet) // no bias
	buf := make([]byte, 64)
	for i := 0; i < len(out); {
		rand.Read(buf) // never fails (crypto/rand, Go 1.24+)
		for _, b := range buf {
			if int(b) < limit && i < len(out) {
				out[i] = passwordAlphabet[int(b)%len(passwordAlphabet)]
				i++
			}
		}
	}
	return string(out)
}

// Scrub returns err with every occurrence of each secret replaced by
// "[redacted]", for a driver error that may quote the statement which
// carried a password. An error that holds none is returned as it is; one
// that does loses its chain (the chain would still hold the secret), so
// classify driver errors before scrubbing them, or scrub the driver's
// own error type field by field.
func Scrub(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	scrubbed := ScrubString(msg, secrets...)
	if scrubbed == msg {
		return err
	}
	return errors.New(scrubbed)
}

// ScrubString replaces every occurrence of each non-empty secret in s.
func ScrubString(s string, secrets ...string) string {
	for _, sec := range secrets {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, "[redacted]")
		}
	}
	return s
}

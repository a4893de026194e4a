package gitgrant

import (
	"crypto/rand"
	"fmt"
	"strings"
)

// Ephemeral accounts: a role with `mode: ephemeral` gives each request a
// login of its own, created at grant with a random password and dropped
// when the request ends (docs/ephemeral.md). Its name is the role's
// account prefix and a random suffix; the rules below are the one home of
// what such a name may be, which the config check, the engine that picks
// names and the providers that create and drop them all apply.

// ModeEphemeral is RoleConfig.Mode of a role granted through ephemeral
// accounts.
const ModeEphemeral = "ephemeral"

// What dropping an ephemeral account does with objects it owns
// (RoleConfig.OnOwned).
const (
	// OnOwnedReassign hands them to the role's target, then drops the
	// account.
	OnOwnedReassign = "reassign"
	// OnOwnedRefuse ends the account's access but keeps it, and says
	// which objects a person has to move first.
	OnOwnedRefuse = "refuse"
)

// AccountSuffixLen is the length of the random part of an ephemeral
// account's name: 12 characters of [a-z0-9], 62 bits.
const AccountSuffixLen = 12

const accountSuffixAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789"

// IsEphemeral reports whether role is granted through ephemeral accounts.
func (p *ProviderConfig) IsEphemeral(role string) bool {
	r, ok := p.Roles[role]
	return ok && r.Mode == ModeEphemeral
}

// RoleAccountPrefix is the prefix of role's ephemeral accounts: its
// account_prefix, or DefaultAccountPrefix(role).
func (p *ProviderConfig) RoleAccountPrefix(role string) string {
	if r, ok := p.Roles[role]; ok && r.AccountPrefix != "" {
		return r.AccountPrefix
	}
	return DefaultAccountPrefix(role)
}

// RoleOnOwned is what dropping one of role's ephemeral accounts does with
// the objects it owns: its on_owned, or OnOwnedReassign.
func (p *ProviderConfig) RoleOnOwned(role string) string {
	if r, ok := p.Roles[role]; ok && r.OnOwned != "" {
		return r.OnOwned
	}
	return OnOwnedReassign
}

// DefaultAccountPrefix is "gg_<role>_", the role's name in lower case with
// every character other than a letter or digit written as "_".
func DefaultAccountPrefix(role string) string {
	var b strings.Builder
	b.WriteString("gg_")
	for _, r := range strings.ToLower(role) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	b.WriteByte('_')
	return b.String()
}

// CheckAccountPrefix reports why prefix cannot start ephemeral account
// names on a system whose logins have at most maxLogin characters.
// A prefix is a lower-case letter, then lower-case letters, digits and
// underscores, ending in "_": a name that needs no quoting anywhere, and
// since suffixes have no "_", no prefix's accounts can pass for another's.
func CheckAccountPrefix(prefix string, maxLogin int) error {
	switch {
	case prefix == "":
		return fmt.Errorf("the account prefix is empty")
	case prefix[0] < 'a' || prefix[0] > 'z':
		return fmt.Errorf("account prefix %q must start with a lower-case letter", prefix)
	case !strings.HasSuffix(prefix, "_"):
		return fmt.Errorf("account prefix %q must end with \"_\", so that no role's accounts look like another's", prefix)
	case len(prefix)+AccountSuffixLen > maxLogin:
		return fmt.Errorf("account prefix %q is %d characters: with the %d-character random suffix the login would be longer than the %d this system allows (at most %d)",
			prefix, len(prefix), AccountSuffixLen, maxLogin, maxLogin-AccountSuffixLen)
	}
	for _, r := range prefix {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
			return fmt.Errorf("account prefix %q may hold only lower-case letters, digits and \"_\" (not %q)", prefix, r)
		}
	}
	return nil
}

// NewAccountName is a fresh name for an ephemeral account: prefix and
// AccountSuffixLen random characters from crypto/rand.
func NewAccountName(prefix string) string {
	suffix := make([]byte, AccountSuffixLen)
	// rand.Text's way: reject the bytes that would bias the choice.
	const limit = 256 - 256%len(accountSuffixAlphabet)
	buf := make([]byte, 1)
	for i := 0; i < len(suffix); {
		rand.Read(buf) // never fails (crypto/rand, Go 1.24+)
		if int(buf[0]) >= limit {
			continue
		}
		suffix[i] = accountSuffixAlphabet[int(buf[0])%len(accountSuffixAlphabet)]
		i++
	}
	return prefix + string(suffix)
}

// CheckAccountName reports why name is not an ephemeral account of
// prefix (the prefix, then one or more of [a-z0-9], at most maxLogin
// characters). Providers refuse to create or drop any other name, so a
// mistake can never drop a person's own login.
func CheckAccountName(prefix, name string, maxLogin int) error {
	suffix, ok := strings.CutPrefix(name, prefix)
	switch {
	case !ok || prefix == "":
		return fmt.Errorf("%q does not start with the account prefix %q", name, prefix)
	case suffix == "":
		return fmt.Errorf("%q has no suffix after the account prefix %q", name, prefix)
	case len(name) > maxLogin:
		return fmt.Errorf("%q is longer than %d characters", name, maxLogin)
	}
	for _, r := range suffix {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
			return fmt.Errorf("%q: the part after the account prefix %q may hold only lower-case letters and digits", name, prefix)
		}
	}
	return nil
}

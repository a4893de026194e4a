package mysql

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/gitgrant/gitgrant/providers"
)

// Limits of the mysql.* grant tables (MariaDB 10.4+; MySQL has shorter
// user names and says so with ER_WRONG_STRING_LENGTH).
const (
	maxUser = 128
	maxHost = 255
	maxRole = 128
)

// account is a user account, 'user'@'host', or a role when host is empty
// (MariaDB's grant tables record roles granted to roles that way). Build
// it with newAccount, which gives each account one spelling.
type account struct{ user, host string }

// newAccount is the account user@host. User names are case-sensitive;
// host names are not, and the server stores them in lower case.
func newAccount(user, host string) account {
	return account{user, strings.ToLower(host)}
}

// parsePrincipal reads a principal written as 'user'@'host' (either part
// may be quoted with ', " or ` as in MySQL's documentation, the quote
// doubled inside) or as a plain user name, which means host '%'.
func parsePrincipal(s string) (account, error) {
	var a account
	if len(s) > 0 && strings.ContainsRune(quotes, rune(s[0])) {
		user, rest, ok := readQuoted(s)
		if !ok || !strings.HasPrefix(rest, "@") {
			return a, fmt.Errorf("%w: %q: write accounts as 'user'@'host' (a quote inside doubled) or as a plain user name", providers.ErrInvalidName, s)
		}
		host, rest, ok := readQuoted(rest[1:])
		if !ok || rest != "" {
			return a, fmt.Errorf("%w: %q: write accounts as 'user'@'host' (a quote inside doubled) or as a plain user name", providers.ErrInvalidName, s)
		}
		a = newAccount(user, host)
	} else {
		if strings.ContainsAny(s, "@"+quotes) {
			return a, fmt.Errorf("%w: %q: a plain user name means 'user'@'%%'; to name a host write 'user'@'host'", providers.ErrInvalidName, s)
		}
		a = newAccount(s, "%")
	}
	if err := validName(a.user, maxUser); err != nil {
		return a, fmt.Errorf("user of %q: %w", s, err)
	}
	if a.host == "" {
		// 'name'@'' is how Members reports a role granted to a role.
		return a, nil
	}
	if err := validName(a.host, maxHost); err != nil {
		return a, fmt.Errorf("host of %q: %w", s, err)
	}
	return a, nil
}

// quotes are the characters MySQL accepts around each part of an account.
const quotes = "'\"`"

// readQuoted reads a string quoted with its first character, the quote
// doubled inside, from the start of s.
func readQuoted(s string) (value, rest string, ok bool) {
	if s == "" || !strings.ContainsRune(quotes, rune(s[0])) {
		return "", "", false
	}
	q := s[0]
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		if s[i] != q {
			b.WriteByte(s[i])
			continue
		}
		if i+1 < len(s) && s[i+1] == q {
			b.WriteByte(q)
			i++
			continue
		}
		return b.String(), s[i+1:], true
	}
	return "", "", false
}

// String writes the account the way Members reports it: a plain user name
// for host '%' when that reads back the same, else 'user'@'host'.
func (a account) String() string {
	if a.host == "%" && !strings.ContainsAny(a.user, "@"+quotes) && a.user != "" {
		return a.user
	}
	return literal(a.user) + "@" + literal(a.host)
}

// sql writes the account for a statement. A role is written as an
// identifier: an empty host in a statement would mean host '%'.
func (a account) sql() string {
	if a.host == "" {
		return ident(a.user)
	}
	return literal(a.user) + "@" + literal(a.host)
}

// validName rejects what cannot be quoted into exactly one name whatever
// the session's sql_mode: backslashes (an escape unless
// NO_BACKSLASH_ESCAPES), control characters, and characters outside the
// Basic Multilingual Plane, which the utf8mb3 grant tables cannot store.
func validName(s string, max int) error {
	switch {
	case s == "":
		return fmt.Errorf("%w: empty", providers.ErrInvalidName)
	case !utf8.ValidString(s):
		return fmt.Errorf("%w: %q is not valid UTF-8", providers.ErrInvalidName, s)
	case utf8.RuneCountInString(s) > max:
		return fmt.Errorf("%w: %.20q... is longer than %d characters", providers.ErrInvalidName, s, max)
	}
	for _, r := range s {
		switch {
		case r == '\\':
			return fmt.Errorf("%w: %q contains a backslash", providers.ErrInvalidName, s)
		case unicode.IsControl(r) || r > 0xFFFF || unicode.Is(unicode.Cf, r):
			return fmt.Errorf("%w: %q contains the character %U", providers.ErrInvalidName, s, r)
		}
	}
	return nil
}

// validRole checks a role's target name.
func validRole(s string) error {
	if err := validName(s, maxRole); err != nil {
		return err
	}
	switch strings.ToLower(s) {
	case "none", "public", "current_role", "current_user":
		return fmt.Errorf("%w: %q is reserved", providers.ErrInvalidName, s)
	}
	return nil
}

// literal quotes a string; names never hold backslashes (validName).
func literal(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// ident quotes an identifier.
func ident(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

// eventName is the name of the EVENT that revokes role from a at expiry:
// deterministic, so a new grant replaces it and a revoke drops it. Members
// computes the same in SQL (eventNameSQL).
func eventName(role string, a account) string {
	sum := sha256.Sum256([]byte(role + "\x00" + a.user + "\x00" + a.host))
	return eventPrefix + hex.EncodeToString(sum[:8])
}

const eventPrefix = "gitgrant_expire_"

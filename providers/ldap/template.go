package ldap

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/go-ldap/ldap/v3"

	"github.com/gitgrant/gitgrant/providers"
)

// maxNameBytes bounds principal and role names. Directories limit DN
// lengths in different ways; a name this long is a mistake or an attack.
const maxNameBytes = 512

// dnTemplate is a DN with one placeholder, such as
// "uid={principal},ou=people,dc=example,dc=org". The placeholder must be a
// whole attribute value, so that a DN can be mapped back to the name.
type dnTemplate struct {
	text        string
	placeholder string   // "{principal}" or "{role}"
	parsed      *ldap.DN // the template, the placeholder as a literal value
	rdn, attr   int      // where the placeholder sits in parsed
}

func parseTemplate(setting, text, placeholder string) (*dnTemplate, error) {
	if strings.Count(text, placeholder) != 1 {
		return nil, fmt.Errorf("setting %s must contain %s exactly once", setting, placeholder)
	}
	dn, err := ldap.ParseDN(text)
	if err != nil {
		return nil, fmt.Errorf("setting %s is not a DN: %v", setting, err)
	}
	for i, rdn := range dn.RDNs {
		for j, a := range rdn.Attributes {
			if a.Value == placeholder {
				return &dnTemplate{text: text, placeholder: placeholder, parsed: dn, rdn: i, attr: j}, nil
			}
		}
	}
	return nil, fmt.Errorf("setting %s: %s must be a whole attribute value, as in uid=%s,ou=people,dc=example,dc=org", setting, placeholder, placeholder)
}

// fill returns the DN for name, escaped so that no name can change the
// DN's structure.
func (t *dnTemplate) fill(name string) string {
	return strings.Replace(t.text, t.placeholder, ldap.EscapeDN(name), 1)
}

// match returns the name a DN was made from, or false when the DN does not
// follow the template.
func (t *dnTemplate) match(dn *ldap.DN) (string, bool) {
	if len(dn.RDNs) != len(t.parsed.RDNs) {
		return "", false
	}
	for i, rdn := range dn.RDNs {
		want := t.parsed.RDNs[i]
		if len(rdn.Attributes) != len(want.Attributes) {
			return "", false
		}
		if i != t.rdn {
			if !rdn.EqualFold(want) {
				return "", false
			}
			continue
		}
		for j, a := range rdn.Attributes {
			w := want.Attributes[j]
			if !strings.EqualFold(a.Type, w.Type) {
				return "", false
			}
			if j != t.attr && !a.EqualFold(w) {
				return "", false
			}
		}
	}
	return dn.RDNs[t.rdn].Attributes[t.attr].Value, true
}

// checkName rejects names that cannot be a principal or a role target:
// empty, not UTF-8, control characters (including NUL), or too long. All
// other characters are escaped by fill.
func checkName(kind, name string) error {
	switch {
	case name == "":
		return fmt.Errorf("empty %s: %w", kind, providers.ErrInvalidName)
	case len(name) > maxNameBytes:
		return fmt.Errorf("%s of %d bytes is longer than %d: %w", kind, len(name), maxNameBytes, providers.ErrInvalidName)
	case !utf8.ValidString(name):
		return fmt.Errorf("%s %q is not UTF-8: %w", kind, name, providers.ErrInvalidName)
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return fmt.Errorf("%s %q contains control characters: %w", kind, name, providers.ErrInvalidName)
	}
	return nil
}

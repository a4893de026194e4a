package schema

import (
	"fmt"
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
	"golang.org/x/text/unicode/runenames"
)

// confusables maps letters from other scripts that render like ASCII
// letters in most fonts. NFKC folding (fullwidth, mathematical letters) is
// applied first; this table covers what NFKC leaves alone.
var confusables = map[rune]rune{
	// Cyrillic
	'а': 'a', 'в': 'b', 'с': 'c', 'е': 'e', 'һ': 'h', 'і': 'i', 'ј': 'j', 'к': 'k',
	'м': 'm', 'н': 'h', 'о': 'o', 'р': 'p', 'ѕ': 's', 'т': 't', 'у': 'y', 'х': 'x',
	'ԁ': 'd', 'ԛ': 'q', 'ԝ': 'w', 'ӏ': 'l',
	'А': 'A', 'В': 'B', 'С': 'C', 'Е': 'E', 'Н': 'H', 'І': 'I', 'Ј': 'J', 'К': 'K',
	'М': 'M', 'О': 'O', 'Р': 'P', 'Ѕ': 'S', 'Т': 'T', 'Х': 'X', 'У': 'Y',
	// Greek
	'α': 'a', 'ο': 'o', 'ρ': 'p', 'ν': 'v', 'ι': 'i', 'κ': 'k', 'τ': 't', 'υ': 'u',
	'Α': 'A', 'Β': 'B', 'Ε': 'E', 'Ζ': 'Z', 'Η': 'H', 'Ι': 'I', 'Κ': 'K', 'Μ': 'M',
	'Ν': 'N', 'Ο': 'O', 'Ρ': 'P', 'Τ': 'T', 'Υ': 'Y', 'Χ': 'X',
	// Latin letters outside ASCII
	'ı': 'i', 'ł': 'l', 'ɡ': 'g', 'ʏ': 'y',
	// dashes
	'‐': '-', '‑': '-', '‒': '-', '–': '-', '—': '-', '−': '-',
}

// explainLookalike reports, for a login that is not plain ASCII, which
// character is foreign and what ASCII login it imitates. GitHub logins are
// ASCII, so such a value is either a typo from a copy-paste or an attempt to
// pass as someone else; either way it must be rejected with a clear reason.
func explainLookalike(login string) (msg, hint string, ok bool) {
	var foreign rune = -1
	for _, r := range login {
		if r > unicode.MaxASCII || unicode.IsControl(r) {
			foreign = r
			break
		}
	}
	if foreign < 0 {
		return "", "", false
	}
	skeleton := asciiSkeleton(login)
	name := runenames.Name(foreign)
	if name == "" {
		name = "an unnamed character"
	}
	msg = fmt.Sprintf("%q contains U+%04X %s; GitHub logins are ASCII letters, digits and hyphens", login, foreign, name)
	if skeleton != "" && skeleton != login {
		hint = fmt.Sprintf("it looks like %q: retype it by hand", skeleton)
	} else {
		hint = "retype the login by hand"
	}
	return msg, hint, true
}

// asciiSkeleton folds look-alikes to ASCII; "" when some character has no
// ASCII look-alike.
func asciiSkeleton(s string) string {
	var b strings.Builder
	for _, r := range norm.NFKC.String(s) {
		if c, ok := confusables[r]; ok {
			r = c
		}
		if r > unicode.MaxASCII {
			return ""
		}
		b.WriteRune(r)
	}
	return b.String()
}

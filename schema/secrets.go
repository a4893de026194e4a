package schema

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/gitgrant/gitgrant"
)

// secretKeyRE matches key names that hold credentials. Such a key is only
// allowed as a reference: <name>_env (an environment variable) or
// <name>_file (a path), never with the secret inline.
var secretKeyRE = regexp.MustCompile(`(?i)(password|passwd|secret|token|dsn|private_?key|api_?key|credential|connection_?string)`)

// secretValueREs match values that are credentials whatever their key:
// URLs with a password, and well-known token and key formats.
var secretValueREs = []*regexp.Regexp{
	regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]*:[^/\s@]+@`), // scheme://user:password@host
	regexp.MustCompile(`^(gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})`),
	regexp.MustCompile(`^(AKIA|ASIA)[A-Z0-9]{16}$`),
	regexp.MustCompile(`^xox[abpr]-`),
	regexp.MustCompile(`-----BEGIN [A-Z ]*PRIVATE KEY-----`),
}

// findInlineSecrets reports every secret written into the config itself.
// Messages name the field, never the value: the value is the secret.
func findInlineSecrets(d *doc, root map[string]any) gitgrant.Diagnostics {
	var out gitgrant.Diagnostics
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for _, k := range sortedKeys(v) {
				p := join(path, k)
				if !isNameMap(path) && secretKeyRE.MatchString(k) && !strings.HasSuffix(k, "_env") && !strings.HasSuffix(k, "_file") {
					out = append(out, gitgrant.Diagnostic{Position: d.keyAt(p), Severity: gitgrant.SeverityError, Field: p,
						Message: fmt.Sprintf("%q holds a secret inline; secrets never go in the repository", k),
						Hint:    fmt.Sprintf("remove it, rotate the secret if it was ever pushed, and write %s_env: VARIABLE (or %s_file: /path) instead", k, k)})
					continue
				}
				walk(p, v[k])
			}
		case []any:
			for i, x := range v {
				walk(join(path, fmt.Sprint(i)), x)
			}
		case string:
			for _, re := range secretValueREs {
				if re.MatchString(v) {
					out = append(out, gitgrant.Diagnostic{Position: d.at(path), Severity: gitgrant.SeverityError, Field: path,
						Message: "value looks like a credential (a password in a URL, a token or a private key); secrets never go in the repository",
						Hint:    "remove it, rotate the secret if it was ever pushed, and reference it with a *_env or *_file setting"})
					break
				}
			}
		}
	}
	walk("", root)
	return out
}

// isNameMap reports whether the mapping at path is keyed by names people
// choose (logins, providers, roles) rather than by setting names.
func isNameMap(path string) bool {
	parts := strings.Split(path, ".")
	switch {
	case path == "identities" || path == "providers":
		return true
	case len(parts) == 3 && parts[0] == "providers" && parts[2] == "roles":
		return true
	case len(parts) == 3 && parts[0] == "identities" && parts[2] == "principals":
		return true
	}
	return false
}

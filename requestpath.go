package gitgrant

import (
	"path"
	"strings"
)

// IsRequestPath reports whether p, slash-separated and relative to the
// repository root, is where a request file lives: a file under requests/
// named *.yaml or *.yml (in any case), with no name on its way below
// requests/ starting with a dot. It is the one rule for what is a request:
// validation, the reconciler, pull request feedback and the audit trail
// all go by it. Anything else under requests/ (a README.md, a .gitkeep, a
// hidden folder) is no request: it grants nothing and is no event in the
// audit trail. A request directly in requests/, outside a provider's
// folder, is still a request, in the wrong place, which validation reports.
func IsRequestPath(p string) bool {
	rest, ok := strings.CutPrefix(p, RequestsDir+"/")
	if !ok {
		return false
	}
	for _, name := range strings.Split(rest, "/") {
		if name == "" || strings.HasPrefix(name, ".") {
			return false
		}
	}
	ext := strings.ToLower(path.Ext(p))
	return ext == ".yaml" || ext == ".yml"
}

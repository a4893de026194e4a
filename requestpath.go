package gitgrant

import (
	"path"
	"strings"
)

// IsRequestPath reports whether p, slash-separated and relative to the
// repository root, is where a request file lives: a file under requests/
// named *.yaml or *.yml (in any case) whose name does not start with a
// dot. It is the one rule for what is a request: validation, the
// reconciler, pull request feedback and the audit trail all go by it.
// Anything else under requests/ (a README.md, a .gitkeep) is no request: it
// grants nothing and is no event in the audit trail. A request directly in
// requests/, outside a provider's folder, is still a request, in the wrong
// place, which validation reports.
func IsRequestPath(p string) bool {
	if !strings.HasPrefix(p, RequestsDir+"/") {
		return false
	}
	name := path.Base(p)
	ext := strings.ToLower(path.Ext(name))
	return !strings.HasPrefix(name, ".") && (ext == ".yaml" || ext == ".yml")
}

// ProviderFolder is the provider a request path is filed under —
// requests/<provider>/... — or "" for a path outside that layout. The
// folder is what CODEOWNERS routes, so every grant of the file must name
// it (rule 2).
func ProviderFolder(p string) string {
	rest, ok := strings.CutPrefix(path.Clean(p), RequestsDir+"/")
	if !ok {
		return ""
	}
	folder, _, ok := strings.Cut(rest, "/")
	if !ok {
		return ""
	}
	return folder
}

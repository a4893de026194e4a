package kubernetes

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/gitgrant/gitgrant/providers"
)

// target is what a role grants: a Role or ClusterRole, bound in each of
// Namespaces by a RoleBinding, or cluster-wide by a ClusterRoleBinding
// when Namespaces is empty.
type target struct {
	Kind       string // "Role" or "ClusterRole"
	Name       string
	Namespaces []string
}

func (t target) roleRef() rbacv1.RoleRef {
	return rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: t.Kind, Name: t.Name}
}

// scopes are where the target's bindings live; "" is cluster-wide.
func (t target) scopes() []string {
	if len(t.Namespaces) == 0 {
		return []string{""}
	}
	return t.Namespaces
}

func (t target) String() string {
	s := t.Kind + "/" + t.Name
	if len(t.Namespaces) > 0 {
		s += "@" + strings.Join(t.Namespaces, ",")
	}
	return s
}

var (
	// A namespace name (RFC 1123 label).
	namespaceRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)
	// A service account name (RFC 1123 subdomain).
	subdomainRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
	// A Role or ClusterRole name: Kubernetes takes any path segment;
	// gitgrant takes the names people and Kubernetes itself use
	// (system:aggregate-to-view, eks:podsecuritypolicy:privileged).
	roleNameRE = regexp.MustCompile(`^[A-Za-z0-9]([-A-Za-z0-9_.:]{0,251}[A-Za-z0-9])?$`)
)

const targetSyntax = "ClusterRole/NAME (cluster-wide), ClusterRole/NAME@NAMESPACE[,NAMESPACE...] or Role/NAME@NAMESPACE[,NAMESPACE...]"

// parseTarget reads a role's target.
func parseTarget(s string) (target, error) {
	bad := func(why string) (target, error) {
		return target{}, fmt.Errorf("target %q %s; write %s: %w", s, why, targetSyntax, providers.ErrInvalidName)
	}
	kind, rest, ok := strings.Cut(s, "/")
	if !ok {
		return bad("names no kind")
	}
	var t target
	switch {
	case strings.EqualFold(kind, "ClusterRole"):
		t.Kind = "ClusterRole"
	case strings.EqualFold(kind, "Role"):
		t.Kind = "Role"
	default:
		return bad("has kind " + quote(kind) + ", not Role or ClusterRole")
	}
	name, namespaces, scoped := strings.Cut(rest, "@")
	if !roleNameRE.MatchString(name) {
		return bad("has no valid role name")
	}
	t.Name = name
	if scoped {
		for _, ns := range strings.Split(namespaces, ",") {
			ns = strings.TrimSpace(ns)
			if !namespaceRE.MatchString(ns) {
				return bad("names " + quote(ns) + ", which is not a namespace name")
			}
			if !slices.Contains(t.Namespaces, ns) {
				t.Namespaces = append(t.Namespaces, ns)
			}
		}
		slices.Sort(t.Namespaces)
	}
	if t.Kind == "Role" && len(t.Namespaces) == 0 {
		return bad("binds a Role without a namespace (a Role lives in one)")
	}
	return t, nil
}

// Principal kinds, as gitgrant.yaml writes them.
const (
	userPrefix           = "user:"
	groupPrefix          = "group:"
	serviceAccountPrefix = "serviceaccount:"
)

const principalSyntax = "user:NAME, group:NAME or serviceaccount:NAMESPACE/NAME"

// maxSubjectName bounds user and group names: longer ones are no one's
// (OIDC issuer#subject names stay far below).
const maxSubjectName = 512

// parsePrincipal reads a principal as a binding subject. For a grant
// (strict) it also refuses names no request should reach: Kubernetes'
// own system: users and groups (system:authenticated would be everyone)
// and names with control or invisible characters. Revoking is lenient:
// whatever Members reports can be revoked.
func parsePrincipal(s string, strict bool) (rbacv1.Subject, error) {
	bad := func(why string) (rbacv1.Subject, error) {
		return rbacv1.Subject{}, fmt.Errorf("principal %s %s; write %s: %w", quote(s), why, principalSyntax, providers.ErrInvalidName)
	}
	kind, name, ok := strings.Cut(s, ":")
	if !ok || name == "" {
		return bad("names no kind")
	}
	switch strings.ToLower(kind) + ":" {
	case serviceAccountPrefix:
		ns, sa, ok := strings.Cut(name, "/")
		if !ok || !namespaceRE.MatchString(ns) || len(sa) > 253 || !subdomainRE.MatchString(sa) {
			return bad("is not serviceaccount:NAMESPACE/NAME")
		}
		return rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: sa}, nil
	case userPrefix, groupPrefix:
		sub := rbacv1.Subject{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: name}
		if strings.EqualFold(kind, "group") {
			sub.Kind = rbacv1.GroupKind
		}
		if !strict {
			return sub, nil
		}
		if why := badSubjectName(name); why != "" {
			return bad(why)
		}
		if strings.HasPrefix(name, "system:") {
			return bad("is one of Kubernetes' own identities (system:...); bind those by hand if at all, and write service accounts as serviceaccount:NAMESPACE/NAME")
		}
		return sub, nil
	}
	return bad("has kind " + quote(kind))
}

// badSubjectName says what is wrong with a user or group name, or "".
func badSubjectName(name string) string {
	switch {
	case len(name) > maxSubjectName:
		return fmt.Sprintf("is longer than %d bytes", maxSubjectName)
	case !utf8.ValidString(name):
		return "is not valid UTF-8"
	case strings.TrimSpace(name) != name:
		return "starts or ends with white space"
	}
	for _, r := range name {
		if r != ' ' && (unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || unicode.IsSpace(r)) {
			return fmt.Sprintf("contains %U, an invisible or control character", r)
		}
	}
	return ""
}

// principalOf spells a binding's subject the way gitgrant.yaml does; a
// service account without a namespace is in the binding's.
func principalOf(s rbacv1.Subject, bindingNamespace string) string {
	switch s.Kind {
	case rbacv1.UserKind:
		return userPrefix + s.Name
	case rbacv1.GroupKind:
		return groupPrefix + s.Name
	case rbacv1.ServiceAccountKind:
		ns := s.Namespace
		if ns == "" {
			ns = bindingNamespace
		}
		return serviceAccountPrefix + ns + "/" + s.Name
	}
	return strings.ToLower(s.Kind) + ":" + s.Name
}

// sameSubject says whether a binding's subject is sub.
func sameSubject(a rbacv1.Subject, bindingNamespace string, sub rbacv1.Subject) bool {
	return principalOf(a, bindingNamespace) == principalOf(sub, "")
}

// bindingName is the name of the binding that grants sub the role of
// provider: one binding per grant and scope, found again by name, so
// that a grant is an idempotent create. The hash keeps it short and
// valid whatever the principal is; the role name keeps it readable.
func bindingName(provider, role string, sub rbacv1.Subject) string {
	h := sha256.Sum256([]byte(provider + "\x00" + role + "\x00" + principalOf(sub, "")))
	readable := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			return r
		case r >= 'A' && r <= 'Z':
			return unicode.ToLower(r)
		}
		return '-'
	}, role)
	if len(readable) > 36 {
		readable = readable[:36]
	}
	return "gitgrant-" + strings.Trim(readable, "-") + "-" + hex.EncodeToString(h[:8])
}

// labelValue fits a name into a label value (63 characters at most),
// replacing the end of a longer one by a hash.
func labelValue(s string) string {
	if len(s) <= 63 {
		return s
	}
	h := sha256.Sum256([]byte(s))
	return strings.TrimRight(s[:40], "-_.") + "-" + hex.EncodeToString(h[:8])
}

// quote quotes a name for an error message, escaping what would hide.
func quote(s string) string {
	if len(s) > 80 {
		s = s[:80] + "..."
	}
	return fmt.Sprintf("%q", s)
}

package kubernetes

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/gitgrant/gitgrant/providers"
)

func TestParseTarget(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want target // zero: invalid
	}{
		{"ClusterRole/view", target{Kind: "ClusterRole", Name: "view"}},
		{"clusterrole/view", target{Kind: "ClusterRole", Name: "view"}},
		{"ClusterRole/view@team-b,team-a,team-b", target{Kind: "ClusterRole", Name: "view", Namespaces: []string{"team-a", "team-b"}}},
		{"ClusterRole/view@team-a, team-b", target{Kind: "ClusterRole", Name: "view", Namespaces: []string{"team-a", "team-b"}}},
		{"Role/pod-reader@payments", target{Kind: "Role", Name: "pod-reader", Namespaces: []string{"payments"}}},
		{"ClusterRole/system:aggregate-to-view", target{Kind: "ClusterRole", Name: "system:aggregate-to-view"}},
		{"Role/pod-reader", target{}}, // a Role lives in a namespace
		{"view", target{}},            // the kind is required
		{"view@team-a", target{}},
		{"Group/view", target{}},
		{"ClusterRole/", target{}},
		{"ClusterRole/view@", target{}},
		{"ClusterRole/view@Team-A", target{}},
		{"ClusterRole/view@team_a", target{}},
		{"ClusterRole/view@a,,b", target{}},
		{"ClusterRole/../secrets", target{}},
		{"ClusterRole/view/x", target{}},
		{"ClusterRole/view;rm", target{}},
		{"", target{}},
	}
	for _, tt := range tests {
		got, err := parseTarget(tt.in)
		if tt.want.Kind == "" {
			if !errors.Is(err, providers.ErrInvalidName) {
				t.Errorf("parseTarget(%q) = %+v, %v; want ErrInvalidName", tt.in, got, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseTarget(%q): %v", tt.in, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("parseTarget(%q) (-want +got):\n%s", tt.in, diff)
		}
	}
}

func TestParsePrincipal(t *testing.T) {
	t.Parallel()
	user := func(n string) rbacv1.Subject {
		return rbacv1.Subject{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: n}
	}
	group := func(n string) rbacv1.Subject {
		return rbacv1.Subject{APIGroup: rbacv1.GroupName, Kind: rbacv1.GroupKind, Name: n}
	}
	tests := []struct {
		in        string
		want      rbacv1.Subject
		canonical string
		lenient   bool // refused for a grant, accepted for a revoke
	}{
		{"user:alice", user("alice"), "user:alice", false},
		{"User:alice", user("alice"), "user:alice", false},
		{"user:alice@example.com", user("alice@example.com"), "user:alice@example.com", false},
		{"user:oidc:alice", user("oidc:alice"), "user:oidc:alice", false},
		{"group:Domain Admins", group("Domain Admins"), "group:Domain Admins", false},
		{"GROUP:sre", group("sre"), "group:sre", false},
		{"serviceaccount:ci/deployer", rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Namespace: "ci", Name: "deployer"}, "serviceaccount:ci/deployer", false},
		{"group:system:authenticated", group("system:authenticated"), "group:system:authenticated", true},
		{"user:system:anonymous", user("system:anonymous"), "user:system:anonymous", true},
		{"user:x\u202eevil", user("x\u202eevil"), "user:x\u202eevil", true},
		{"user:" + strings.Repeat("a", 513), user(strings.Repeat("a", 513)), "user:" + strings.Repeat("a", 513), true},
	}
	for _, tt := range tests {
		got, err := parsePrincipal(tt.in, false)
		if err != nil {
			t.Errorf("parsePrincipal(%q, lenient): %v", tt.in, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("parsePrincipal(%q) (-want +got):\n%s", tt.in, diff)
		}
		if c := principalOf(got, ""); c != tt.canonical {
			t.Errorf("principalOf(%q) = %q, want %q", tt.in, c, tt.canonical)
		}
		_, err = parsePrincipal(tt.in, true)
		if refused := errors.Is(err, providers.ErrInvalidName); refused != tt.lenient {
			t.Errorf("parsePrincipal(%q, strict): %v; want refused %v", tt.in, err, tt.lenient)
		}
	}
	for _, bad := range []string{"", "alice", "user:", "group:", "robot:x", "serviceaccount:ci", "serviceaccount:ci/", "serviceaccount:/x", "serviceaccount:CI/x", "serviceaccount:ci/x/y"} {
		if _, err := parsePrincipal(bad, false); !errors.Is(err, providers.ErrInvalidName) {
			t.Errorf("parsePrincipal(%q) = %v, want ErrInvalidName", bad, err)
		}
	}
}

// A service account without a namespace, on a RoleBinding, is in the
// binding's namespace.
func TestPrincipalOfServiceAccountWithoutNamespace(t *testing.T) {
	t.Parallel()
	s := rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: "robot"}
	if got := principalOf(s, "ci"); got != "serviceaccount:ci/robot" {
		t.Errorf("principalOf = %q", got)
	}
	want := rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Namespace: "ci", Name: "robot"}
	if !sameSubject(s, "ci", want) || sameSubject(s, "other", want) {
		t.Error("sameSubject does not place a namespace-less service account in its binding's namespace")
	}
}

func TestBindingNameAndLabels(t *testing.T) {
	t.Parallel()
	a := bindingName("prod", "viewer", rbacv1.Subject{Kind: rbacv1.UserKind, Name: "alice"})
	if a != bindingName("prod", "viewer", rbacv1.Subject{Kind: rbacv1.UserKind, Name: "alice"}) {
		t.Error("bindingName is not deterministic")
	}
	others := []string{
		bindingName("prod", "viewer", rbacv1.Subject{Kind: rbacv1.GroupKind, Name: "alice"}),
		bindingName("prod", "editor", rbacv1.Subject{Kind: rbacv1.UserKind, Name: "alice"}),
		bindingName("staging", "viewer", rbacv1.Subject{Kind: rbacv1.UserKind, Name: "alice"}),
	}
	for _, o := range others {
		if o == a {
			t.Errorf("two grants share the binding name %s", a)
		}
	}
	if !strings.HasPrefix(a, "gitgrant-viewer-") {
		t.Errorf("bindingName = %q, want it to start with gitgrant-viewer-", a)
	}
	long := bindingName("p", strings.Repeat("Role.Name_", 20), rbacv1.Subject{Kind: rbacv1.UserKind, Name: "x"})
	if len(long) > 63 || !namespaceRE.MatchString(long) {
		t.Errorf("bindingName of a long role = %q (%d), want a DNS label", long, len(long))
	}
	for _, s := range []string{"short", strings.Repeat("a", 63), strings.Repeat("a.", 40)} {
		v := labelValue(s)
		if len(v) > 63 || (len(s) <= 63 && v != s) {
			t.Errorf("labelValue(%q) = %q", s, v)
		}
	}
	if labelValue(strings.Repeat("a", 64)) == labelValue(strings.Repeat("a", 64)+"b") {
		t.Error("labelValue maps two long names to one value")
	}
}

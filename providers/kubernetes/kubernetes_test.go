package kubernetes

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	authzv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientset "k8s.io/client-go/kubernetes"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/yaml"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/testing/testenv/kube"
	"github.com/gitgrant/gitgrant/providers"
	"github.com/gitgrant/gitgrant/providers/providertest"
)

func TestMain(m *testing.M) { kube.Main(m) }

// world is one test's corner of the shared API server: namespaces of
// its own, a Role in the first, and a provider name no other test uses
// (the label that separates their bindings).
type world struct {
	srv      *kube.Server
	admin    *clientset.Clientset
	provider string
	ns       []string
}

func newWorld(t *testing.T, name string) world {
	t.Helper()
	srv := kube.APIServer(t)
	// The provider's name is the label that keeps each test's bindings
	// apart: name is unique per test, the suffix per run (-count=N shares
	// the server).
	suffix := make([]byte, 3)
	rand.Read(suffix)
	w := world{srv: srv, admin: srv.Admin(t), provider: name + "-" + hex.EncodeToString(suffix)}
	for _, p := range []string{"a", "b"} {
		w.ns = append(w.ns, srv.Namespace(t, name+"-"+p))
	}
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "pod-reader"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list"}}},
	}
	if _, err := w.admin.RbacV1().Roles(w.ns[0]).Create(context.Background(), role, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating Role pod-reader: %v", err)
	}
	return w
}

// config declares three roles, one of each kind of target.
func (w world) config() gitgrant.ProviderConfig {
	return gitgrant.ProviderConfig{
		Name: w.provider,
		Type: Type,
		Roles: map[string]gitgrant.RoleConfig{
			"viewer":     {Target: "ClusterRole/view@" + w.ns[0] + "," + w.ns[1]},
			"editor":     {Target: "ClusterRole/edit"},
			"pod-reader": {Target: "Role/pod-reader@" + w.ns[0]},
		},
		Settings: map[string]any{},
	}
}

// open opens the provider as the given kubeconfig user.
func (w world) open(t *testing.T, cfg gitgrant.ProviderConfig, user *clientcmdapi.AuthInfo) *Provider {
	t.Helper()
	cfg.Settings = maps.Clone(cfg.Settings)
	cfg.Settings["kubeconfig"] = w.srv.Kubeconfig(t, user)
	// The tests share one API server; the default pace would make the
	// concurrency test slow rather than prove more.
	cfg.Settings["requests_per_second"] = 500
	p, err := open(cfg, providers.DefaultDeps(), "/nonexistent")
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return p
}

// leastPrivileged returns a token of a service account that holds only
// the RBAC docs/providers/kubernetes.md tells people to give gitgrant:
// the provider's tests run as it, so the docs cannot ask for too little.
func (w world) leastPrivileged(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	var role rbacv1.ClusterRole
	if err := yaml.UnmarshalStrict(docsRBAC(t), &role); err != nil {
		t.Fatalf("the RBAC in docs/providers/kubernetes.md is not a ClusterRole: %v", err)
	}
	role.Name = w.provider + "-gitgrant"
	if _, err := w.admin.RbacV1().ClusterRoles().Create(ctx, &role, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating the documented ClusterRole: %v", err)
	}
	token := w.srv.ServiceAccountToken(t, w.ns[0], "gitgrant")
	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role.Name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: w.ns[0], Name: "gitgrant"}},
	}
	if _, err := w.admin.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil {
		t.Fatalf("binding the documented ClusterRole: %v", err)
	}
	user := "system:serviceaccount:" + w.ns[0] + ":gitgrant"
	if !kube.Settle(func() bool {
		return w.srv.Allowed(t, user, nil, authzv1.ResourceAttributes{Verb: "list", Group: rbacv1.GroupName, Resource: "clusterrolebindings"})
	}) {
		t.Fatal("the documented ClusterRole did not take effect within the authorizer's settling time")
	}
	return token
}

// docsRBAC is the ClusterRole in docs/providers/kubernetes.md: the YAML
// block after the <!-- least-privilege-rbac --> marker.
func docsRBAC(t *testing.T) []byte {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "providers", "kubernetes.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(doc), "<!-- least-privilege-rbac -->")
	if !ok {
		t.Fatal("docs/providers/kubernetes.md has no <!-- least-privilege-rbac --> marker")
	}
	_, block, ok := strings.Cut(after, "```yaml\n")
	if !ok {
		t.Fatal("no ```yaml block after the least-privilege-rbac marker")
	}
	block, _, _ = strings.Cut(block, "```")
	return []byte(block)
}

// principals are the conformance suite's: every kind of subject, names
// that OIDC produces, and enough of them for the concurrency test. They
// start with c- because the suite grants them edit cluster-wide, which
// other tests, running alongside, must not see.
func (w world) principals(t *testing.T) []string {
	t.Helper()
	out := []string{
		"user:c-alice", "user:c-bob", "User:c-carol", "group:c-developers", "group:oidc:c-sre team",
		"user:c-alice@example.com", "user:https://issuer.example.com#c-1234", "user:c-zoë",
		"serviceaccount:" + w.ns[0] + "/robot", "serviceaccount:" + w.ns[1] + "/robot",
	}
	for i := len(out); i < 20; i++ {
		out = append(out, fmt.Sprintf("user:c-person-%02d", i))
	}
	ctx := context.Background()
	for i, p := range out {
		if ns, name, ok := strings.Cut(strings.TrimPrefix(p, "serviceaccount:"), "/"); ok && strings.HasPrefix(p, "serviceaccount:") {
			sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}
			if _, err := w.admin.CoreV1().ServiceAccounts(ns).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
				t.Fatalf("creating service account %s: %v", p, err)
			}
		}
		// Members reports the canonical spelling.
		out[i] = strings.Replace(p, "User:", "user:", 1)
	}
	return out
}

func TestConformance(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "conformance")
	token := w.leastPrivileged(t)
	cfg := w.config()
	providertest.Run(t, providertest.Harness{
		Open:             func(t *testing.T) providers.Provider { return w.open(t, cfg, &clientcmdapi.AuthInfo{Token: token}) },
		Roles:            []string{"viewer", "editor", "pod-reader"},
		Principals:       w.principals(t),
		MissingPrincipal: "serviceaccount:" + w.ns[0] + "/nobody",
		HostileNames: []string{
			"user:", "group:", "serviceaccount:", "user:new\nline", "group:\u202eevil", "user:zero\u200bwidth",
			"user: leading", "user:trailing ", "user:" + strings.Repeat("x", 600),
			"user:system:anonymous", "group:system:authenticated", "group:system:masters", "user:system:serviceaccount:kube-system:default",
			"serviceaccount:" + w.ns[0], "serviceaccount:" + w.ns[0] + "/../x", "serviceaccount:Upper/x", "serviceaccount:/x",
			"robot:alice", "User", "alice",
		},
		OpenWithTarget: func(t *testing.T, target string) (providers.Provider, error) {
			c := w.config()
			c.Roles = map[string]gitgrant.RoleConfig{"hostile": {Target: target}}
			return w.open(t, c, &clientcmdapi.AuthInfo{Token: token}), nil
		},
		Down: func(t *testing.T) (providers.Provider, error) {
			c := w.config()
			c.Settings = map[string]any{"kubeconfig": kubeconfigFor(t, "https://127.0.0.1:1")}
			c.CallTimeout = 5 * time.Second
			return open(c, providers.DefaultDeps(), "/nonexistent")
		},
		Secrets: []string{token},
	})
}

// kubeconfigFor points at server, which is no test API server (a closed
// port, a listener that never answers), with a token.
func kubeconfigFor(t *testing.T, server string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kubeconfig")
	kc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: x, cluster: {server: %q, insecure-skip-tls-verify: true}}]
users: [{name: x, user: {token: not-a-real-token}}]
contexts: [{name: x, context: {cluster: x, user: x}}]
current-context: x
`, server)
	if err := os.WriteFile(path, []byte(kc), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestGrantTakesEffect asks the API server's own authorizer: after the
// grant alice may get pods in the role's namespaces (and only there),
// after the revoke she may not, both through a SubjectAccessReview and
// by acting as her (impersonation).
func TestGrantTakesEffect(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "effect")
	p := w.open(t, w.config(), &clientcmdapi.AuthInfo{Token: w.leastPrivileged(t)})
	ctx := t.Context()
	asAlice := w.srv.AdminConfig()
	asAlice.Impersonate.UserName = "effect-alice"
	alice, err := clientset.NewForConfig(asAlice)
	if err != nil {
		t.Fatal(err)
	}
	type can struct{ NS0, NS1, Elsewhere, ListAsAlice bool }
	observe := func() can {
		_, err := alice.CoreV1().Pods(w.ns[1]).List(ctx, metav1.ListOptions{})
		if err != nil && !apierrors.IsForbidden(err) {
			t.Fatalf("listing pods as alice: %v", err)
		}
		return can{
			NS0:         w.srv.Can(t, "effect-alice", nil, "get", "pods", w.ns[0]),
			NS1:         w.srv.Can(t, "effect-alice", nil, "get", "pods", w.ns[1]),
			Elsewhere:   w.srv.Can(t, "effect-alice", nil, "get", "pods", "default"),
			ListAsAlice: err == nil,
		}
	}
	if diff := cmp.Diff(can{}, observe()); diff != "" {
		t.Fatalf("before the grant (-want +got):\n%s", diff)
	}
	if err := p.Grant(ctx, providers.Grant{Role: "viewer", Principal: "user:effect-alice", Until: time.Now().Add(time.Hour)}); err != nil {
		t.Fatalf("Grant: %v", err)
	}
	want := can{NS0: true, NS1: true, ListAsAlice: true}
	kube.Settle(func() bool { return observe() == want })
	if diff := cmp.Diff(want, observe()); diff != "" {
		t.Errorf("after the grant (-want +got):\n%s", diff)
	}
	if err := p.Revoke(ctx, "viewer", "user:effect-alice"); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	kube.Settle(func() bool { return observe() == can{} })
	if diff := cmp.Diff(can{}, observe()); diff != "" {
		t.Errorf("after the revoke (-want +got):\n%s", diff)
	}

	// A group grant reaches its members, and only them.
	if err := p.Grant(ctx, providers.Grant{Role: "editor", Principal: "group:effect-sre"}); err != nil {
		t.Fatalf("Grant(group): %v", err)
	}
	if !kube.Settle(func() bool { return w.srv.Can(t, "dave", []string{"effect-sre"}, "create", "pods", "default") }) {
		t.Errorf("a member of effect-sre may not create pods after the group got edit cluster-wide")
	}
	if w.srv.Can(t, "erin", []string{"other"}, "create", "pods", "default") {
		t.Errorf("a non-member of effect-sre may create pods")
	}
	if err := p.Revoke(ctx, "editor", "group:effect-sre"); err != nil {
		t.Fatalf("Revoke(group): %v", err)
	}
	if !kube.Settle(func() bool { return !w.srv.Can(t, "dave", []string{"effect-sre"}, "create", "pods", "default") }) {
		t.Errorf("a member of effect-sre may still create pods after the revoke")
	}
}

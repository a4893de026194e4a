package kubernetes

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/testing/testenv/kube"
	"github.com/gitgrant/gitgrant/providers"
	"github.com/gitgrant/gitgrant/providers/providertest"
)

func members(t *testing.T, p *Provider, role string) []string {
	t.Helper()
	ms, err := p.Members(t.Context(), role)
	if err != nil {
		t.Fatalf("Members(%s): %v", role, err)
	}
	out := []string{}
	for _, m := range ms {
		if !m.Until.IsZero() {
			t.Errorf("Members reports Until %v for %s; RBAC has no expiry", m.Until, m.Principal)
		}
		out = append(out, m.Principal)
	}
	return out
}

func (w world) roleBindings(t *testing.T, ns, selector string) []rbacv1.RoleBinding {
	t.Helper()
	l, err := w.admin.RbacV1().RoleBindings(ns).List(t.Context(), metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		t.Fatal(err)
	}
	return l.Items
}

// TestBindingsCarryTheGrant: labels for listing, annotations for people,
// updated on a new grant of the same membership.
func TestBindingsCarryTheGrant(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "annotations")
	p := w.open(t, w.config(), &clientcmdapi.AuthInfo{Token: w.leastPrivileged(t)})
	ctx := t.Context()
	until := time.Date(2031, 3, 4, 5, 6, 7, 0, time.UTC)
	g := providers.Grant{Role: "viewer", Principal: "user:alice", Until: until, Request: "requests/prod/alice-viewer.yaml"}
	if err := p.Grant(ctx, g); err != nil {
		t.Fatal(err)
	}
	selector := "app.kubernetes.io/managed-by=gitgrant,gitgrant.io/provider=" + w.provider + ",gitgrant.io/role=viewer"
	for _, ns := range w.ns {
		rbs := w.roleBindings(t, ns, selector)
		if len(rbs) != 1 {
			t.Fatalf("%d managed RoleBindings in %s, want 1", len(rbs), ns)
		}
		rb := rbs[0]
		want := map[string]string{AnnotationPrincipal: "user:alice", AnnotationUntil: "2031-03-04T05:06:07Z", AnnotationRequest: g.Request}
		if diff := cmp.Diff(want, rb.Annotations); diff != "" {
			t.Errorf("annotations in %s (-want +got):\n%s", ns, diff)
		}
		wantRef := rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "view"}
		if rb.RoleRef != wantRef || len(rb.Subjects) != 1 || rb.Subjects[0].Name != "alice" || rb.Subjects[0].Kind != rbacv1.UserKind {
			t.Errorf("RoleBinding %s/%s = roleRef %+v subjects %+v", ns, rb.Name, rb.RoleRef, rb.Subjects)
		}
	}
	// A later window moves the annotation; a standing grant drops it.
	g.Until = until.Add(24 * time.Hour)
	if err := p.Grant(ctx, g); err != nil {
		t.Fatal(err)
	}
	if got := w.roleBindings(t, w.ns[1], selector)[0].Annotations[AnnotationUntil]; got != "2031-03-05T05:06:07Z" {
		t.Errorf("until after an extension = %q", got)
	}
	if err := p.Grant(ctx, providers.Grant{Role: "viewer", Principal: "user:alice"}); err != nil {
		t.Fatal(err)
	}
	if got, ok := w.roleBindings(t, w.ns[1], selector)[0].Annotations[AnnotationUntil]; ok {
		t.Errorf("a standing grant keeps until %q", got)
	}
}

// TestDrift: a subject added by hand to a managed binding, or a binding
// someone made with gitgrant's labels, is a member; revoking it leaves
// the grant it shares a binding with. A binding without the labels is
// not gitgrant's: invisible to Members, never changed.
func TestDrift(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "drift")
	p := w.open(t, w.config(), &clientcmdapi.AuthInfo{Token: w.leastPrivileged(t)})
	ctx := t.Context()
	if err := p.Grant(ctx, providers.Grant{Role: "pod-reader", Principal: "user:alice", Until: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	rbs := w.admin.RbacV1().RoleBindings(w.ns[0])
	managed := w.roleBindings(t, w.ns[0], "gitgrant.io/provider="+w.provider)[0]
	managed.Subjects = append(managed.Subjects, rbacv1.Subject{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: "mallory"})
	if _, err := rbs.Update(ctx, &managed, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	forged := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "looks-managed", Labels: p.labels("pod-reader")},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "pod-reader"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "sneaky"}},
	}
	unmanaged := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "hand-made"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "pod-reader"},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: "bob"}},
	}
	for _, rb := range []*rbacv1.RoleBinding{forged, unmanaged} {
		if _, err := rbs.Create(ctx, rb, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"serviceaccount:" + w.ns[0] + "/sneaky", "user:alice", "user:mallory"}
	if diff := cmp.Diff(want, members(t, p, "pod-reader")); diff != "" {
		t.Fatalf("members with drift (-want +got):\n%s", diff)
	}
	for _, drift := range []string{"user:mallory", "serviceaccount:" + w.ns[0] + "/sneaky"} {
		if err := p.Revoke(ctx, "pod-reader", drift); err != nil {
			t.Fatalf("Revoke(%s): %v", drift, err)
		}
	}
	if diff := cmp.Diff([]string{"user:alice"}, members(t, p, "pod-reader")); diff != "" {
		t.Errorf("members after revoking the drift (-want +got):\n%s", diff)
	}
	if _, err := rbs.Get(ctx, forged.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the forged binding left without subjects still exists (err %v)", err)
	}
	if !kube.Settle(func() bool { return w.srv.Can(t, "alice", nil, "get", "pods", w.ns[0]) }) {
		t.Error("revoking the drift took alice's grant too")
	}
	if !kube.Settle(func() bool { return w.srv.Can(t, "bob", nil, "get", "pods", w.ns[0]) }) {
		t.Error("the hand-made binding without gitgrant's labels was changed")
	}
	// Revoking bob through gitgrant does not touch what it does not own.
	if err := p.Revoke(ctx, "pod-reader", "user:bob"); err != nil {
		t.Fatal(err)
	}
	if !w.srv.Can(t, "bob", nil, "get", "pods", w.ns[0]) {
		t.Error("Revoke removed a subject from a binding gitgrant does not manage")
	}
}

// TestNotOurBinding: a binding with the name gitgrant would use but
// without its labels makes the grant fail; it is never taken over.
func TestNotOurBinding(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "squatter")
	p := w.open(t, w.config(), &clientcmdapi.AuthInfo{Token: w.leastPrivileged(t)})
	ctx := t.Context()
	sub, _ := parsePrincipal("user:alice", true)
	squat := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: bindingName(w.provider, "pod-reader", sub)},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "edit"},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: "eve"}},
	}
	if _, err := w.admin.RbacV1().RoleBindings(w.ns[0]).Create(ctx, squat, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	err := p.Grant(ctx, providers.Grant{Role: "pod-reader", Principal: "user:alice"})
	if err == nil || !strings.Contains(err.Error(), "not managed by gitgrant") {
		t.Fatalf("Grant over a binding that is not gitgrant's: %v, want a refusal", err)
	}
	got, err := w.admin.RbacV1().RoleBindings(w.ns[0]).Get(ctx, squat.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(squat.Subjects, got.Subjects); diff != "" || got.RoleRef != squat.RoleRef {
		t.Errorf("the binding that is not gitgrant's changed (-want +got):\n%s", diff)
	}
}

// TestTargetChanged: after a role's target changes, its old bindings are
// still members (found by label), a new grant replaces the roleRef
// (which a binding cannot change), and a revoke finds old bindings in
// namespaces the target no longer names.
func TestTargetChanged(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "retarget")
	token := w.leastPrivileged(t)
	ctx := t.Context()
	before := w.open(t, w.config(), &clientcmdapi.AuthInfo{Token: token})
	for _, who := range []string{"user:alice", "user:bob"} {
		if err := before.Grant(ctx, providers.Grant{Role: "viewer", Principal: who}); err != nil {
			t.Fatal(err)
		}
	}
	cfg := w.config()
	cfg.Roles["viewer"] = gitgrant.RoleConfig{Target: "ClusterRole/edit@" + w.ns[0]}
	after := w.open(t, cfg, &clientcmdapi.AuthInfo{Token: token})
	if diff := cmp.Diff([]string{"user:alice", "user:bob"}, members(t, after, "viewer")); diff != "" {
		t.Fatalf("members after the target changed (-want +got):\n%s", diff)
	}
	if err := after.Grant(ctx, providers.Grant{Role: "viewer", Principal: "user:alice"}); err != nil {
		t.Fatal(err)
	}
	if !kube.Settle(func() bool { return w.srv.Can(t, "alice", nil, "create", "pods", w.ns[0]) }) {
		t.Error("after the new grant alice lacks edit in the target's namespace")
	}
	for _, who := range []string{"user:alice", "user:bob"} {
		if err := after.Revoke(ctx, "viewer", who); err != nil {
			t.Fatal(err)
		}
	}
	for _, ns := range w.ns {
		if rbs := w.roleBindings(t, ns, "gitgrant.io/provider="+w.provider); len(rbs) != 0 {
			t.Errorf("managed RoleBindings left in %s: %v", ns, rbs)
		}
		for _, who := range []string{"alice", "bob"} {
			if !kube.Settle(func() bool { return !w.srv.Can(t, who, nil, "get", "pods", ns) }) {
				t.Errorf("%s may still get pods in %s", who, ns)
			}
		}
	}
}

// TestHalfGrantIsUndone: a target with a namespace that does not exist
// fails the grant as "not found", and the binding made in the namespace
// that does exist is removed again.
func TestHalfGrantIsUndone(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "half")
	cfg := w.config()
	cfg.Roles["viewer"] = gitgrant.RoleConfig{Target: "ClusterRole/view@" + w.ns[0] + ",zz-no-such-namespace"}
	p := w.open(t, cfg, &clientcmdapi.AuthInfo{Token: w.leastPrivileged(t)})
	err := p.Grant(t.Context(), providers.Grant{Role: "viewer", Principal: "user:alice"})
	if !errors.Is(err, providers.ErrNotFound) || !strings.Contains(err.Error(), "zz-no-such-namespace") {
		t.Fatalf("Grant with a missing namespace: %v, want ErrNotFound naming it", err)
	}
	if got := members(t, p, "viewer"); len(got) != 0 {
		t.Errorf("members after a failed grant: %v", got)
	}
	if !kube.Settle(func() bool { return !w.srv.Can(t, "alice", nil, "get", "pods", w.ns[0]) }) {
		t.Error("a failed grant left alice access in the namespace that exists")
	}
}

// TestRoleMissing: a ClusterRole that does not exist is "not found"
// before anything is bound, and Check says so.
func TestRoleMissing(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "norole")
	cfg := w.config()
	cfg.Roles["viewer"] = gitgrant.RoleConfig{Target: "ClusterRole/no-such-role@" + w.ns[0]}
	p := w.open(t, cfg, &clientcmdapi.AuthInfo{Token: w.srv.AdminToken})
	err := p.Grant(t.Context(), providers.Grant{Role: "viewer", Principal: "user:alice"})
	if !errors.Is(err, providers.ErrNotFound) {
		t.Errorf("Grant of a missing ClusterRole: %v, want ErrNotFound", err)
	}
	if err := p.Check(t.Context()); err == nil || !strings.Contains(err.Error(), "no-such-role") {
		t.Errorf("Check = %v, want it to name the missing ClusterRole", err)
	}
}

// TestCheckNamesMissingPermissions: a service account without the
// documented RBAC fails Check, which says what to grant.
func TestCheckNamesMissingPermissions(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "noperm")
	p := w.open(t, w.config(), &clientcmdapi.AuthInfo{Token: w.srv.ServiceAccountToken(t, w.ns[0], "powerless")})
	err := p.Check(t.Context())
	for _, want := range []string{"may not list rolebindings cluster-wide", "may not bind clusterroles view in namespace " + w.ns[0], "may not get, create, update, delete clusterrolebindings cluster-wide"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Check = %v, want it to say %q", err, want)
		}
	}
	var sys *gitgrant.SystemError
	if err := p.Grant(t.Context(), providers.Grant{Role: "editor", Principal: "user:alice"}); !errors.As(err, &sys) || sys.Retryable {
		t.Errorf("Grant without permission: %v, want a non-retryable system error", err)
	}
}

// TestCallDeadline: an API server that accepts connections and never
// answers costs a call its context's deadline, and the error is a
// retryable system error.
func TestCallDeadline(t *testing.T) {
	t.Parallel()
	cfg := gitgrant.ProviderConfig{Name: "hung", Type: Type, Roles: map[string]gitgrant.RoleConfig{"viewer": {Target: "ClusterRole/view"}},
		Settings: map[string]any{"kubeconfig": kubeconfigFor(t, "https://"+providertest.HungServer(t))}}
	p, err := open(cfg, providers.DefaultDeps(), "/nonexistent")
	if err != nil {
		t.Fatal(err)
	}
	providertest.CheckHungCall(t, 500*time.Millisecond, func(ctx context.Context) error {
		_, err := p.Members(ctx, "viewer")
		return err
	})
}

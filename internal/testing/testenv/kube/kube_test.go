package kube

import (
	"context"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

func TestMain(m *testing.M) { Main(m) }

// TestAPIServer checks what the provider's tests rely on: RBAC decides
// (nobody but the administrator may do anything by default), a binding
// takes effect at once, and service-account tokens authenticate.
func TestAPIServer(t *testing.T) {
	t.Parallel()
	start := time.Now()
	srv := APIServer(t)
	t.Logf("test API server %s ready after %s", Version, time.Since(start).Round(time.Millisecond))
	ctx := context.Background()
	admin := srv.Admin(t)
	ver, err := admin.Discovery().ServerVersion()
	if err != nil {
		t.Fatalf("server version: %v", err)
	}
	if ver.GitVersion != Version {
		t.Errorf("server version = %s, want %s (build/go.mod and Version disagree)", ver.GitVersion, Version)
	}

	ns := srv.Namespace(t, "testenv")
	if srv.Can(t, "alice", nil, "get", "pods", ns) {
		t.Fatalf("alice may get pods in %s without any binding: RBAC is not deciding", ns)
	}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "alice-view"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "view"},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: "alice"}},
	}
	if _, err := admin.RbacV1().RoleBindings(ns).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
		t.Fatalf("binding view to alice: %v", err)
	}
	if !Settle(func() bool { return srv.Can(t, "alice", nil, "get", "pods", ns) }) {
		t.Errorf("alice may not get pods in %s after a RoleBinding to view", ns)
	}
	if srv.Can(t, "alice", nil, "get", "pods", "default") {
		t.Errorf("alice may get pods in default: the binding leaked out of %s", ns)
	}

	robot := clientFor(t, srv, srv.ServiceAccountToken(t, ns, "robot"))
	if _, err := robot.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("service account without a binding lists pods: err = %v, want Forbidden", err)
	}
	stranger := clientFor(t, srv, "not-a-token")
	if _, err := stranger.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{}); !apierrors.IsUnauthorized(err) {
		t.Errorf("a made-up token lists pods: err = %v, want Unauthorized", err)
	}
}

func clientFor(t *testing.T, srv *Server, token string) *kubernetes.Clientset {
	t.Helper()
	c, err := kubernetes.NewForConfig(srv.Config(token))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

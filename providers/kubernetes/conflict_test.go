package kubernetes

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientset "k8s.io/client-go/kubernetes"

	"github.com/gitgrant/gitgrant/providers"
)

// interloper changes a binding behind the provider's back, once, just
// before the provider's first request with the given method reaches the
// server: the provider's write then carries a resourceVersion that is no
// longer current, exactly as when another writer is faster.
type interloper struct {
	next   http.RoundTripper
	method string
	change func()
	once   sync.Once
	fired  bool
}

func (i *interloper) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == i.method && strings.Contains(r.URL.Path, "/rolebindings/") {
		i.once.Do(func() { i.change(); i.fired = true })
	}
	return i.next.RoundTrip(r)
}

// TestConflictingWriter: a write that loses to another writer is read
// again and retried; the other writer's change survives, and a delete
// never removes a binding that gained a subject in between.
func TestConflictingWriter(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "conflict")
	ctx := t.Context()
	cfg := w.config()
	rbs := w.admin.RbacV1().RoleBindings(w.ns[0])
	withInterloper := func(method string, change func()) (*Provider, *interloper) {
		rc := w.srv.AdminConfig()
		il := &interloper{method: method, change: change}
		rc.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { il.next = rt; return il }
		c, err := clientset.NewForConfig(rc)
		if err != nil {
			t.Fatal(err)
		}
		return newProvider(cfg, c), il
	}
	plain, _ := withInterloper("NONE", nil)
	if err := plain.Grant(ctx, providers.Grant{Role: "pod-reader", Principal: "user:alice", Until: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	sub, _ := parsePrincipal("user:alice", true)
	name := bindingName(cfg.Name, "pod-reader", sub)
	edit := func(f func(*rbacv1.RoleBinding)) func() {
		return func() {
			rb, err := rbs.Get(context.Background(), name, metav1.GetOptions{})
			if err != nil {
				t.Errorf("interloper: %v", err)
				return
			}
			f(rb)
			if _, err := rbs.Update(context.Background(), rb, metav1.UpdateOptions{}); err != nil {
				t.Errorf("interloper: %v", err)
			}
		}
	}

	// An extension whose update conflicts with someone's annotation.
	p, il := withInterloper(http.MethodPut, edit(func(rb *rbacv1.RoleBinding) { rb.Annotations["example.com/ticket"] = "INC-1" }))
	until := time.Date(2031, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := p.Grant(ctx, providers.Grant{Role: "pod-reader", Principal: "user:alice", Until: until}); err != nil {
		t.Fatalf("Grant after a conflict: %v", err)
	}
	rb, err := rbs.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !il.fired || rb.Annotations[AnnotationUntil] != "2031-01-02T03:04:05Z" || rb.Annotations["example.com/ticket"] != "INC-1" {
		t.Errorf("after a conflicting update: fired %v, annotations %v; want both writers' changes", il.fired, rb.Annotations)
	}

	// A revoke whose delete conflicts with a subject added meanwhile: the
	// binding stays, with only the newcomer.
	carol := rbacv1.Subject{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: "carol"}
	p, il = withInterloper(http.MethodDelete, edit(func(rb *rbacv1.RoleBinding) { rb.Subjects = append(rb.Subjects, carol) }))
	if err := p.Revoke(ctx, "pod-reader", "user:alice"); err != nil {
		t.Fatalf("Revoke after a conflict: %v", err)
	}
	rb, err = rbs.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the binding that gained a subject during the revoke is gone: %v", err)
	}
	if diff := cmp.Diff([]rbacv1.Subject{carol}, rb.Subjects); diff != "" || !il.fired {
		t.Errorf("subjects after a conflicting revoke (fired %v) (-want +got):\n%s", il.fired, diff)
	}
}

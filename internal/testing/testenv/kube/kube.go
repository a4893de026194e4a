// Package kube starts a real Kubernetes API server for integration tests:
// kube-apiserver with etcd, both on loopback, with RBAC authorization on.
// No kubelet, scheduler or controller manager runs: RBAC objects, service
// accounts, TokenRequest, SubjectAccessReview and impersonation work
// without them, and that is what gitgrant needs.
//
// The binaries are built from the Go module proxy on first use and cached
// (see EnsureBinaries). Without a go command or the proxy the tests skip
// with a loud reason locally and fail under CI=true, like every server of
// internal/testing/testenv.
//
// The server is started once per test binary and shared by its tests,
// which therefore work in namespaces of their own (Server.Namespace).
// Packages that use it end with
//
//	func TestMain(m *testing.M) { kube.Main(m) }
//
// so that the server is stopped and its directory removed after the last
// test. Should the test binary die first, both processes get SIGKILL from
// the kernel (Pdeathsig).
package kube

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sync"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/gitgrant/gitgrant/internal/testing/testenv"
)

// Server is the running test API server. Its credentials are random per
// run and never printed.
type Server struct {
	// URL is https://127.0.0.1:<port>.
	URL string
	// CAData is the PEM of the CA that signed the serving certificate
	// (made for this run, for 127.0.0.1 and localhost).
	CAData []byte
	// AdminUser is the user AdminToken authenticates, a member of
	// system:masters.
	AdminUser  string
	AdminToken string
}

// Config returns a client configuration that authenticates with token.
func (s *Server) Config(token string) *rest.Config {
	return &rest.Config{
		Host:            s.URL,
		BearerToken:     token,
		TLSClientConfig: rest.TLSClientConfig{CAData: s.CAData},
		Timeout:         30 * time.Second,
		QPS:             200,
		Burst:           400,
	}
}

// AdminConfig returns a client configuration of a cluster administrator.
func (s *Server) AdminConfig() *rest.Config { return s.Config(s.AdminToken) }

// Admin returns a client of a cluster administrator.
func (s *Server) Admin(t testing.TB) *kubernetes.Clientset {
	t.Helper()
	c, err := kubernetes.NewForConfig(s.AdminConfig())
	if err != nil {
		t.Fatalf("admin client: %v", err)
	}
	return c
}

// Kubeconfig writes a kubeconfig file whose current context reaches the
// server as user (a token, a client certificate or an exec plugin), and
// returns its path.
func (s *Server) Kubeconfig(t testing.TB, user *clientcmdapi.AuthInfo) string {
	t.Helper()
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["test"] = &clientcmdapi.Cluster{Server: s.URL, CertificateAuthorityData: s.CAData}
	cfg.AuthInfos["test"] = user
	cfg.Contexts["test"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: "test"}
	cfg.CurrentContext = "test"
	path := t.TempDir() + "/kubeconfig"
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatalf("writing a kubeconfig: %v", err)
	}
	return path
}

// Namespace creates a namespace named prefix-<random> and returns its
// name. Nothing deletes namespaces here (there is no namespace
// controller); they go with the server.
func (s *Server) Namespace(t testing.TB, prefix string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: prefix + "-" + randomHex(4)}}
	if _, err := s.Admin(t).CoreV1().Namespaces().Create(context.Background(), ns, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating namespace %s: %v", ns.Name, err)
	}
	return ns.Name
}

// ServiceAccountToken creates the service account namespace/name unless
// it exists and returns a token for it, valid for an hour.
func (s *Server) ServiceAccountToken(t testing.TB, namespace, name string) string {
	t.Helper()
	ctx := context.Background()
	sas := s.Admin(t).CoreV1().ServiceAccounts(namespace)
	_, err := sas.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("creating service account %s/%s: %v", namespace, name, err)
	}
	seconds := int64(3600)
	tr, err := sas.CreateToken(ctx, name, &authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{ExpirationSeconds: &seconds}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("requesting a token for %s/%s: %v", namespace, name, err)
	}
	return tr.Status.Token
}

// Can asks the server's authorizer (a SubjectAccessReview) whether user,
// member of groups, may do verb on resource (core group) in namespace
// ("" for cluster-wide).
func (s *Server) Can(t testing.TB, user string, groups []string, verb, resource, namespace string) bool {
	t.Helper()
	return s.Allowed(t, user, groups, authzv1.ResourceAttributes{Verb: verb, Resource: resource, Namespace: namespace})
}

// Allowed asks the server's authorizer whether user, member of groups,
// may do what attrs describe.
func (s *Server) Allowed(t testing.TB, user string, groups []string, attrs authzv1.ResourceAttributes) bool {
	t.Helper()
	sar := &authzv1.SubjectAccessReview{Spec: authzv1.SubjectAccessReviewSpec{User: user, Groups: groups, ResourceAttributes: &attrs}}
	got, err := s.Admin(t).AuthorizationV1().SubjectAccessReviews().Create(context.Background(), sar, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("SubjectAccessReview: %v", err)
	}
	return got.Status.Allowed
}

// Settle polls cond until it returns true or ten seconds pass, and
// reports whether it did. The authorizer learns of RBAC changes through a
// watch, a moment after the write: ask whether someone may do something
// through Settle, for the answer after a grant and after a revoke alike.
func Settle(cond func() bool) bool {
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}

var once struct {
	sync.Once
	srv  *Server
	proc *cluster
	err  error
}

// APIServer returns the test binary's API server, starting it on first
// use. When the binaries cannot be built it skips the test locally and
// fails it under CI=true; a server that was built but does not start
// always fails the test.
func APIServer(t testing.TB) *Server {
	t.Helper()
	once.Do(func() {
		var bins Binaries
		bins, once.err = EnsureBinaries()
		if once.err == nil {
			once.srv, once.proc, once.err = start(bins)
		}
	})
	if once.err != nil {
		var missing *errCannotBuild
		if errors.As(once.err, &missing) {
			testenv.Unavailable(t, "kube-apiserver "+Version+" and etcd",
				"they are built from the Go module proxy into the Go cache on first use (.ci/run does it first); check that `go build` works in internal/testing/testenv/kube/build, or set GITGRANT_TEST_KUBE_APISERVER and GITGRANT_TEST_ETCD", once.err)
		}
		t.Fatalf("starting the test API server: %v", once.err)
	}
	return once.srv
}

// Main runs the package's tests, then stops the API server that
// APIServer started (if any) and removes its directory. Call it from
// TestMain.
func Main(m *testing.M) {
	testenv.RunThenStop(m, "testenv/kube: stopping the test API server", func() error {
		if p := once.proc; p != nil {
			return p.stop()
		}
		return nil
	})
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

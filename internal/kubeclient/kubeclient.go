// Package kubeclient finds how to reach a Kubernetes API server: a
// kubeconfig file, or the service account of the pod gitgrant runs in.
// The kubernetes provider and serve's leader election share it, so that
// both read a kubeconfig and a pod's credentials the same way.
package kubeclient

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// ServiceAccountDir is where Kubernetes mounts a pod's service account
// token, the cluster's CA and the pod's namespace.
const ServiceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount"

// ErrNotInPod: the variables Kubernetes sets in every container are not
// there.
var ErrNotInPod = errors.New("KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set: gitgrant is not running in a pod")

// InPod reports whether the variables Kubernetes sets in every container
// are there.
func InPod(getenv func(string) string) bool {
	return getenv("KUBERNETES_SERVICE_HOST") != "" && getenv("KUBERNETES_SERVICE_PORT") != ""
}

// InCluster is the pod's own service account: the API server's service
// address, the token and CA mounted in saDir. client-go reads the token
// file again as the kubelet rotates it.
func InCluster(getenv func(string) string, saDir string) (*rest.Config, error) {
	if !InPod(getenv) {
		return nil, ErrNotInPod
	}
	host := net.JoinHostPort(getenv("KUBERNETES_SERVICE_HOST"), getenv("KUBERNETES_SERVICE_PORT"))
	return &rest.Config{
		Host:            "https://" + host,
		BearerTokenFile: filepath.Join(saDir, "token"),
		TLSClientConfig: rest.TLSClientConfig{CAFile: filepath.Join(saDir, "ca.crt")},
	}, nil
}

// FromKubeconfig reads the kubeconfig file at path, in context (empty:
// the file's current context). Its user may authenticate with a client
// certificate, a token or an exec credential plugin (aws eks get-token,
// kubelogin). Errors name the file and the context, never a credential.
func FromKubeconfig(path, context string) (*rest.Config, error) {
	rules := &clientcmd.ClientConfigLoadingRules{ExplicitPath: path}
	return load(rules, context)
}

// Resolve is how a command finds its cluster: the kubeconfig named
// explicitly; else, in a pod, the pod's service account (in saDir); else
// $KUBECONFIG (a list of files, as kubectl reads it), else
// $HOME/.kube/config. what says which it was, for a log line.
func Resolve(kubeconfig string, getenv func(string) string, saDir string) (cfg *rest.Config, what string, err error) {
	if kubeconfig != "" {
		cfg, err = FromKubeconfig(kubeconfig, "")
		return cfg, "kubeconfig " + kubeconfig, err
	}
	if InPod(getenv) {
		cfg, err = InCluster(getenv, saDir)
		return cfg, "the pod's service account", err
	}
	files := filepath.SplitList(getenv("KUBECONFIG"))
	what = "$KUBECONFIG " + strings.Join(files, string(filepath.ListSeparator))
	if len(files) == 0 {
		home := getenv("HOME")
		if home == "" {
			home, _ = os.UserHomeDir()
		}
		files = []string{filepath.Join(home, clientcmd.RecommendedHomeDir, clientcmd.RecommendedFileName)}
		what = "kubeconfig " + files[0]
	}
	cfg, err = load(&clientcmd.ClientConfigLoadingRules{Precedence: files}, "")
	if err != nil && clientcmd.IsEmptyConfig(err) {
		err = fmt.Errorf("no Kubernetes configuration: not in a pod, and %s has none (name a kubeconfig file)", what)
	}
	return cfg, what, err
}

func load(rules *clientcmd.ClientConfigLoadingRules, context string) (*rest.Config, error) {
	overrides := &clientcmd.ConfigOverrides{CurrentContext: context}
	return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides).ClientConfig()
}

// Namespace is the namespace of the pod gitgrant runs in, as mounted in
// saDir; "" when there is none (not in a pod, or no token mounted).
func Namespace(saDir string) string {
	b, err := os.ReadFile(filepath.Join(saDir, "namespace"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

package kubernetes

import (
	"fmt"

	"k8s.io/client-go/rest"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/kubeclient"
	"github.com/gitgrant/gitgrant/providers"
)

// serviceAccountDir is where Kubernetes mounts a pod's service account
// token and the cluster's CA.
const serviceAccountDir = kubeclient.ServiceAccountDir

// defaultRequestsPerSecond paces the provider's API calls: high enough
// for a pass over many grants, low enough to stay a polite client of the
// API server's priority and fairness.
const defaultRequestsPerSecond = 20

// Settings are a kubernetes provider entry's settings in gitgrant.yaml, as
// kubernetes.schema.json beside this file describes them.
type Settings struct {
	Kubeconfig string `json:"kubeconfig"`
	Context    string `json:"context"`
	InCluster  bool   `json:"in_cluster"`
	// RequestsPerSecond is nil when unset, so that 0 is refused, not
	// taken for the default.
	RequestsPerSecond *int `json:"requests_per_second"`
}

// restConfig builds the client configuration the settings ask for:
// a kubeconfig file (whose user may authenticate with a client
// certificate, a token or an exec credential plugin such as
// `aws eks get-token` or kubelogin), or the pod's own service account
// (in_cluster). saDir is where in-cluster credentials are read.
func restConfig(cfg gitgrant.ProviderConfig, s Settings, deps providers.Deps, saDir string) (*rest.Config, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("provider %s: %s", cfg.Name, fmt.Sprintf(format, args...))
	}
	rps := defaultRequestsPerSecond
	if s.RequestsPerSecond != nil {
		if rps = *s.RequestsPerSecond; rps < 1 {
			return nil, bad("requests_per_second must be a whole number of 1 or more")
		}
	}
	path, inCluster := s.Kubeconfig, s.InCluster
	var rc *rest.Config
	switch {
	case path != "" && inCluster:
		return nil, bad("set either kubeconfig or in_cluster: true, not both")
	case path != "":
		c, err := kubeclient.FromKubeconfig(path, s.Context)
		if err != nil {
			// clientcmd names the file and the context, never a credential.
			return nil, bad("kubeconfig %s: %v", path, err)
		}
		rc = c
	case inCluster:
		if s.Context != "" {
			return nil, bad("context only applies to a kubeconfig; remove it or set kubeconfig")
		}
		c, err := kubeclient.InCluster(deps.Getenv, saDir)
		if err != nil {
			return nil, bad("in_cluster: true, but %v (set kubeconfig instead)", err)
		}
		rc = c
	default:
		return nil, bad("set kubeconfig (a kubeconfig file) or in_cluster: true (the pod's service account)")
	}
	rc.QPS, rc.Burst = float32(rps), 2*rps
	// A backstop per HTTP request; each call also has its context's
	// deadline (call_timeout).
	rc.Timeout = cfg.Timeout()
	rc.UserAgent = "gitgrant"
	return rc, nil
}

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

// restConfig builds the client configuration the settings ask for:
// a kubeconfig file (whose user may authenticate with a client
// certificate, a token or an exec credential plugin such as
// `aws eks get-token` or kubelogin), or the pod's own service account
// (in_cluster). saDir is where in-cluster credentials are read.
func restConfig(cfg gitgrant.ProviderConfig, deps providers.Deps, saDir string) (*rest.Config, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("provider %s: %s", cfg.Name, fmt.Sprintf(format, args...))
	}
	rps := defaultRequestsPerSecond
	if v, ok := cfg.Settings["requests_per_second"]; ok {
		n, ok := v.(int)
		if f, isFloat := v.(float64); isFloat && f == float64(int(f)) {
			n, ok = int(f), true
		}
		if !ok || n < 1 {
			return nil, bad("requests_per_second must be a whole number of 1 or more")
		}
		rps = n
	}
	path := providers.String(cfg, "kubeconfig", "")
	inCluster := providers.Bool(cfg, "in_cluster", false)
	var rc *rest.Config
	switch {
	case path != "" && inCluster:
		return nil, bad("set either kubeconfig or in_cluster: true, not both")
	case path != "":
		c, err := kubeclient.FromKubeconfig(path, providers.String(cfg, "context", ""))
		if err != nil {
			// clientcmd names the file and the context, never a credential.
			return nil, bad("kubeconfig %s: %v", path, err)
		}
		rc = c
	case inCluster:
		if providers.String(cfg, "context", "") != "" {
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

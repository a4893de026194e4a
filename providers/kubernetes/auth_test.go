package kubernetes

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/providers"
	"github.com/gitgrant/gitgrant/schema"
)

// TestAuthentication: each way to authenticate reaches the server as
// the service account that holds the documented RBAC, and Check passes.
func TestAuthentication(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "auth")
	token := w.leastPrivileged(t)

	// An exec credential plugin, as aws eks get-token or kubelogin are:
	// a program that prints an ExecCredential.
	plugin := filepath.Join(t.TempDir(), "credential-plugin")
	script := fmt.Sprintf("#!/bin/sh\ncat <<'EOF'\n{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\"status\":{\"token\":%q}}\nEOF\n", token)
	if err := os.WriteFile(plugin, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	execUser := &clientcmdapi.AuthInfo{Exec: &clientcmdapi.ExecConfig{
		APIVersion:      "client.authentication.k8s.io/v1",
		Command:         plugin,
		InteractiveMode: clientcmdapi.NeverExecInteractiveMode,
	}}

	// In a pod: the mounted token and CA, the service's address.
	saDir := t.TempDir()
	for name, data := range map[string][]byte{"token": []byte(token), "ca.crt": w.srv.CAData} {
		if err := os.WriteFile(filepath.Join(saDir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	host, port, _ := strings.Cut(strings.TrimPrefix(w.srv.URL, "https://"), ":")
	inPod := providers.DefaultDeps()
	inPod.Getenv = func(k string) string {
		return map[string]string{"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": port}[k]
	}

	tests := []struct {
		name     string
		settings map[string]any
		deps     providers.Deps
	}{
		{"kubeconfig with a token", map[string]any{"kubeconfig": w.srv.Kubeconfig(t, &clientcmdapi.AuthInfo{Token: token})}, providers.DefaultDeps()},
		{"kubeconfig with an exec credential plugin", map[string]any{"kubeconfig": w.srv.Kubeconfig(t, execUser)}, providers.DefaultDeps()},
		{"in cluster", map[string]any{"in_cluster": true}, inPod},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := w.config()
			cfg.Settings = tt.settings
			p, err := open(cfg, tt.deps, saDir)
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			if err := p.Check(t.Context()); err != nil {
				t.Errorf("Check: %v", err)
			}
			if err := p.Grant(t.Context(), providers.Grant{Role: "pod-reader", Principal: "user:alice"}); err != nil {
				t.Fatalf("Grant: %v", err)
			}
			if err := p.Revoke(t.Context(), "pod-reader", "user:alice"); err != nil {
				t.Fatalf("Revoke: %v", err)
			}
		})
	}
}

// TestSettings: what Open refuses, and what the schema says first.
func TestSettings(t *testing.T) {
	t.Parallel()
	noPod := providers.DefaultDeps()
	noPod.Getenv = func(string) string { return "" }
	tests := []struct {
		name     string
		settings map[string]any
		want     string
	}{
		{"neither", map[string]any{}, "set kubeconfig (a kubeconfig file) or in_cluster: true"},
		{"both", map[string]any{"kubeconfig": "/x", "in_cluster": true}, "not both"},
		{"not in a pod", map[string]any{"in_cluster": true}, "KUBERNETES_SERVICE_HOST"},
		{"context without kubeconfig", map[string]any{"in_cluster": true, "context": "prod"}, "context only applies to a kubeconfig"},
		{"missing kubeconfig", map[string]any{"kubeconfig": "/nonexistent/kubeconfig"}, "kubeconfig /nonexistent/kubeconfig"},
		{"bad rate", map[string]any{"kubeconfig": "/x", "requests_per_second": 0}, "requests_per_second"},
		{"fractional rate", map[string]any{"kubeconfig": "/x", "requests_per_second": 2.5}, "requests_per_second must be a whole number"},
		{"unknown setting", map[string]any{"kubeconfig": "/x", "namespace": "prod"}, `unknown setting "namespace"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := gitgrant.ProviderConfig{Name: "k", Type: Type, Settings: tt.settings}
			_, err := open(cfg, noPod, t.TempDir())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("open = %v, want an error saying %q", err, tt.want)
			}
		})
	}
}

// TestSchema: gitgrant.yaml with a kubernetes provider validates, and
// the schema catches settings mistakes with the field's position.
func TestSchema(t *testing.T) {
	t.Parallel()
	const base = `version: 1
identities:
  alice:
    principals: {prod: "user:alice@example.com"}
providers:
  prod:
    type: kubernetes
%s    roles:
      viewer: {target: "ClusterRole/view@payments,payments-jobs", max_duration: 4h, approvals: 1}
`
	tests := []struct {
		name     string
		settings string
		want     []string // diagnostics' fields; nil: valid
	}{
		{"kubeconfig", "    kubeconfig: /etc/gitgrant/kubeconfig\n    context: prod\n    requests_per_second: 50\n", nil},
		{"in cluster", "    in_cluster: true\n", nil},
		{"typo", "    kubeconfig: /k\n    kubecontext: prod\n", []string{"providers.prod.kubecontext"}},
		{"in_cluster false", "    in_cluster: false\n", []string{"providers.prod.in_cluster"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, diags := schema.LoadConfig("gitgrant.yaml", fmt.Appendf(nil, base, tt.settings))
			var fields []string
			for _, d := range diags {
				if d.Severity == gitgrant.SeverityError {
					fields = append(fields, d.Field)
				}
			}
			if tt.want == nil && len(fields) > 0 {
				t.Fatalf("valid config refused: %v", diags)
			}
			for _, f := range tt.want {
				found := false
				for _, got := range fields {
					found = found || strings.HasPrefix(got, f) || strings.HasPrefix(f, got)
				}
				if !found {
					t.Errorf("diagnostics %v name no %s", diags, f)
				}
			}
		})
	}
}

func TestCanonicalPrincipal(t *testing.T) {
	t.Parallel()
	p := newProvider(gitgrant.ProviderConfig{Name: "k"}, nil)
	got := map[string]string{}
	for _, in := range []string{"User:alice", "GROUP:sre", "ServiceAccount:ci/deployer", "user:alice"} {
		c, err := p.CanonicalPrincipal(in)
		if err != nil {
			t.Fatalf("CanonicalPrincipal(%q): %v", in, err)
		}
		got[in] = c
	}
	want := map[string]string{"User:alice": "user:alice", "GROUP:sre": "group:sre", "ServiceAccount:ci/deployer": "serviceaccount:ci/deployer", "user:alice": "user:alice"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if _, err := p.CanonicalPrincipal("alice"); err == nil {
		t.Error("CanonicalPrincipal(alice) accepted a principal without a kind")
	}
}

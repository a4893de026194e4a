package kubeclient

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// writeKubeconfig writes a kubeconfig whose current context reaches
// server, and returns its path.
func writeKubeconfig(t *testing.T, server string) string {
	t.Helper()
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["c"] = &clientcmdapi.Cluster{Server: server}
	cfg.AuthInfos["u"] = &clientcmdapi.AuthInfo{Token: "not-printed"}
	cfg.Contexts["x"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "u"}
	cfg.CurrentContext = "x"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestResolve: an explicit kubeconfig wins, then the pod's service
// account, then $KUBECONFIG; with none of them the error says what was
// looked at.
func TestResolve(t *testing.T) {
	t.Parallel()
	explicit := writeKubeconfig(t, "https://explicit.example:6443")
	fromEnv := writeKubeconfig(t, "https://env.example:6443")
	saDir := t.TempDir()
	home := t.TempDir()
	os.MkdirAll(filepath.Join(home, ".kube"), 0o700)
	if err := os.Rename(writeKubeconfig(t, "https://home.example:6443"), filepath.Join(home, ".kube", "config")); err != nil {
		t.Fatal(err)
	}
	pod := map[string]string{"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443", "KUBECONFIG": fromEnv}
	tests := []struct {
		name       string
		kubeconfig string
		env        map[string]string
		wantHost   string
		wantErr    string
	}{
		{"explicit beats the pod", explicit, pod, "https://explicit.example:6443", ""},
		{"the pod beats $KUBECONFIG", "", pod, "https://10.0.0.1:443", ""},
		{"$KUBECONFIG outside a pod", "", map[string]string{"KUBECONFIG": fromEnv}, "https://env.example:6443", ""},
		{"a missing explicit file", filepath.Join(saDir, "nope"), nil, "", "nope"},
		{"nothing at all", "", map[string]string{"KUBECONFIG": filepath.Join(saDir, "absent")}, "", "no Kubernetes configuration"},
		{"~/.kube/config", "", map[string]string{"HOME": home}, "https://home.example:6443", ""},
		{"no ~/.kube/config", "", map[string]string{"HOME": saDir}, "", "no Kubernetes configuration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, what, err := Resolve(tt.kubeconfig, func(k string) string { return tt.env[k] }, saDir)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Resolve = %v, want an error about %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "not-printed") {
					t.Errorf("the error shows the token: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Resolve (%s): %v", what, err)
			}
			if cfg.Host != tt.wantHost {
				t.Errorf("host %q (%s), want %q", cfg.Host, what, tt.wantHost)
			}
		})
	}
}

func TestNamespace(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if got := Namespace(dir); got != "" {
		t.Errorf("no file: %q", got)
	}
	if err := os.WriteFile(filepath.Join(dir, "namespace"), []byte("gitgrant\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := Namespace(dir); got != "gitgrant" {
		t.Errorf("Namespace = %q", got)
	}
}

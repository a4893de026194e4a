package deploy

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	authzv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/yaml"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/testing/testenv"
	"github.com/gitgrant/gitgrant/internal/testing/testenv/kube"
	"github.com/gitgrant/gitgrant/providers"
	"github.com/gitgrant/gitgrant/providers/kubernetes"
)

var update = flag.Bool("update", false, "rewrite the plain manifests from the chart")

func TestMain(m *testing.M) { kube.Main(m) }

const chart = "helm/gitgrant"

// helm returns the helm binary: GITGRANT_TEST_HELM, or helm on PATH
// (.ci/run installs it from the Go module proxy).
func helm(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("GITGRANT_TEST_HELM"); p != "" {
		return p
	}
	p, err := exec.LookPath("helm")
	if err != nil {
		testenv.Unavailable(t, "helm", "go install helm.sh/helm/v3/cmd/helm@v3.22.0 (.ci/run does) or set GITGRANT_TEST_HELM", err)
	}
	return p
}

// render runs helm template for release gitgrant in namespace.
func render(t *testing.T, namespace string, args ...string) ([]byte, error) {
	t.Helper()
	// Render for the version of the test server, whatever helm's default.
	cmd := exec.Command(helm(t), append([]string{"template", "gitgrant", chart, "--namespace", namespace, "--kube-version", kube.Version}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("helm template %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// objects splits rendered YAML into objects, skipping empty documents.
func objects(t *testing.T, rendered []byte) []*unstructured.Unstructured {
	t.Helper()
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(rendered), 4096)
	var out []*unstructured.Unstructured
	for {
		var m map[string]any
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("rendered YAML: %v", err)
		}
		if len(m) > 0 {
			out = append(out, &unstructured.Unstructured{Object: m})
		}
	}
}

// applier applies objects with server-side apply and strict field
// validation, so that a field the API does not know is an error.
type applier struct {
	dyn    dynamic.Interface
	mapper *restmapper.DeferredDiscoveryRESTMapper
}

func newApplier(t *testing.T, srv *kube.Server) applier {
	t.Helper()
	cfg := srv.AdminConfig()
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return applier{dyn: dyn, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))}
}

func (a applier) apply(ctx context.Context, obj *unstructured.Unstructured, dryRun bool) error {
	gvk := obj.GroupVersionKind()
	mapping, err := a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return fmt.Errorf("%s: %w", gvk, err)
	}
	var client dynamic.ResourceInterface = a.dyn.Resource(mapping.Resource)
	if mapping.Scope.Name() == "namespace" {
		client = a.dyn.Resource(mapping.Resource).Namespace(obj.GetNamespace())
	}
	data, err := obj.MarshalJSON()
	if err != nil {
		return err
	}
	force := true
	opts := metav1.PatchOptions{FieldManager: "gitgrant-chart-test", Force: &force, FieldValidation: "Strict"}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	_, err = client.Patch(ctx, obj.GetName(), types.ApplyPatchType, data, opts)
	return err
}

// installServiceMonitorCRD gives the test server the ServiceMonitor kind.
func installServiceMonitorCRD(t *testing.T, srv *kube.Server, a applier) {
	t.Helper()
	data, err := os.ReadFile("testdata/servicemonitor-crd.yaml")
	if err != nil {
		t.Fatal(err)
	}
	objs := objects(t, data)
	if len(objs) != 1 || objs[0].GetKind() != "CustomResourceDefinition" {
		t.Fatalf("testdata/servicemonitor-crd.yaml holds %d objects, want one CustomResourceDefinition", len(objs))
	}
	u := objs[0]
	ctx := t.Context()
	if err := a.apply(ctx, u, false); err != nil {
		t.Fatalf("installing the ServiceMonitor CRD: %v", err)
	}
	// The kind is served once the CRD is established; discovery then
	// has to be read again.
	deadline := time.Now().Add(30 * time.Second)
	for {
		a.mapper.Reset()
		if _, err := a.mapper.RESTMapping(schema.GroupKind{Group: "monitoring.coreos.com", Kind: "ServiceMonitor"}, "v1"); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the ServiceMonitor kind was not served within 30s of its CRD")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// valueSets are the ways the chart is meant to be used; each must render
// and apply.
var valueSets = []struct {
	name string
	args []string
}{
	{"defaults", []string{"--set", "repository.url=https://github.com/acme/access.git"}},
	{"everything", []string{
		"--set", "repository.url=git@github.com:acme/access.git",
		"--set", "github.existingSecret=gitgrant-github",
		"--set", "webhook.existingSecret=gitgrant-webhook",
		"--set", "kubernetesProvider.enabled=true",
		"--set", "kubernetesProvider.bindableClusterRoles={view,edit}",
		"--set", "kubernetesProvider.bindableRoles={pod-reader}",
		"--set", "metrics.serviceMonitor.enabled=true",
		"--set", "metrics.serviceMonitor.labels.release=prometheus",
		"--set", "serviceAccount.annotations.eks\\.amazonaws\\.com/role-arn=arn:aws:iam::111122223333:role/gitgrant",
		"--set", "envFrom[0].secretRef.name=gitgrant-providers",
		"--set", "env[0].name=ORDERS_DB_DSN",
		"--set", "env[0].valueFrom.secretKeyRef.name=gitgrant-providers",
		"--set", "env[0].valueFrom.secretKeyRef.key=orders-db-dsn",
		"--set", "extraVolumes[0].name=prod-kubeconfig",
		"--set", "extraVolumes[0].secret.secretName=prod-kubeconfig",
		"--set", "extraVolumeMounts[0].name=prod-kubeconfig",
		"--set", "extraVolumeMounts[0].mountPath=/etc/gitgrant/prod",
		"--set", "extraArgs={--github-budget=20s}",
	}},
	{"one replica without leader election, token auth", []string{
		"--set", "repository.url=https://github.example.com/acme/access.git",
		"--set", "repository.github=acme/access",
		"--set", "github.apiUrl=https://github.example.com/api/v3",
		"--set", "replicaCount=1",
		"--set", "leaderElection.enabled=false",
		"--set", "github.existingSecret=gitgrant-github",
		"--set", "github.tokenKey=token",
	}},
}

// TestChartApplies renders each value set and applies every object to
// the test API server with server-side apply and strict validation: a
// misspelt field, a wrong type or an invalid value fails here.
func TestChartApplies(t *testing.T) {
	t.Parallel()
	srv := kube.APIServer(t)
	a := newApplier(t, srv)
	installServiceMonitorCRD(t, srv, a)
	for _, vs := range valueSets {
		t.Run(vs.name, func(t *testing.T) {
			ns := srv.Namespace(t, "chart")
			out, err := render(t, ns, vs.args...)
			if err != nil {
				t.Fatal(err)
			}
			objs := objects(t, out)
			if len(objs) == 0 {
				t.Fatal("the chart rendered nothing")
			}
			for _, obj := range objs {
				if err := a.apply(t.Context(), obj, true); err != nil {
					t.Errorf("%s %s: %v", obj.GetKind(), obj.GetName(), err)
				}
			}
		})
	}
}

// TestChartDeployment checks what the issue asks of the Deployment:
// replicas and leader election, probes, the metrics port, a non-root
// read-only container, and secrets only by reference.
func TestChartDeployment(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		args          []string
		replicas      int32
		leaderElect   bool
		wantEnvFromSe []string // env names that come from Secrets
	}{
		{"defaults", valueSets[0].args, 2, true, nil},
		{"everything", valueSets[1].args, 2, true, []string{"GITGRANT_GITHUB_APP_ID", "GITGRANT_GITHUB_APP_INSTALLATION_ID", "GITGRANT_WEBHOOK_SECRET", "ORDERS_DB_DSN"}},
		{"single", valueSets[2].args, 1, false, []string{"GITHUB_TOKEN"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out, err := render(t, "gitgrant", tt.args...)
			if err != nil {
				t.Fatal(err)
			}
			d := deployment(t, out)
			if got := *d.Spec.Replicas; got != tt.replicas {
				t.Errorf("replicas = %d, want %d", got, tt.replicas)
			}
			c := d.Spec.Template.Spec.Containers[0]
			hasLeaderFlags := slices.Contains(c.Args, "--leader-elect") &&
				slices.Contains(c.Args, "--lease-name=gitgrant") && slices.Contains(c.Args, "--lease-namespace=gitgrant")
			if hasLeaderFlags != tt.leaderElect {
				t.Errorf("leader election flags in %q: %v, want %v", c.Args, hasLeaderFlags, tt.leaderElect)
			}
			podName := slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool {
				return e.Name == "POD_NAME" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.name"
			})
			if podName != tt.leaderElect {
				t.Errorf("POD_NAME from metadata.name (the identity in the Lease): %v, want %v", podName, tt.leaderElect)
			}
			if !tt.leaderElect && d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
				t.Errorf("without leader election the strategy is %q, want Recreate (two pods never overlap)", d.Spec.Strategy.Type)
			}
			probes := map[string]string{
				"liveness":  c.LivenessProbe.HTTPGet.Path,
				"readiness": c.ReadinessProbe.HTTPGet.Path,
			}
			if diff := cmp.Diff(map[string]string{"liveness": "/healthz", "readiness": "/readyz"}, probes); diff != "" {
				t.Errorf("probes (-want +got):\n%s", diff)
			}
			if len(c.Ports) != 1 || c.Ports[0].Name != "http" || c.Ports[0].ContainerPort != 8080 {
				t.Errorf("ports = %+v, want http 8080 (webhook, health and /metrics)", c.Ports)
			}
			sc, psc := c.SecurityContext, d.Spec.Template.Spec.SecurityContext
			if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
				sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || !slices.Contains(sc.Capabilities.Drop, "ALL") {
				t.Errorf("security context: pod %+v, container %+v; want non-root, read-only root, no privilege escalation, no capabilities", psc, sc)
			}
			var fromSecrets []string
			for _, e := range c.Env {
				if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
					fromSecrets = append(fromSecrets, e.Name)
				}
				if e.Value != "" && strings.Contains(strings.ToLower(e.Name), "secret") {
					t.Errorf("env %s has a literal value; secrets come from Secrets", e.Name)
				}
			}
			slices.Sort(fromSecrets)
			if diff := cmp.Diff(tt.wantEnvFromSe, fromSecrets); diff != "" {
				t.Errorf("env from Secrets (-want +got):\n%s", diff)
			}
		})
	}
}

func deployment(t *testing.T, rendered []byte) appsv1.Deployment {
	t.Helper()
	for _, obj := range objects(t, rendered) {
		if obj.GetKind() != "Deployment" {
			continue
		}
		var d appsv1.Deployment
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, &d); err != nil {
			t.Fatal(err)
		}
		return d
	}
	t.Fatal("no Deployment rendered")
	return appsv1.Deployment{}
}

// TestChartRefuses: settings that would run two reconcilers at once, or
// serve no repository, do not render.
func TestChartRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"two replicas without leader election", []string{"--set", "repository.url=https://github.com/acme/access.git", "--set", "leaderElection.enabled=false"}, "replicaCount > 1 needs leaderElection.enabled"},
		{"no repository", nil, "repository.url is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := render(t, "gitgrant", tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one saying %q", err, tt.want)
			}
		})
	}
}

// manifests are the plain manifests: the chart rendered with a values
// file kept next to them.
var manifests = []struct {
	file string
	args []string
}{
	{"manifests/gitgrant.yaml", []string{"-f", "manifests/values.yaml"}},
	{"manifests/kubernetes-provider-rbac.yaml", []string{"-f", "manifests/values.yaml", "--set", "kubernetesProvider.enabled=true", "--show-only", "templates/kubernetes-provider-rbac.yaml"}},
}

// TestManifestsAreTheChart: the plain manifests are the chart rendered
// (go test ./deploy -update writes them), so the two never drift apart.
func TestManifestsAreTheChart(t *testing.T) {
	t.Parallel()
	for _, m := range manifests {
		out, err := render(t, "gitgrant", m.args...)
		if err != nil {
			t.Fatal(err)
		}
		header := fmt.Sprintf("# Rendered from deploy/helm/gitgrant with deploy/manifests/values.yaml\n# (helm template gitgrant deploy/helm/gitgrant --namespace gitgrant %s);\n# regenerate with: go test ./deploy -run TestManifestsAreTheChart -update\n",
			strings.ReplaceAll(strings.Join(m.args, " "), "manifests/", "deploy/manifests/"))
		want := append([]byte(header), out...)
		if *update {
			if err := os.WriteFile(m.file, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(m.file)
		if err != nil {
			t.Fatalf("%v (run go test ./deploy -update)", err)
		}
		if diff := cmp.Diff(string(want), string(got)); diff != "" {
			t.Errorf("%s is not the chart rendered; run go test ./deploy -run TestManifestsAreTheChart -update (-chart +file):\n%s", m.file, diff)
		}
	}
}

// TestManifestsApply applies the plain manifests for real, as a person
// would with kubectl apply --server-side.
func TestManifestsApply(t *testing.T) {
	t.Parallel()
	srv := kube.APIServer(t)
	a := newApplier(t, srv)
	ctx := t.Context()
	ns := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": "gitgrant"}}}
	if err := a.apply(ctx, ns, false); err != nil {
		t.Fatal(err)
	}
	for _, m := range manifests {
		data, err := os.ReadFile(m.file)
		if err != nil {
			t.Fatal(err)
		}
		for _, obj := range objects(t, data) {
			if err := a.apply(ctx, obj, false); err != nil {
				t.Errorf("%s: %s %s: %v", m.file, obj.GetKind(), obj.GetName(), err)
			}
		}
	}
}

// docsRBAC is the ClusterRole that docs/providers/kubernetes.md shows.
func docsRBAC(t *testing.T) rbacv1.ClusterRole {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join("..", "docs", "providers", "kubernetes.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, after, _ := strings.Cut(string(doc), "<!-- least-privilege-rbac -->")
	_, block, _ := strings.Cut(after, "```yaml\n")
	block, _, _ = strings.Cut(block, "```")
	var role rbacv1.ClusterRole
	if err := yaml.UnmarshalStrict([]byte(block), &role); err != nil {
		t.Fatalf("the RBAC in docs/providers/kubernetes.md: %v", err)
	}
	return role
}

// TestChartRBAC applies the chart for real and checks what its service
// account may do: its provider ClusterRole is the one the docs show (and
// the provider's tests run as), the kubernetes provider works with it,
// and leader election may touch its own Lease and no other.
func TestChartRBAC(t *testing.T) {
	t.Parallel()
	srv := kube.APIServer(t)
	a := newApplier(t, srv)
	ctx := t.Context()
	ns := srv.Namespace(t, "rbac")
	out, err := render(t, ns, append(slices.Clone(valueSets[1].args), "--set", "fullnameOverride=gitgrant-rbac", "--set", "metrics.serviceMonitor.enabled=false")...)
	if err != nil {
		t.Fatal(err)
	}
	var chartRole *rbacv1.ClusterRole
	for _, obj := range objects(t, out) {
		if err := a.apply(ctx, obj, false); err != nil {
			t.Fatalf("%s %s: %v", obj.GetKind(), obj.GetName(), err)
		}
		if obj.GetKind() == "ClusterRole" {
			chartRole = &rbacv1.ClusterRole{}
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, chartRole); err != nil {
				t.Fatal(err)
			}
		}
	}
	if chartRole == nil {
		t.Fatal("kubernetesProvider.enabled rendered no ClusterRole")
	}
	if diff := cmp.Diff(docsRBAC(t).Rules, chartRole.Rules); diff != "" {
		t.Errorf("the chart's provider ClusterRole differs from docs/providers/kubernetes.md (-docs +chart):\n%s", diff)
	}

	user := "system:serviceaccount:" + ns + ":gitgrant-rbac"
	groups := []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"}
	may := func(verb, group, resource, namespace, name string) bool {
		return srv.Allowed(t, user, groups, authzv1.ResourceAttributes{Verb: verb, Group: group, Resource: resource, Namespace: namespace, Name: name})
	}
	checks := []struct {
		verb, group, resource, namespace, name string
		want                                   bool
	}{
		{"get", "coordination.k8s.io", "leases", ns, "gitgrant-rbac", true},
		{"update", "coordination.k8s.io", "leases", ns, "gitgrant-rbac", true},
		{"create", "coordination.k8s.io", "leases", ns, "", true},
		{"update", "coordination.k8s.io", "leases", ns, "someone-elses", false},
		{"delete", "coordination.k8s.io", "leases", ns, "gitgrant-rbac", false},
		{"update", "coordination.k8s.io", "leases", "kube-system", "gitgrant-rbac", false},
		{"list", "rbac.authorization.k8s.io", "rolebindings", "", "", true},
		{"create", "rbac.authorization.k8s.io", "clusterrolebindings", "", "", true},
		{"bind", "rbac.authorization.k8s.io", "clusterroles", "", "view", true},
		{"bind", "rbac.authorization.k8s.io", "clusterroles", "", "cluster-admin", false},
		{"escalate", "rbac.authorization.k8s.io", "clusterroles", "", "view", false},
		{"get", "", "secrets", ns, "", false},
		{"get", "", "pods", ns, "", false},
	}
	for _, c := range checks {
		if got := may(c.verb, c.group, c.resource, c.namespace, c.name); got != c.want {
			t.Errorf("chart's service account may %s %s/%s %q in %q: %v, want %v", c.verb, c.group, c.resource, c.name, c.namespace, got, c.want)
		}
	}

	// The kubernetes provider, as the chart's service account: Check
	// finds every permission it needs, and a grant works.
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "pod-reader"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get"}}},
	}
	if _, err := srv.Admin(t).RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	token := srv.ServiceAccountToken(t, ns, "gitgrant-rbac")
	cfg := gitgrant.ProviderConfig{
		Name: "chart-rbac",
		Type: kubernetes.Type,
		Roles: map[string]gitgrant.RoleConfig{
			"viewer":     {Target: "ClusterRole/view@" + ns},
			"editor":     {Target: "ClusterRole/edit"},
			"pod-reader": {Target: "Role/pod-reader@" + ns},
		},
		Settings: map[string]any{"kubeconfig": srv.Kubeconfig(t, &clientcmdapi.AuthInfo{Token: token})},
	}
	p, err := kubernetes.Open(ctx, cfg, providers.DefaultDeps())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.(providers.Checker).Check(ctx); err != nil {
		t.Errorf("Check as the chart's service account: %v", err)
	}
	for _, role := range []string{"viewer", "editor", "pod-reader"} {
		if err := p.Grant(ctx, providers.Grant{Role: role, Principal: "user:alice", Until: time.Now().Add(time.Hour)}); err != nil {
			t.Errorf("Grant(%s) as the chart's service account: %v", role, err)
		}
		if err := p.Revoke(ctx, role, "user:alice"); err != nil {
			t.Errorf("Revoke(%s) as the chart's service account: %v", role, err)
		}
	}
}

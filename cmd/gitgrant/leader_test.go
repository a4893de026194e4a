package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/testing/testenv"
	"github.com/gitgrant/gitgrant/internal/testing/testenv/kube"
)

func TestMain(m *testing.M) { kube.Main(m) }

// leaderRBAC is the Role docs/serve.md gives gitgrant for leader
// election: create Leases, and get and update its own.
func leaderRBAC(t *testing.T, srv *kube.Server, ns, sa, lease string) {
	t.Helper()
	ctx := context.Background()
	rbac := srv.Admin(t).RbacV1()
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "gitgrant-leader-election"},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"create"}},
			{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, ResourceNames: []string{lease}, Verbs: []string{"get", "update"}},
		},
	}
	if _, err := rbac.Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "gitgrant-leader-election"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa, Namespace: ns}},
	}
	if _, err := rbac.RoleBindings(ns).Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// serveReplica is one `gitgrant serve --leader-elect` process.
type serveReplica struct {
	*process
	name string
	base string // http://127.0.0.1:port
}

// metric reads one unlabelled sample from the replica's /metrics.
func (r *serveReplica) metric(name string) string {
	code, body := httpGet(r.base + "/metrics")
	if code != http.StatusOK {
		return ""
	}
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	return ""
}

// TestServeLeaderElection runs three `gitgrant serve --leader-elect`
// processes against the test API server, as a service account holding
// only the documented Lease RBAC, on one access repository and one exec
// provider that records every grant and revoke with the process that made
// it. One replica leads and acts; the others are ready standbys. Then:
//   - kill -9 of the leader: another takes the Lease when it expires and
//     grants what was merged meanwhile;
//   - SIGSTOP of the new leader (a frozen process, as a long GC pause or a
//     paused VM): the third takes over; resumed, the frozen one does not
//     act, not even on a webhook;
//   - SIGTERM of the leader: it releases the Lease, and the next takes
//     over at once.
//
// Every grant and revoke is made exactly once. Takeover times are logged
// (go test -v -run TestServeLeaderElection ./cmd/gitgrant); only a
// generous hang guard is asserted.
func TestServeLeaderElection(t *testing.T) {
	t.Parallel()
	requireBashProvider(t, "SIGKILL, SIGSTOP")
	srv := kube.APIServer(t)
	ns := srv.Namespace(t, "serve-ha")
	const lease = "gitgrant"
	leaderRBAC(t, srv, ns, "gitgrant", lease)
	kubeconfig := srv.Kubeconfig(t, &clientcmdapi.AuthInfo{Token: srv.ServiceAccountToken(t, ns, "gitgrant")})
	admin := srv.Admin(t)
	holder := func() (string, time.Time) {
		l, err := admin.CoordinationV1().Leases(ns).Get(context.Background(), lease, metav1.GetOptions{})
		if err != nil || l.Spec.HolderIdentity == nil {
			return "", time.Time{}
		}
		var renewed time.Time
		if l.Spec.RenewTime != nil {
			renewed = l.Spec.RenewTime.Time
		}
		return *l.Spec.HolderIdentity, renewed
	}

	bin := buildGitgrant(t)
	w := newWikiWorld(t, "ha-token", "owner", "alice", "carol", "dave", "erin")
	merge := func(n int, who string) {
		t.Helper()
		w.merge(n, who, "2h", "owner", time.Now().UTC().Add(-time.Minute))
	}
	merge(1, "alice")

	const secret = "ha-webhook-secret"
	start := func(name string) *serveReplica {
		addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
		p := startProcess(t, bin, w.env(t, "POD_NAME="+name, "GITGRANT_WEBHOOK_SECRET="+secret),
			"serve", "--listen", addr, "--repo", "file://"+w.Remote, "--resync", "1h", "--log-format", "json",
			"--leader-elect", "--lease-name", lease, "--lease-namespace", ns, "--kubeconfig", kubeconfig)
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("log of %s (pid %s):\n%s", name, p.pid(), p.out)
			}
		})
		return &serveReplica{process: p, name: name, base: "http://" + addr}
	}
	replicas := map[string]*serveReplica{}
	for _, name := range []string{"gitgrant-0", "gitgrant-1", "gitgrant-2"} {
		replicas[name] = start(name)
	}
	all := &syncBuffer{} // for waitFor's message: the logs are printed on failure anyway

	calls := w.calls
	made := func(op, principal string) (pid string, ok bool) {
		for _, c := range calls() {
			f := strings.Fields(c)
			if len(f) == 4 && f[0] == op && f[2] == principal {
				return f[3], true
			}
		}
		return "", false
	}
	// takeover waits for a holder other than old, then for it to grant
	// principal; it returns the new leader, when it was seen holding the
	// Lease and when the grant was seen.
	takeover := func(old, principal string) (r *serveReplica, leased, granted time.Time) {
		t.Helper()
		waitFor(t, "a new holder of the Lease", all, func() bool {
			h, _ := holder()
			r = replicas[h]
			return r != nil && h != old
		})
		leased = time.Now()
		waitFor(t, r.name+" granting "+principal, all, func() bool { _, ok := made("grant", principal); return ok })
		granted = time.Now()
		if pid, _ := made("grant", principal); pid != r.pid() {
			t.Errorf("%s was granted by pid %s, not by the new leader %s (pid %s)", principal, pid, r.name, r.pid())
		}
		return r, leased, granted
	}
	ms := func(d time.Duration) time.Duration { return d.Round(time.Millisecond) }

	// One leader; it revokes bob (nobody asked for him) and grants alice.
	var first *serveReplica
	waitFor(t, "a leader", all, func() bool { h, _ := holder(); first = replicas[h]; return first != nil })
	waitFor(t, "the first pass", all, func() bool { _, ok := made("grant", "alice"); return ok })
	for _, r := range replicas {
		want := "0"
		if r == first {
			want = "1"
		}
		waitFor(t, r.name+"'s gitgrant_leader "+want, all, func() bool { return r.metric("gitgrant_leader") == want })
		for _, path := range []string{"/healthz", "/readyz"} {
			if code, body := httpGet(r.base + path); code != http.StatusOK {
				t.Errorf("%s %s = %d %s", r.name, path, code, body)
			}
		}
	}

	// kill -9 of the leader; carol's request was merged just before, with
	// no webhook: the new leader's first pass grants it.
	merge(2, "carol")
	killed := time.Now()
	first.signal(t, syscall.SIGKILL)
	<-first.done
	_, lastRenewal := holder() // the dead leader's
	second, leased, granted := takeover(first.name, "carol")
	t.Logf("TAKEOVER kill -9 of %s: %s held the Lease %s after the kill (%s after the dead leader's last renewal) and had run its first pass (granted carol) %s after the kill",
		first.name, second.name, ms(leased.Sub(killed)), ms(leased.Sub(lastRenewal)), ms(granted.Sub(killed)))

	// SIGSTOP of the new leader: frozen, it cannot renew; the third
	// replica takes over when the Lease expires and grants dave.
	merge(3, "dave")
	frozenAt := time.Now()
	second.signal(t, syscall.SIGSTOP)
	third, leased, granted := takeover(second.name, "dave")
	t.Logf("TAKEOVER SIGSTOP of %s: %s held the Lease %s after the freeze and had granted dave %s after it",
		second.name, third.name, ms(leased.Sub(frozenAt)), ms(granted.Sub(frozenAt)))
	// Resumed, with a webhook to tempt it, the frozen leader must not act:
	// it finds its last renewal far older than the renew deadline.
	merge(4, "erin")
	second.signal(t, syscall.SIGCONT)
	if code := deliverWebhook(t, second.base, secret, "push", `{"ref":"refs/heads/main"}`); code != http.StatusAccepted {
		t.Errorf("webhook to the resumed replica: %d", code)
	}
	waitFor(t, second.name+" standing down", all, func() bool { return second.metric("gitgrant_leader") == "0" })
	if n := second.metric("gitgrant_standby_dropped_triggers_total"); n != "1" {
		t.Errorf("%s, resumed, dropped %s webhook trigger(s), want 1", second.name, n)
	}
	time.Sleep(3 * time.Second) // time enough for a pass, had it started one
	if _, ok := made("grant", "erin"); ok {
		t.Errorf("erin was granted after %s resumed: only %s leads, and it had no trigger", second.name, third.name)
	}
	if h, _ := holder(); h != third.name {
		t.Errorf("after %s resumed the Lease is held by %q, want %s", second.name, h, third.name)
	}

	// SIGTERM of the leader: it hands the Lease over, and the resumed
	// replica takes over at once and grants erin.
	stopping := time.Now()
	third.signal(t, syscall.SIGTERM)
	last, leased, granted := takeover(third.name, "erin")
	if code := third.exitCode(); code != 0 {
		t.Errorf("%s exited %d after SIGTERM", third.name, code)
	}
	t.Logf("TAKEOVER SIGTERM of %s: %s held the released Lease %s after the signal and had granted erin %s after it",
		third.name, last.name, ms(leased.Sub(stopping)), ms(granted.Sub(stopping)))
	if last != second {
		t.Errorf("%s took over; the only replica left is %s", last.name, second.name)
	}

	// Each grant and revoke exactly once, each by the leader of its time.
	var got []string
	for _, c := range calls() {
		f := strings.Fields(c)
		got = append(got, strings.Join(f[:3], " "))
	}
	want := []string{"revoke wiki-editors bob", "grant wiki-editors alice", "grant wiki-editors carol", "grant wiki-editors dave", "grant wiki-editors erin"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("grants and revokes across the replicas (-want +got):\n%s\nrecord:\n%s", diff, strings.Join(calls(), "\n"))
	}
	byPID := map[string][]string{}
	for _, c := range calls() {
		f := strings.Fields(c)
		byPID[f[3]] = append(byPID[f[3]], f[2])
	}
	for _, r := range []*serveReplica{first, second, third} {
		slices.Sort(byPID[r.pid()])
	}
	wantBy := map[string][]string{first.pid(): {"alice", "bob"}, second.pid(): {"carol", "erin"}, third.pid(): {"dave"}}
	if diff := cmp.Diff(wantBy, byPID); diff != "" {
		t.Errorf("who acted (-want +got), by pid (%s %s, %s %s, %s %s):\n%s", first.name, first.pid(), second.name, second.pid(), third.name, third.pid(), diff)
	}
	if diff := cmp.Diff([]string{"alice", "carol", "dave", "erin"}, w.members(t)); diff != "" {
		t.Errorf("members (-want +got):\n%s", diff)
	}
	second.signal(t, syscall.SIGTERM)
	if code := second.exitCode(); code != 0 {
		t.Errorf("%s exited %d after SIGTERM", second.name, code)
	}
}

// deliverWebhook posts a delivery signed with secret to base/webhook and
// returns the status.
func deliverWebhook(t *testing.T, base, secret, event, body string) int {
	t.Helper()
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(body))
	req, err := http.NewRequest(http.MethodPost, base+"/webhook", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", event)
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestServeLeaderElectFlags: leader election settings that cannot work
// are usage errors that say what to change, before anything starts.
func TestServeLeaderElectFlags(t *testing.T) {
	t.Parallel()
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: not-printed}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`), 0o600); err != nil {
		t.Fatal(err)
	}
	base := []string{"serve", "--listen", "127.0.0.1:0", "--repo", t.TempDir(), "--leader-elect"}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no cluster", []string{}, "no Kubernetes configuration"},
		{"missing kubeconfig", []string{"--kubeconfig", kubeconfig + ".nope"}, "kubeconfig.nope"},
		{"renew deadline not below the lease", []string{"--kubeconfig", kubeconfig, "--renew-deadline", "15s"}, "--renew-deadline 15s must be above 0 and below --lease-duration 15s"},
		{"fractional lease", []string{"--kubeconfig", kubeconfig, "--lease-duration", "15500ms"}, "whole seconds"},
		{"retry too slow", []string{"--kubeconfig", kubeconfig, "--retry-period", "9s"}, "--retry-period 9s"},
		{"bad lease name", []string{"--kubeconfig", kubeconfig, "--lease-name", "Gitgrant_Lease"}, `--lease-name "Gitgrant_Lease"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// HOME and KUBECONFIG point nowhere: only the flags decide.
			r := runCLI(t, map[string]string{"HOME": t.TempDir(), "KUBECONFIG": filepath.Join(t.TempDir(), "none")}, append(slices.Clone(base), tt.args...)...)
			if r.code != gitgrant.ExitUsage || !strings.Contains(r.stderr, tt.want) {
				t.Errorf("exit %d, want %d with %q:\n%s", r.code, gitgrant.ExitUsage, tt.want, r.stderr)
			}
			if strings.Contains(r.stderr, "not-printed") {
				t.Errorf("the token reached the output")
			}
		})
	}
}

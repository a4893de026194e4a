package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/engine"
	"github.com/gitgrant/gitgrant/internal/testing/gitserver"
)

// gitRepo makes a repository on branch main with files committed at
// time at, and no remote.
func gitRepo(t *testing.T, files map[string]string, at time.Time) string {
	t.Helper()
	w := gitserver.NewWork(t, "", at)
	w.WriteFiles(files)
	w.CommitAt(at, "Test", "Add requests")
	return w.Dir
}

func TestPlanAgainstRealPostgres(t *testing.T) {
	t.Parallel()
	dsn, roles := pgRoles(t, "gg", []string{"ro", "rw"}, []string{"bob", "alice", "mallory"})
	ro, rw, bob, alice, mallory := roles["ro"], roles["rw"], roles["bob"], roles["alice"], roles["mallory"]
	pgExec(t, dsn, "GRANT "+rw+" TO "+mallory)

	config := pgConfig("orders-db", "TEST_PLAN_DSN", map[string]string{"alice": alice, "bob": bob},
		"readonly: {target: "+ro+", max_duration: 8h, approvals: 0}",
		"readwrite: {target: "+rw+", max_duration: 4h, approvals: 1}")
	repo := gitRepo(t, map[string]string{
		"gitgrant.yaml":                    config,
		"requests/orders-db/bob-ro.yaml":   "requester: bob\ngrants: [{provider: orders-db, role: readonly}]\nduration: 8h\nreason: Refund audit\n",
		"requests/orders-db/alice-rw.yaml": "requester: alice\ngrants: [{provider: orders-db, role: readwrite}]\nduration: 2h\nreason: Fix orders\n",
		"requests/orders-db/broken.yaml":   "requester: [\n",
	}, testNow.Add(-time.Hour))

	r := runCLI(t, map[string]string{"TEST_PLAN_DSN": dsn}, "plan", "--repo", repo, "--output", "json")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	var out struct {
		Version  int               `json:"version"`
		Requests []gitgrant.Entry  `json:"requests"`
		Actions  []gitgrant.Action `json:"actions"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("%v\n%s", err, r.stdout)
	}
	status := map[string]gitgrant.Status{}
	for _, e := range out.Requests {
		status[filepath.Base(e.Path)] = e.Status
	}
	// Without GitHub nothing is verified, so reconcile grants nothing, not
	// even the role that needs no approval: the plan says so, and why.
	wantStatus := map[string]gitgrant.Status{"alice-rw.yaml": gitgrant.StatusUnverified, "bob-ro.yaml": gitgrant.StatusUnverified, "broken.yaml": gitgrant.StatusRejected}
	if diff := cmp.Diff(wantStatus, status); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}
	for _, e := range out.Requests {
		if e.Status == gitgrant.StatusUnverified && !cmp.Equal(e.Reasons, []string{engine.NoGitHubReason}) {
			t.Errorf("%s: reasons %q, want the one that says reconcile needs GitHub credentials", e.Path, e.Reasons)
		}
	}
	want := []gitgrant.Action{
		{Op: gitgrant.OpRevoke, Provider: "orders-db", Role: "readwrite", Principal: mallory, Cause: gitgrant.CauseDrift, Reason: "drift: not backed by an active request or a standing entry"},
	}
	if diff := cmp.Diff(want, out.Actions); diff != "" {
		t.Errorf("actions (-want +got):\n%s", diff)
	}

	// The same plan as text: a person reads statuses and reasons.
	r = runCLI(t, map[string]string{"TEST_PLAN_DSN": dsn}, "plan", "--repo", repo)
	for _, s := range []string{"unverified", "reconcile needs GitHub credentials to verify the approval", "revoke  orders-db/readwrite  " + mallory, "1 action(s), revocations first",
		"2 request(s) unverified: nothing is granted for them until their approval is verified"} {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("text plan lacks %q:\n%s", s, r.stdout)
		}
	}
}

// A provider that cannot be reached leaves its roles out, says so, and
// exits 3; the plan is still printed.
func TestPlanProviderDown(t *testing.T) {
	t.Parallel()
	repo := gitRepo(t, map[string]string{
		"gitgrant.yaml":               pgConfig("orders-db", "UNSET_DSN", map[string]string{"bob": "bob"}, "readonly: {approvals: 0}"),
		"requests/orders-db/bob.yaml": "requester: bob\ngrants: [{provider: orders-db, role: readonly}]\nduration: 8h\nreason: Refund audit\n",
	}, testNow.Add(-time.Hour))
	r := runCLI(t, nil, "plan", "--repo", repo)
	if r.code != gitgrant.ExitSystem {
		t.Errorf("exit %d, want 3", r.code)
	}
	if !strings.Contains(r.stderr, "UNSET_DSN") || !strings.Contains(r.stdout, "requests/orders-db/bob.yaml") {
		t.Errorf("stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	}
}

func TestPlanRefusesBrokenConfig(t *testing.T) {
	t.Parallel()
	repo := gitRepo(t, map[string]string{"gitgrant.yaml": "providers: [\n"}, testNow)
	if r := runCLI(t, nil, "plan", "--repo", repo); r.code != gitgrant.ExitInvalid || !strings.Contains(r.stderr, "YAML syntax error") {
		t.Errorf("exit %d: %s", r.code, r.stderr)
	}
}

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gitgrant/gitgrant/internal/testing/accesstest"
)

// Under GitHub Actions, reconcile's job summary says what the pass did,
// not only what it planned, and a failed grant is an ::error annotation
// on its request file.
func TestReconcileJobSummaryReportsOutcomes(t *testing.T) {
	t.Parallel()
	dsn, roles := pgRoles(t, "sum", []string{"ro"}, []string{"bob"})
	ro, bob := roles["ro"], roles["bob"]
	// carol's login does not exist: granting her the role fails.
	carol := strings.Replace(bob, "_bob_", "_carol_", 1)

	config := pgConfig("orders-db", "SUM_DSN", map[string]string{"bob": bob, "carol": carol}, "readonly: {target: "+ro+", max_duration: 8h, approvals: 0}")
	w := accesstest.New(t, func() time.Time { return testNow }, map[string]string{"gitgrant.yaml": config}, testNow.Add(-24*time.Hour))
	w.MergePR(1, "bob", map[string]string{"requests/orders-db/bob-ro.yaml": "requester: bob\ngrants: [{provider: orders-db, role: readonly}]\nduration: 2h\nreason: Refund audit\n"}, testNow.Add(-10*time.Minute))
	w.MergePR(2, "carol", map[string]string{"requests/orders-db/carol-ro.yaml": "requester: carol\ngrants: [{provider: orders-db, role: readonly}]\nduration: 2h\nreason: Check refunds\n"}, testNow.Add(-5*time.Minute))

	summary := filepath.Join(t.TempDir(), "summary.md")
	vars := map[string]string{"SUM_DSN": dsn, "GITHUB_TOKEN": accesstest.Token, "GITHUB_REPOSITORY": "acme/access", "GITHUB_API_URL": w.GH.BaseURL(),
		"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": summary}
	r := runCLIAt(t, testNow, vars, "reconcile", "--repo", w.Work)
	if r.code != 3 {
		t.Fatalf("exit %d, want 3 (one grant failed)\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	data, err := os.ReadFile(summary)
	if err != nil {
		t.Fatal(err)
	}
	got := string(data)
	wantContains(t, "job summary", got,
		"### gitgrant plan",
		"### gitgrant reconcile: done with failures; the next pass retries them",
		"1 action applied, 1 action failed",
		"| grant | `orders-db/readonly` | `"+bob+"` | `requests/orders-db/bob-ro.yaml` |",
		"#### Failed",
		"| grant | `orders-db/readonly` | `"+carol+"` | `requests/orders-db/carol-ro.yaml` |",
	)
	if !strings.Contains(r.stdout, "::error file=requests/orders-db/carol-ro.yaml,title=gitgrant%3A grant orders-db/readonly failed::grant orders-db/readonly for "+carol+" failed: ") {
		t.Errorf("no ::error annotation for the failed grant:\n%s", r.stdout)
	}
	if strings.Contains(r.stdout, "::error file=requests/orders-db/bob-ro.yaml") {
		t.Errorf("an annotation for a grant that succeeded:\n%s", r.stdout)
	}
}

package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/render"
	"github.com/gitgrant/gitgrant/internal/testing/accesstest"
)

// TestStatus lists active and upcoming grants with the time left, from the
// requests on main, without asking any provider (the provider's DSN is not
// even set).
func TestStatus(t *testing.T) {
	t.Parallel()
	w := accesstest.Local(t, map[string]string{
		"gitgrant.yaml": pgConfig("db", "STATUS_DSN_NOT_SET", map[string]string{"alice": "alice_pg", "bob": "bob_pg", "carol": "carol_pg", "dave": "dave_pg"},
			"ro: {approvals: 0, max_duration: 8h}", "rw: {approvals: 1, max_duration: 8h}"),
		"requests/db/dave.yaml": "requester: dave\ngrants: [{provider: db, role: ro}]\nduration: 1h\nreason: Old\n",
	}, testNow.Add(-5*time.Hour))
	w.Commit(testNow.Add(-time.Hour), "admin", "requests", map[string]string{
		"requests/db/alice.yaml": "requester: alice\ngrants: [{provider: db, role: ro}]\nduration: 4h\nreason: Now\n",
		"requests/db/bob.yaml":   "requester: bob\ngrants: [{provider: db, role: ro}]\nduration: 1h\nstarts: " + testNow.Add(2*time.Hour).Format(time.RFC3339) + "\nreason: Later\n",
		"requests/db/carol.yaml": "requester: carol\ngrants: [{provider: db, role: rw}]\nduration: 4h\nreason: Needs approval\n",
	})

	r := runCLI(t, nil, "status", "--repo", w.Work, "--output", "json")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	var got render.Status
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("%v\n%s", err, r.stdout)
	}
	want := render.Status{Version: 1, At: testNow, NextChange: testNow.Add(2 * time.Hour), Unverified: 1, Grants: []render.StatusGrant{
		{Status: gitgrant.StatusActive, Path: "requests/db/alice.yaml", Requester: "alice", Provider: "db", Role: "ro", Principal: "alice_pg",
			Start: testNow.Add(-time.Hour), End: testNow.Add(3 * time.Hour), Remaining: 3 * 3600},
		{Status: gitgrant.StatusPending, Path: "requests/db/bob.yaml", Requester: "bob", Provider: "db", Role: "ro", Principal: "bob_pg",
			Start: testNow.Add(2 * time.Hour), End: testNow.Add(3 * time.Hour), StartsIn: 2 * 3600, Remaining: 3 * 3600},
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("status JSON (-want +got):\n%s", diff)
	}

	r = runCLI(t, nil, "status", "--repo", w.Work)
	for _, line := range []string{
		"active   db/ro          alice_pg   alice      3h0m left (until 2026-11-22T15:00:00Z)",
		"pending  db/ro          bob_pg     bob        starts in 2h0m (2026-11-22T14:00:00Z), ends 2026-11-22T15:00:00Z",
		"1 request(s) unverified",
		"Next change: 2026-11-22T14:00:00Z (in 2h0m).",
	} {
		if !strings.Contains(r.stdout, line) {
			t.Errorf("text output lacks %q:\n%s", line, r.stdout)
		}
	}
	if r := runCLI(t, nil, "status", "--repo", w.Work, "--output", "yaml"); r.code != gitgrant.ExitUsage {
		t.Errorf("--output yaml: exit %d", r.code)
	}
}

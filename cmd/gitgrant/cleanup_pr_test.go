package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gitgrant/gitgrant/internal/testing/accesstest"

	"github.com/gitgrant/gitgrant/internal/testing/fakeclock"

	"github.com/gitgrant/gitgrant/internal/ghfake"
)

// runCLIAt is runCLI with the clock at now.
func runCLIAt(t *testing.T, now time.Time, vars map[string]string, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	e := &env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr,
		getenv: testEnv(vars), clk: fakeclock.NewAuto(now)}
	code := run(context.Background(), args, e)
	return result{code, stdout.String(), stderr.String()}
}

// TestReconcileCleanupPullRequest: with cleanup.mode: pull-request the
// expired file is removed on gitgrant's own branch, pushed to the real
// remote, and one pull request is opened for it; later passes update that
// branch and that pull request (also after main moved on), never a second.
func TestReconcileCleanupPullRequest(t *testing.T) {
	t.Parallel()
	dsn, roles := pgRoles(t, "cpr", []string{"ro"}, []string{"bob", "carol"})
	ro, bob, carol := roles["ro"], roles["bob"], roles["carol"]
	pgExec(t, dsn, "GRANT "+ro+" TO "+bob)

	w := accesstest.New(t, func() time.Time { return testNow }, map[string]string{
		"gitgrant.yaml": pgConfig("orders-db", "CPR_DSN", map[string]string{"bob": bob, "carol": carol},
			"readonly: {target: "+ro+", max_duration: 8h, approvals: 0}") + "cleanup:\n  mode: pull-request\n",
	}, testNow.Add(-24*time.Hour))
	w.MergePR(1, "bob", map[string]string{"requests/orders-db/bob-ro.yaml": "requester: bob\ngrants: [{provider: orders-db, role: readonly}]\nduration: 1h\nreason: Refund audit\n"}, testNow.Add(-3*time.Hour))
	remoteRev := func(rev string) string { return accesstest.Git(t, w.Remote, time.Time{}, "", "rev-parse", rev) }
	mainBefore := remoteRev("main")

	vars := map[string]string{"CPR_DSN": dsn, "GITHUB_TOKEN": accesstest.Token, "GITHUB_REPOSITORY": "acme/access", "GITHUB_API_URL": w.GH.BaseURL()}
	pass := func(name string, at time.Time) result {
		t.Helper()
		r := runCLIAt(t, at, vars, "reconcile", "--repo", w.Work)
		if r.code != 0 {
			t.Fatalf("%s pass: exit %d\n%s\n%s", name, r.code, r.stdout, r.stderr)
		}
		return r
	}
	r := pass("first", testNow)
	if got := pgMembers(t, dsn, ro); len(got) != 0 {
		t.Errorf("members %v: the expired grant was not revoked", got)
	}
	if got := remoteRev("main"); got != mainBefore {
		t.Errorf("main moved (%s -> %s): pull-request mode must not push to main", mainBefore, got)
	}
	branchFiles := func() string {
		return accesstest.Git(t, w.Remote, time.Time{}, "", "ls-tree", "-r", "--name-only", "gitgrant/cleanup")
	}
	if files := branchFiles(); strings.Contains(files, "requests/") {
		t.Errorf("the cleanup branch still holds request files:\n%s", files)
	}
	if parent := remoteRev("gitgrant/cleanup^"); parent != mainBefore {
		t.Errorf("cleanup branch is on %s, want on main %s", parent, mainBefore)
	}
	if msg := accesstest.Git(t, w.Remote, time.Time{}, "", "log", "-1", "--format=%B", "gitgrant/cleanup"); !strings.Contains(msg, "Gitgrant-Request: requests/orders-db/bob-ro.yaml") {
		t.Errorf("cleanup commit message lacks its trailers:\n%s", msg)
	}
	cleanupPRs := func() []ghfake.Pull {
		var out []ghfake.Pull
		for _, p := range w.GH.Pulls(w.Repo) {
			if p.HeadRef == "gitgrant/cleanup" {
				out = append(out, p)
			}
		}
		return out
	}
	prs := cleanupPRs()
	if len(prs) != 1 || prs[0].State != "open" || prs[0].BaseRef != "main" {
		t.Fatalf("cleanup pull requests = %+v, want one open into main", prs)
	}
	if !strings.Contains(r.stdout, fmt.Sprintf("(pull request #%d)", prs[0].Number)) {
		t.Errorf("stdout does not name the pull request:\n%s", r.stdout)
	}
	tip := remoteRev("gitgrant/cleanup")

	// Nobody merged it yet: the next pass keeps the same branch tip and
	// the same pull request.
	pass("second", testNow.Add(5*time.Minute))
	if got := remoteRev("gitgrant/cleanup"); got != tip {
		t.Errorf("an unchanged cleanup was pushed again: %s -> %s", tip, got)
	}
	if got := cleanupPRs(); len(got) != 1 || got[0].Number != prs[0].Number {
		t.Errorf("second pass: cleanup pull requests %+v, want #%d only", got, prs[0].Number)
	}

	// Main moves on (another request merges): the branch is rebuilt on the
	// new main, and the one pull request now shows that.
	w.MergePR(10, "carol", map[string]string{"requests/orders-db/carol-ro.yaml": "requester: carol\ngrants: [{provider: orders-db, role: readonly}]\nduration: 4h\nreason: Check refunds\n"}, testNow.Add(9*time.Minute))
	newMain := remoteRev("main")
	pass("third", testNow.Add(10*time.Minute))
	if parent := remoteRev("gitgrant/cleanup^"); parent != newMain {
		t.Errorf("cleanup branch is on %s, want on the new main %s", parent, newMain)
	}
	if files := branchFiles(); files != "gitgrant.yaml\nrequests/orders-db/carol-ro.yaml" {
		t.Errorf("cleanup branch files:\n%s\nwant carol's active request kept and bob's removed", files)
	}
	if got := cleanupPRs(); len(got) != 1 || got[0].Number != prs[0].Number {
		t.Errorf("third pass: cleanup pull requests %+v, want #%d only", got, prs[0].Number)
	}
}

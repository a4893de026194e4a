package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gitgrant/gitgrant/internal/testing/accesstest"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/engine"
	"github.com/gitgrant/gitgrant/internal/render"
	"github.com/gitgrant/gitgrant/internal/testing/testenv"
)

// pgConn is a connection to the real PostgreSQL, for the caller to
// close.
func pgConn(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	return conn
}

// pgExec runs sqls in the real PostgreSQL: the roles a test needs, with
// names that carry a unique suffix so tests can run in parallel, and
// their removal afterwards.
func pgExec(t *testing.T, dsn string, sqls ...string) {
	t.Helper()
	conn := pgConn(t, dsn)
	defer conn.Close(context.Background())
	for _, q := range sqls {
		if _, err := conn.Exec(context.Background(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// pgRoles creates in the real PostgreSQL (testenv.PostgresDSN) a NOLOGIN
// role for each of groups and a LOGIN role for each of users, each named
// prefix_NAME_<suffix> with a suffix unique to the run so that tests can
// run in parallel, and drops them all when the test ends. It returns the
// server's DSN and the roles by NAME.
func pgRoles(t *testing.T, prefix string, groups, users []string) (dsn string, roles map[string]string) {
	t.Helper()
	dsn = testenv.PostgresDSN(t)
	s := fmt.Sprintf("%d", time.Now().UnixNano()%1e9)
	roles = map[string]string{}
	var create, all []string
	add := func(names []string, login string) {
		for _, n := range names {
			roles[n] = prefix + "_" + n + "_" + s
			create = append(create, "CREATE ROLE "+roles[n]+" "+login)
			all = append(all, roles[n])
		}
	}
	add(groups, "NOLOGIN")
	add(users, "LOGIN")
	pgExec(t, dsn, create...)
	t.Cleanup(func() { pgExec(t, dsn, "DROP ROLE IF EXISTS "+strings.Join(all, ", ")) })
	return dsn, roles
}

// pgConfig is a gitgrant.yaml with one PostgreSQL provider (pgProvider):
// an identity for each login in principals, known on the provider by its
// role there.
func pgConfig(provider, dsnEnv string, principals map[string]string, roles ...string) string {
	var b strings.Builder
	if len(principals) > 0 {
		b.WriteString("identities:\n")
		for _, login := range slices.Sorted(maps.Keys(principals)) {
			fmt.Fprintf(&b, "  %s: {principals: {%s: %s}}\n", login, provider, principals[login])
		}
	}
	return b.String() + "providers:\n" + pgProvider(provider, dsnEnv, roles...)
}

// pgProvider is the entry under `providers:` of a PostgreSQL provider
// whose DSN is in the environment variable dsnEnv, with the given role
// entries, such as "readonly: {target: ro, approvals: 0}".
func pgProvider(name, dsnEnv string, roles ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "  %s:\n    type: postgres\n    dsn_env: %s\n    roles:\n", name, dsnEnv)
	for _, r := range roles {
		fmt.Fprintf(&b, "      %s\n", r)
	}
	return b.String()
}

// pgMembers are the members of group, sorted.
func pgMembers(t *testing.T, dsn, group string) []string {
	t.Helper()
	conn := pgConn(t, dsn)
	defer conn.Close(context.Background())
	rows, err := conn.Query(context.Background(), `SELECT m.rolname FROM pg_auth_members am JOIN pg_roles g ON g.oid = am.roleid JOIN pg_roles m ON m.oid = am.member WHERE g.rolname = $1`, group)
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(names)
	return names
}

// TestReconcileEndToEnd: requests merged through pull requests on a real
// git remote, approvals verified on the fake GitHub through go-github,
// access granted and revoked in a real PostgreSQL, the expired file removed
// by a cleanup commit pushed to the remote, and the pull request told.
func TestReconcileEndToEnd(t *testing.T) {
	t.Parallel()
	dsn, roles := pgRoles(t, "e2e", []string{"ro", "rw"}, []string{"alice", "bob", "mallory"})
	ro, rw, alice, bob, mallory := roles["ro"], roles["rw"], roles["alice"], roles["bob"], roles["mallory"]
	pgExec(t, dsn, "GRANT "+rw+" TO "+mallory, "GRANT "+ro+" TO "+bob)

	w := accesstest.New(t, func() time.Time { return testNow }, map[string]string{
		"gitgrant.yaml": pgConfig("orders-db", "E2E_DSN", map[string]string{"alice": alice, "bob": bob},
			"readonly: {target: "+ro+", max_duration: 8h, approvals: 0}",
			"readwrite: {target: "+rw+", max_duration: 4h, approvals: 1}"),
		".github/CODEOWNERS": "/requests/orders-db/ @carol\n",
	}, testNow.Add(-24*time.Hour))

	w.MergePR(1, "bob", map[string]string{"requests/orders-db/bob-ro.yaml": "requester: bob\ngrants: [{provider: orders-db, role: readonly}]\nduration: 1h\nreason: Refund audit\n"}, testNow.Add(-3*time.Hour))
	w.MergePR(2, "alice", map[string]string{"requests/orders-db/alice-rw.yaml": "requester: alice\ngrants: [{provider: orders-db, role: readwrite}]\nduration: 2h\nreason: Repair stuck orders\n"}, testNow.Add(-time.Hour), "carol")

	vars := map[string]string{"E2E_DSN": dsn, "GITHUB_TOKEN": accesstest.Token, "GITHUB_REPOSITORY": "acme/access", "GITHUB_API_URL": w.GH.BaseURL()}
	r := runCLI(t, vars, "reconcile", "--repo", w.Work, "--log-format", "json")
	t.Logf("first pass:\n%s", r.stdout)
	if r.code != 0 {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if diff := cmp.Diff([]string{alice}, pgMembers(t, dsn, rw)); diff != "" {
		t.Errorf("readwrite members (-want +got):\n%s", diff)
	}
	if got := pgMembers(t, dsn, ro); len(got) != 0 {
		t.Errorf("readonly members = %v; bob's request expired", got)
	}
	wantContains(t, "action log", r.stderr, `"op":"revoke"`, `"principal":"`+mallory+`"`, `"op":"grant"`, `"principal":"`+alice+`"`)

	// The cleanup commit reached the remote, with its trailers, and the
	// expired file is gone there; the active one stays.
	files := accesstest.Git(t, w.Remote, time.Time{}, "", "ls-tree", "-r", "--name-only", "main", "requests/")
	if files != "requests/orders-db/alice-rw.yaml" {
		t.Errorf("requests on the remote after cleanup:\n%s", files)
	}
	msg := accesstest.Git(t, w.Remote, time.Time{}, "", "log", "-1", "--format=%B", "main")
	wantContains(t, "cleanup commit", msg, "Gitgrant-Request: requests/orders-db/bob-ro.yaml", "Gitgrant-Requester: bob", "Gitgrant-Pull-Request: 1")
	if notes := accesstest.Git(t, w.Remote, time.Time{}, "", "notes", "--ref=refs/notes/gitgrant", "list"); notes == "" {
		t.Errorf("no grant-time notes were pushed")
	}
	var told bool
	for _, c := range w.GH.Comments(w.Repo) {
		if c.Issue == 2 && strings.Contains(c.Body, "granted `orders-db/readwrite` for `"+alice+"` until 2026-11-22T13:00:00Z") {
			told = true
		}
	}
	if !told {
		t.Errorf("pull request #2 was not told about the grant: %+v", w.GH.Comments(w.Repo))
	}

	// A second pass converges: nothing to do, no new commit.
	head := accesstest.Git(t, w.Remote, time.Time{}, "", "rev-parse", "main")
	r = runCLI(t, vars, "reconcile", "--repo", w.Work)
	if r.code != 0 || !strings.Contains(r.stdout, "applied 0 action(s), 0 failed") {
		t.Errorf("second pass: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if again := accesstest.Git(t, w.Remote, time.Time{}, "", "rev-parse", "main"); again != head {
		t.Errorf("an empty change made a commit: %s -> %s", head, again)
	}
}

// Without GitHub credentials nothing is granted, but expiry and drift
// are still revoked (rule 7).
func TestReconcileWithoutGitHubOnlyRevokes(t *testing.T) {
	t.Parallel()
	dsn, roles := pgRoles(t, "nogh", []string{"ro"}, []string{"alice", "mallory"})
	ro, alice, mallory := roles["ro"], roles["alice"], roles["mallory"]
	pgExec(t, dsn, "GRANT "+ro+" TO "+mallory)
	w := accesstest.Local(t, map[string]string{
		"gitgrant.yaml":          pgConfig("db", "NOGH_DSN", map[string]string{"alice": alice}, "ro: {target: "+ro+", approvals: 0}"),
		"requests/db/alice.yaml": "requester: alice\ngrants: [{provider: db, role: ro}]\nduration: 4h\nreason: Look at data\n",
	}, testNow.Add(-time.Hour))

	// The plan shows exactly what reconcile then does: no grant, the drift
	// revocation, and why alice gets nothing.
	vars := map[string]string{"NOGH_DSN": dsn}
	p := runCLI(t, vars, "plan", "--repo", w.Work, "--output", "json")
	var plan render.PlanJSON
	if err := json.Unmarshal([]byte(p.stdout), &plan); err != nil || p.code != 0 {
		t.Fatalf("plan: exit %d, %v\n%s%s", p.code, err, p.stdout, p.stderr)
	}

	r := runCLI(t, vars, "reconcile", "--repo", w.Work, "--output", "json")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	var doc reconcileJSON
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil || dec.More() {
		t.Fatalf("reconcile --output json is not one JSON document (%v):\n%s", err, r.stdout)
	}
	if diff := cmp.Diff(plan.Actions, doc.Actions); diff != "" {
		t.Errorf("reconcile did what the plan did not say (-plan +reconcile):\n%s", diff)
	}
	wantActions := []string{"revoke " + mallory}
	var gotActions []string
	for _, a := range doc.Actions {
		gotActions = append(gotActions, string(a.Op)+" "+a.Principal)
	}
	if diff := cmp.Diff(wantActions, gotActions); diff != "" {
		t.Errorf("actions (-want +got):\n%s", diff)
	}
	if doc.Result.Applied != 1 || doc.Result.Failed != 0 {
		t.Errorf("result = %+v, want the one revocation applied", doc.Result)
	}
	if len(doc.Entries) != 1 || doc.Entries[0].Status != gitgrant.StatusUnverified || !cmp.Equal(doc.Entries[0].Reasons, []string{engine.NoGitHubReason}) {
		t.Errorf("requests = %+v, want alice's unverified because reconcile needs GitHub credentials", doc.Entries)
	}
	if got := pgMembers(t, dsn, ro); len(got) != 0 {
		t.Errorf("members = %v: a direct push without verified approval grants nothing, and drift is revoked", got)
	}
	if !strings.Contains(r.stderr, "no GitHub credentials") {
		t.Errorf("stderr does not warn about the missing credentials:\n%s", r.stderr)
	}

	// As text, the same, with the summary a person reads.
	r = runCLI(t, vars, "reconcile", "--repo", w.Work)
	wantContains(t, "text output", r.stdout, "unverified", "reconcile needs GitHub credentials", "1 request(s) unverified: nothing is granted for them", "No changes: access matches the verified requests.", "applied 0 action(s)")
}

func TestReconcileBrake(t *testing.T) {
	t.Parallel()
	names := []string{"u0", "u1", "u2", "u3", "u4", "u5"}
	dsn, roles := pgRoles(t, "brake", []string{"ro"}, names)
	ro := roles["ro"]
	var grants []string
	for _, n := range names {
		grants = append(grants, "GRANT "+ro+" TO "+roles[n])
	}
	pgExec(t, dsn, grants...)
	w := accesstest.Local(t, map[string]string{"gitgrant.yaml": pgConfig("db", "BRAKE_DSN", nil, "ro: {target: "+ro+"}")}, testNow.Add(-time.Hour))

	r := runCLI(t, map[string]string{"BRAKE_DSN": dsn}, "reconcile", "--repo", w.Work)
	if r.code != gitgrant.ExitInvalid || !strings.Contains(r.stderr, "brake") {
		t.Fatalf("exit %d, want the brake (1)\n%s", r.code, r.stderr)
	}
	if got := pgMembers(t, dsn, ro); len(got) != 6 {
		t.Fatalf("the brake let %d of 6 members be revoked", 6-len(got))
	}
	r = runCLI(t, map[string]string{"BRAKE_DSN": dsn}, "reconcile", "--repo", w.Work, "--force")
	if r.code != 0 || len(pgMembers(t, dsn, ro)) != 0 {
		t.Errorf("--force: exit %d, members %v\n%s", r.code, pgMembers(t, dsn, ro), r.stderr)
	}
}

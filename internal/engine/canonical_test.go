package engine_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/gitgrant/gitgrant/internal/testing/fakeclock"

	_ "github.com/go-sql-driver/mysql"

	"github.com/gitgrant/gitgrant/internal/approval"
	"github.com/gitgrant/gitgrant/internal/engine"
	"github.com/gitgrant/gitgrant/internal/ghapi"
	"github.com/gitgrant/gitgrant/internal/gitrepo"
	"github.com/gitgrant/gitgrant/internal/testing/accesstest"
	"github.com/gitgrant/gitgrant/internal/testing/testenv"
	"github.com/gitgrant/gitgrant/providers"
	"github.com/gitgrant/gitgrant/providers/mysql"
)

// A MySQL account written in gitgrant.yaml the way MySQL's documentation
// writes it ('Alice'@'LOCALHOST', 'bob'@'%') is the account Members
// reports: granted once, and the next pass plans nothing — no revoke and
// grant again on every pass, no session killed each time, and a standing
// account is not taken for drift.
func TestMySQLPrincipalsInAnySpellingAreStable(t *testing.T) {
	t.Parallel()
	dsn := testenv.MariaDBDSN(t)
	admin, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	b := make([]byte, 4)
	rand.Read(b)
	prefix := "gg" + hex.EncodeToString(b)
	role, alice, bob := prefix+"_reader", prefix+"_Alice", prefix+"_bob"
	exec := func(q string) {
		t.Helper()
		if _, err := admin.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	t.Cleanup(func() {
		admin.Exec("DROP ROLE IF EXISTS `" + role + "`")
		admin.Exec("DROP USER IF EXISTS '" + alice + "'@'localhost', '" + bob + "'@'%'")
	})
	exec("CREATE ROLE `" + role + "`")
	exec("CREATE USER '" + alice + "'@'localhost'")
	exec("CREATE USER '" + bob + "'@'%'")
	exec("GRANT `" + role + "` TO '" + bob + "'@'%'")

	w := newWorld(t, fmt.Sprintf(`identities:
  alice: {principals: {db: "'%s'@'LOCALHOST'"}}
providers:
  db:
    type: mysql
    dsn_env: DB_DSN
    terminate_sessions: true
    standing: ["'%s'@'%%'"]
    roles:
      ro: {target: %s, max_duration: 8h, approvals: 1}
`, alice, bob, role))
	w.merge(1, "alice", "requests/db/alice.yaml", "requester: alice\ngrants: [{provider: db, role: ro}]\nduration: 4h\nreason: canonical principals\n", t0.Add(-time.Hour))

	repo, err := gitrepo.Open(context.Background(), gitrepo.Options{Source: w.Work})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := ghapi.New(ghapi.Config{Token: accesstest.Token, APIURL: w.GH.BaseURL(), Repository: "acme/access"}, ghapi.Options{Clock: fakeclock.NewAuto(t0)})
	if err != nil {
		t.Fatal(err)
	}
	v := approval.New(cl, engine.FileReader{Repo: repo}, &approval.MemoryCache{})
	v.Clock = fakeclock.New(t0)
	deps := providers.DefaultDeps()
	deps.Getenv = func(k string) string {
		if k == "DB_DSN" {
			return dsn
		}
		return ""
	}
	eng := &engine.Engine{TrustRoot: engine.TrustFirst, Repo: repo, GitHub: cl, Verifier: v, Deps: deps, Clock: fakeclock.New(t0),
		Registry: providers.Registry{mysql.Type: mysql.Open}}

	ctx := context.Background()
	for pass, want := range []int{1, 0, 0} {
		ps := mustPlan(t, eng)
		if len(ps.Problems) > 0 {
			t.Fatalf("pass %d: problems: %v", pass+1, ps.Problems)
		}
		if got := len(ps.Plan.Actions); got != want {
			t.Errorf("pass %d: %d actions, want %d: %+v", pass+1, got, want, ps.Plan.Actions)
		}
		if got, written := ps.Report.Config.Identities["alice"].Principals["db"], "'"+alice+"'@'LOCALHOST'"; got != written {
			t.Errorf("pass %d: the loaded gitgrant.yaml was changed: %q, want %q as written", pass+1, got, written)
		}
		if _, err := eng.Apply(ctx, ps, engine.ApplyOptions{}); err != nil {
			t.Fatalf("pass %d: apply: %v", pass+1, err)
		}
		ps.Close()
	}
	var holders []string
	rows, err := admin.Query("SELECT CONCAT(User, '@', Host) FROM mysql.roles_mapping WHERE Role = ? AND User <> 'root' ORDER BY User", role)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var h string
		rows.Scan(&h)
		holders = append(holders, h)
	}
	if want := []string{alice + "@localhost", bob + "@%"}; fmt.Sprint(holders) != fmt.Sprint(want) {
		t.Errorf("role holders %v, want %v", holders, want)
	}
}

package serve

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/approval"
	"github.com/gitgrant/gitgrant/internal/engine"
	"github.com/gitgrant/gitgrant/internal/ghapi"
	"github.com/gitgrant/gitgrant/internal/gitrepo"
	"github.com/gitgrant/gitgrant/internal/testing/accesstest"
	"github.com/gitgrant/gitgrant/internal/testing/fakeclock"
	"github.com/gitgrant/gitgrant/internal/testing/gitserver"
	"github.com/gitgrant/gitgrant/internal/testing/testenv"
	"github.com/gitgrant/gitgrant/providers"
	"github.com/gitgrant/gitgrant/providers/postgres"
	"github.com/gitgrant/gitgrant/schema"
)

// BenchmarkMergeToGrant measures, in `serve` on the wall clock, the time
// from a merged pull request's webhook delivery to the grant being in
// PostgreSQL, over 100 merges one after another. The access repository is
// served by git's own http-backend; serve fetches it over smart HTTP,
// verifies the pull request on the fake GitHub and grants through the
// real PostgreSQL provider. The scenario runs once, whatever b.N:
//
//	go test ./internal/serve -run '^$' -bench MergeToGrant -benchtime 1x
//
// Reported: p50, p99 and max in seconds, and "provider-ms", the
// provider's own time for one grant (GRANT on one connection, measured
// beside). The goal: p99 ≤ 2 s plus the provider's time.
func BenchmarkMergeToGrant(b *testing.B) {
	const merges = 100
	dsn := testenv.PostgresDSN(b)
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer admin.Close(ctx)
	var rb [4]byte
	rand.Read(rb[:])
	prefix := "ggm" + hex.EncodeToString(rb[:])
	group := prefix + "_ro"
	exec := func(sql string) {
		b.Helper()
		if _, err := admin.Exec(ctx, sql); err != nil {
			b.Fatalf("%s: %v", sql, err)
		}
	}
	b.Cleanup(func() {
		admin.Exec(ctx, `DO $$DECLARE r text; BEGIN
  FOR r IN SELECT rolname FROM pg_roles WHERE starts_with(rolname, '`+prefix+`') LOOP
    EXECUTE format('DROP ROLE %I', r);
  END LOOP; END$$`)
	})
	exec("CREATE ROLE " + group + " NOLOGIN")
	var ids strings.Builder
	for i := range merges {
		exec(fmt.Sprintf("CREATE ROLE %s_u%03d LOGIN", prefix, i))
		fmt.Fprintf(&ids, "  u%03d: {principals: {db: %s_u%03d}}\n", i, prefix, i)
	}
	cfg := "identities:\n" + ids.String() + "providers:\n  db:\n    type: postgres\n    dsn_env: GG_BENCH_DSN\n    roles:\n      ro: {target: " + group + ", max_duration: 8h, approvals: 1}\n"

	w := newWorldWith(b, gitgrant.SystemClock, cfg)
	srv := gitserver.StartAuth(b, "x-access-token", func(_, password string) bool { return password == "git-token" })
	if err := os.Symlink(w.Remote, srv.Path("access")); err != nil {
		b.Fatal(err)
	}
	repo, err := gitrepo.Open(ctx, gitrepo.Options{Source: srv.URL("access"), Token: "git-token", CacheDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer repo.Close()
	cl, err := ghapi.New(ghapi.Config{Token: accesstest.Token, APIURL: w.GH.BaseURL(), Repository: "acme/access"}, ghapi.Options{Clock: fakeclock.NewAuto(time.Now())})
	if err != nil {
		b.Fatal(err)
	}
	v := approval.New(cl, engine.FileReader{Repo: repo}, &approval.MemoryCache{})
	deps := providers.DefaultDeps()
	deps.Getenv = func(k string) string {
		if k == "GG_BENCH_DSN" {
			return dsn
		}
		return ""
	}
	eng := &engine.Engine{
		TrustRoot: engine.TrustFirst, Repo: repo, GitHub: cl, Verifier: v, Deps: deps, Clock: gitgrant.SystemClock,
		Retry: engineRetry, Parsed: &schema.ParseCache{},
		Registry: providers.Registry{"postgres": postgres.Open},
	}
	s := New(eng, Options{Apply: engine.ApplyOptions{Cleanup: true}, Resync: time.Hour, WebhookSecret: []byte(secret)})
	cancel, done := runLoopback(b, s)
	defer func() {
		cancel()
		if err := <-done; err != nil {
			b.Error(err)
		}
	}()
	eventually(b, "the first pass", func() bool { return s.Passes() >= 1 })

	member := func(principal string) bool {
		var ok bool
		err := admin.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid JOIN pg_roles u ON u.oid = m.member WHERE g.rolname = $1 AND u.rolname = $2)`, group, principal).Scan(&ok)
		if err != nil {
			b.Fatal(err)
		}
		return ok
	}
	var took []time.Duration
	for i := range merges {
		login := fmt.Sprintf("u%03d", i)
		w.MergePR(i+1, login, map[string]string{"requests/db/" + login + ".yaml": request(login, "ro", "duration: 2h\n")}, time.Now(), "owner")
		start := time.Now()
		if code := deliver(b, s.Handler(), "pull_request", `{"action":"closed","pull_request":{"merged":true}}`); code >= 300 {
			b.Fatalf("delivery: %d", code)
		}
		principal := fmt.Sprintf("%s_u%03d", prefix, i)
		deadline := start.Add(time.Minute)
		for !member(principal) {
			if time.Now().After(deadline) {
				b.Fatalf("merge %d: not granted within a minute", i+1)
			}
			time.Sleep(2 * time.Millisecond)
		}
		took = append(took, time.Since(start))
	}

	// The provider's own time for one grant, beside: GRANT and REVOKE on
	// one connection, as many as there were merges.
	var grantTime time.Duration
	for i := range merges {
		principal := fmt.Sprintf("%s_u%03d", prefix, i)
		exec("REVOKE " + group + " FROM " + principal)
		t := time.Now()
		exec("GRANT " + group + " TO " + principal)
		grantTime += time.Since(t)
	}

	slices.Sort(took)
	q := func(p float64) float64 { return took[int(p*float64(len(took)-1))].Seconds() }
	b.ReportMetric(q(0.5), "p50-s")
	b.ReportMetric(q(0.99), "p99-s")
	b.ReportMetric(q(1), "max-s")
	b.ReportMetric(float64(grantTime.Milliseconds())/merges, "provider-ms")
	b.ReportMetric(float64(s.Passes()), "passes")
	b.ReportMetric(0, "ns/op")
}

package postgres

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/testing/testenv"
	"github.com/gitgrant/gitgrant/providers"
	"github.com/gitgrant/gitgrant/providers/providertest"
	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// fixture is a set of uniquely named roles on the test server, dropped
// when the test ends.
type fixture struct {
	dsn        string
	admin      *pgx.Conn
	prefix     string
	groups     map[string]string // gitgrant role -> group role
	principals []string
}

func newFixture(t testing.TB, nPrincipals int) *fixture {
	t.Helper()
	dsn := testenv.PostgresDSN(t)
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{dsn: dsn, admin: admin, prefix: providertest.UniquePrefix(), groups: map[string]string{}}
	t.Cleanup(func() {
		// Every role this fixture made starts with its prefix.
		f.admin.Exec(ctx, `DO $$DECLARE r text; BEGIN
  FOR r IN SELECT rolname FROM pg_roles WHERE starts_with(rolname, '`+f.prefix+`') LOOP
    EXECUTE format('DROP ROLE %I', r);
  END LOOP; END$$`)
		f.admin.Close(ctx)
	})
	f.groups["reader"] = f.prefix + "_reader"
	f.groups["writer"] = f.prefix + ` writer "w"; --`
	for _, g := range f.groups {
		f.mustExec(t, "CREATE ROLE "+quote(g)+" NOLOGIN")
	}
	// Names that need quoting prove that they are quoted.
	hostile := []string{`'o''brien"; DROP ROLE postgres; --`, `back\slash`, "ünïcødé ユーザー", "MixedCase"}
	for i := range nPrincipals {
		name := fmt.Sprintf("%s_u%04d", f.prefix, i)
		if i < len(hostile) {
			name = f.prefix + " " + hostile[i]
		}
		f.principals = append(f.principals, name)
	}
	// One statement for all of them keeps the 1,000-role benchmark setup fast.
	f.mustExec(t, `DO $$DECLARE r text; BEGIN
  FOR r IN SELECT unnest(`+arrayLiteral(f.principals)+`) LOOP
    EXECUTE format('CREATE ROLE %I LOGIN', r);
  END LOOP; END$$`)
	return f
}

// arrayLiteral writes a text[] literal with dollar quoting, for DO blocks
// that cannot take parameters. Test names never contain "$n$".
func arrayLiteral(ss []string) string {
	parts := make([]string, len(ss))
	for i, s := range ss {
		parts[i] = "$n$" + s + "$n$"
	}
	return "ARRAY[" + strings.Join(parts, ",") + "]::text[]"
}

func (f *fixture) mustExec(t testing.TB, sql string) {
	t.Helper()
	if _, err := f.admin.Exec(context.Background(), sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func (f *fixture) config(settings map[string]any) gitgrant.ProviderConfig {
	return providertest.Config(Type, "pgtest", f.groups, map[string]any{"dsn_env": "PGTEST_DSN"}, settings)
}

func depsWith(dsn string) providers.Deps {
	return providertest.Deps(map[string]string{"PGTEST_DSN": dsn}, nil, nil)
}

func (f *fixture) open(t testing.TB, settings map[string]any, tweak func(*pgxpool.Config)) *Provider {
	t.Helper()
	p, err := open(context.Background(), f.config(settings), depsWith(f.dsn), tweak)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return p
}

// connectAs opens a connection as user, closed when the test ends.
func (f *fixture) connectAs(t *testing.T, user string) *pgx.Conn {
	t.Helper()
	cfg, err := pgx.ParseConfig(f.dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.User = user
	c, err := pgx.ConnectConfig(t.Context(), cfg)
	if err != nil {
		t.Fatalf("connect as %q: %v", user, err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

const downPassword = "hunter2-do-not-print"

// leastPrivilege creates a login role that holds every managed group WITH
// ADMIN OPTION and nothing else (docs/providers/postgres.md), and returns a
// fixture that connects as it.
func (f *fixture) leastPrivilege(t testing.TB) *fixture {
	t.Helper()
	name := f.prefix + "_gitgrant"
	f.mustExec(t, "CREATE ROLE "+quote(name)+" LOGIN")
	for _, g := range f.groups {
		f.mustExec(t, "GRANT "+quote(g)+" TO "+quote(name)+" WITH ADMIN OPTION")
	}
	u, err := url.Parse(f.dsn)
	if err != nil || u.Scheme == "" {
		t.Fatalf("the test DSN must be a URL to derive another user's DSN: %v", err)
	}
	u.User = url.User(name)
	g := *f
	g.dsn = u.String()
	return &g
}

func TestConformance(t *testing.T) {
	t.Parallel()
	// Seeking other grantors on revoke is what PostgreSQL 16 and later
	// need; forcing it runs that path through the suite on any server.
	for _, seek := range []bool{false, true} {
		t.Run(fmt.Sprintf("seek grantors=%v", seek), func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, 20).leastPrivilege(t)
			providertest.Run(t, providertest.Harness{
				Open: func(t *testing.T) providers.Provider {
					p := f.open(t, nil, nil)
					p.alwaysSeekGrantors = seek
					return p
				},
				Roles:            []string{"reader", "writer"},
				Principals:       f.principals,
				MissingPrincipal: f.prefix + "_nobody",
				OpenWithTarget: func(t *testing.T, target string) (providers.Provider, error) {
					cfg := f.config(nil)
					cfg.Roles = map[string]gitgrant.RoleConfig{"hostile": {Target: target}}
					return Open(t.Context(), cfg, depsWith(f.dsn))
				},
				Down: func(t *testing.T) (providers.Provider, error) {
					dsn := fmt.Sprintf("postgres://gitgrant:%s@127.0.0.1:%d/postgres?sslmode=disable&connect_timeout=5", downPassword, testenv.FreePort(t))
					return Open(t.Context(), f.config(nil), depsWith(dsn))
				},
				Secrets: []string{downPassword},
			})
		})
	}
}

func TestRevokeRemovesMembershipGrantedByAnotherRole(t *testing.T) {
	t.Parallel()
	for _, seek := range []bool{false, true} {
		t.Run(fmt.Sprintf("seek grantors=%v", seek), func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, 1)
			dba := f.prefix + ` "dba"`
			f.mustExec(t, "CREATE ROLE "+quote(dba)+" CREATEROLE")
			f.mustExec(t, "GRANT "+quote(f.groups["writer"])+" TO "+quote(dba)+" WITH ADMIN OPTION")
			f.mustExec(t, "SET ROLE "+quote(dba))
			f.mustExec(t, "GRANT "+quote(f.groups["writer"])+" TO "+quote(f.principals[0]))
			f.mustExec(t, "RESET ROLE")
			ctx := t.Context()
			rows, err := f.admin.Query(ctx, grantorsSQL, quote(f.groups["writer"]), quote(f.principals[0]))
			if err != nil {
				t.Fatal(err)
			}
			grantors, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if diff := cmp.Diff([]string{dba}, grantors); diff != "" || err != nil {
				t.Fatalf("grantorsSQL: %v (-want +got):\n%s", err, diff)
			}
			p := f.open(t, nil, nil)
			defer p.Close()
			p.alwaysSeekGrantors = seek
			for range 2 { // the second finds nothing to revoke
				if err := p.Revoke(ctx, "writer", f.principals[0]); err != nil {
					t.Fatalf("Revoke: %v", err)
				}
			}
			ms, err := p.Members(ctx, "writer")
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]providers.Member{{Principal: dba}}, ms); diff != "" {
				t.Errorf("members (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRevokeTerminatesSessions(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 2)
	victim, bystander := f.principals[0], f.principals[1]
	victimConn, bystanderConn := f.connectAs(t, victim), f.connectAs(t, bystander)
	p := f.open(t, map[string]any{"terminate_sessions": true}, nil)
	defer p.Close()
	providertest.CheckRevokeEndsSessions(t, p, "reader", victim, victimConn.Ping, bystanderConn.Ping)
}

func TestCheckReportsMissingGroupAndPermissions(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 1)
	weak := f.prefix + "_weak"
	f.mustExec(t, "CREATE ROLE "+quote(weak)+" LOGIN")
	cfg := f.config(map[string]any{"terminate_sessions": true})
	cfg.Roles["ghost"] = gitgrant.RoleConfig{Target: f.prefix + "_ghost"}
	pc, err := pgx.ParseConfig(f.dsn)
	if err != nil {
		t.Fatal(err)
	}
	weakDSN := fmt.Sprintf("postgres://%s@%s:%d/%s?sslmode=disable", strings.ReplaceAll(weak, " ", "%20"), pc.Host, pc.Port, pc.Database)
	p, err := open(t.Context(), cfg, depsWith(weakDSN), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	err = p.Check(t.Context())
	if err == nil {
		t.Fatal("Check succeeded for a role that can grant nothing")
	}
	for _, want := range []string{`group role "` + f.prefix + `_ghost" does not exist`, "cannot grant", "pg_signal_backend"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Check error %q does not mention %q", err, want)
		}
	}
	// The weak role cannot grant: that is a system error, not "not found".
	err = p.Grant(t.Context(), providers.Grant{Role: "reader", Principal: f.principals[0]})
	var sys *gitgrant.SystemError
	if !errors.As(err, &sys) || errors.Is(err, providers.ErrNotFound) {
		t.Errorf("Grant without permission: err = %v, want a *gitgrant.SystemError", err)
	}
}

func TestOpenRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		settings map[string]any
		getenv   map[string]string
		target   string
		want     string
	}{
		{"unset variable", map[string]any{"dsn_env": "NOPE"}, nil, "", "NOPE"},
		{"no dsn", map[string]any{}, nil, "", "set dsn_env or dsn_file"},
		{"unparsable dsn", map[string]any{"dsn_env": "D"}, map[string]string{"D": "postgres://u:sekret@host:notaport/db"}, "", "cannot be parsed"},
		{"too long target", map[string]any{"dsn_env": "D"}, map[string]string{"D": "postgres://localhost/db"}, strings.Repeat("x", 64), "at most 63"},
		{"reserved target", map[string]any{"dsn_env": "D"}, map[string]string{"D": "postgres://localhost/db"}, "PUBLIC", "reserved"},
		{"unknown setting", map[string]any{"dsn_env": "D", "dsn": "postgres://u:sekret@localhost/db"}, map[string]string{"D": "postgres://localhost/db"}, "", "unknown setting \"dsn\""},
		{"setting of another type", map[string]any{"dsn_env": "D", "terminate_sessions": "yes"}, map[string]string{"D": "postgres://localhost/db"}, "", "terminate_sessions must be true or false"},
		{"both dsn_env and dsn_file", map[string]any{"dsn_env": "D", "dsn_file": "/run/dsn"}, map[string]string{"D": "postgres://localhost/db"}, "", "not both"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := gitgrant.ProviderConfig{Name: "pg", Type: Type, Roles: map[string]gitgrant.RoleConfig{"r": {Target: tt.target}}, Settings: tt.settings}
			deps := providers.DefaultDeps()
			deps.Getenv = func(k string) string { return tt.getenv[k] }
			p, err := Open(context.Background(), cfg, deps)
			if err == nil {
				p.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "sekret") {
				t.Errorf("error %q: want it to mention %q and no password", err, tt.want)
			}
		})
	}
}

// countWrites counts what the client sends: pgconn flushes each request
// (a statement, or a pipeline up to its Sync) with one Write, so writes
// are round trips.
func countWrites(writes *providertest.Writes) func(*pgxpool.Config) {
	return func(c *pgxpool.Config) { c.ConnConfig.DialFunc = writes.Dial }
}

// TestRoundTrips pins what each call costs on the wire: one round trip, as
// the statement psql would send for it, also where PostgreSQL 16's grantor
// rows need a look.
func TestRoundTrips(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 3)
	var writes providertest.Writes
	p := f.open(t, nil, countWrites(&writes))
	defer p.Close()
	ctx := t.Context()
	for _, pr := range f.principals {
		if err := p.Grant(ctx, providers.Grant{Role: "reader", Principal: pr}); err != nil {
			t.Fatal(err)
		}
	}
	seeking := f.open(t, nil, countWrites(&writes))
	defer seeking.Close()
	seeking.alwaysSeekGrantors = true
	if _, err := seeking.Members(ctx, "reader"); err != nil { // connect
		t.Fatal(err)
	}
	writes.CheckCosts(t, []providertest.Cost{
		{Name: "members of a role with three members", Want: 1, Do: func() error { _, err := p.Members(ctx, "reader"); return err }},
		{Name: "members of an empty role", Want: 1, Do: func() error { _, err := p.Members(ctx, "writer"); return err }},
		{Name: "grant", Want: 1, Do: func() error { return p.Grant(ctx, providers.Grant{Role: "writer", Principal: f.principals[0]}) }},
		{Name: "grant again", Want: 1, Do: func() error { return p.Grant(ctx, providers.Grant{Role: "writer", Principal: f.principals[0]}) }},
		{Name: "revoke", Want: 1, Do: func() error { return p.Revoke(ctx, "writer", f.principals[0]) }},
		{Name: "revoke what is gone", Want: 1, Do: func() error { return p.Revoke(ctx, "writer", f.principals[0]) }},
		{Name: "revoke, seeking other grantors", Want: 1, Do: func() error { return seeking.Revoke(ctx, "reader", f.principals[1]) }},
		{Name: "revoke what is gone, seeking other grantors", Want: 1, Do: func() error { return seeking.Revoke(ctx, "reader", f.principals[1]) }},
	})
}

// BenchmarkGrantRevoke1000 grants one group role to 1,000 login roles and
// revokes it again through the provider, one call each as the reconciler
// makes them, side by side with its floors: the same 2,000 statements from
// psql -f in one session, and from pgx on one connection. Each side
// connects once per iteration (psql starts, the provider opens its pool),
// so none gets a warm connection the others lack.
func BenchmarkGrantRevoke1000(b *testing.B) {
	psql := testenv.Client(b, "psql", "install postgresql-client")
	f := newFixture(b, 1000)
	group := f.groups["reader"]
	var statements []string
	for _, pr := range f.principals {
		statements = append(statements, grantSQL(group, pr))
	}
	for _, pr := range f.principals {
		statements = append(statements, revokeSQL(group, pr))
	}
	file := filepath.Join(b.TempDir(), "grant-revoke.sql")
	if err := os.WriteFile(file, []byte(strings.Join(statements, ";\n")+";\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	floor := providertest.Floor{Clients: []providertest.Client{
		{Name: "psql", Run: func() error {
			out, err := exec.Command(psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", f.dsn, "-f", file).CombinedOutput()
			if err != nil {
				return fmt.Errorf("%w\n%s", err, out)
			}
			return nil
		}},
		{Name: "pgx", Run: func() error {
			ctx := context.Background()
			conn, err := pgx.Connect(ctx, f.dsn)
			if err != nil {
				return err
			}
			defer conn.Close(ctx)
			for _, s := range statements {
				if _, err := conn.Exec(ctx, s); err != nil {
					return err
				}
			}
			return nil
		}},
	}}
	for b.Loop() {
		floor.Compare(b, func() providers.Provider { return f.open(b, nil, nil) }, "reader", f.principals, time.Time{})
	}
	floor.Report(b)
}

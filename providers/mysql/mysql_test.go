package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/testing/testenv"
	"github.com/gitgrant/gitgrant/providers"
	"github.com/gitgrant/gitgrant/providers/providertest"
	drv "github.com/go-sql-driver/mysql"
	"github.com/google/go-cmp/cmp"
)

const downPassword = "hunter2-do-not-print"

// eventScheduler turns the server's event scheduler on for the test and
// restores it afterwards.
func eventScheduler(t *testing.T, f *fixture) {
	var before string
	if err := f.admin.QueryRow("SELECT @@global.event_scheduler").Scan(&before); err != nil {
		t.Fatal(err)
	}
	f.mustExec(t, "SET GLOBAL event_scheduler = ON")
	t.Cleanup(func() {
		if !strings.EqualFold(before, "ON") {
			f.admin.Exec("SET GLOBAL event_scheduler = " + before)
		}
	})
}

func TestConformance(t *testing.T) {
	for _, native := range []bool{false, true} {
		t.Run(fmt.Sprintf("native_expiry=%v", native), func(t *testing.T) {
			f := newFixture(t, 20)
			settings := map[string]any{}
			if native {
				eventScheduler(t, f)
				settings = map[string]any{"native_expiry": true, "event_schema": f.schema}
			}
			providertest.Run(t, providertest.Harness{
				Open:             func(t *testing.T) providers.Provider { return f.open(t, settings) },
				Roles:            []string{"reader", "writer"},
				Principals:       f.principals,
				MissingPrincipal: f.prefix + "_nobody",
				HostileNames:     []string{"'a'@'b'@'c'", "'unterminated@'%'", "'x'@''", "'x'@'' OR ''=''", `a\'b`},
				OpenWithTarget: func(t *testing.T, target string) (providers.Provider, error) {
					cfg := f.config(settings)
					cfg.Roles = map[string]gitgrant.RoleConfig{"hostile": {Target: target}}
					return Open(t.Context(), cfg, depsWith(f.gitgrantDSN))
				},
				Down: func(t *testing.T) (providers.Provider, error) {
					dsn := fmt.Sprintf("gitgrant:%s@tcp(127.0.0.1:%d)/%s?timeout=5s", downPassword, testenv.FreePort(t), f.schema)
					return Open(t.Context(), f.config(settings), depsWith(dsn))
				},
				Secrets:    []string{downPassword},
				ExpiryLead: 3 * time.Second,
			})
		})
	}
}

func TestRevokeDropsExpiryEvent(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 1)
	p := f.open(t, map[string]any{"native_expiry": true, "event_schema": f.schema})
	defer p.Close()
	ctx := t.Context()
	events := func() []string {
		names, err := f.column("SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ?", f.schema)
		if err != nil {
			t.Fatal(err)
		}
		return names
	}
	a, _ := parsePrincipal(f.principals[0])
	want := []string{eventName(f.roles["reader"], a)}
	until := time.Now().Add(time.Hour)
	for range 2 { // the second grant replaces the event
		if err := p.Grant(ctx, providers.Grant{Role: "reader", Principal: f.principals[0], Until: until}); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, events()); diff != "" {
			t.Fatalf("events after grant (-want +got):\n%s", diff)
		}
	}
	if err := p.Revoke(ctx, "reader", f.principals[0]); err != nil {
		t.Fatal(err)
	}
	if got := events(); len(got) != 0 {
		t.Errorf("events after revoke: %v", got)
	}
	if err := p.Grant(ctx, providers.Grant{Role: "reader", Principal: f.principals[0], Until: time.Now().Add(-time.Minute)}); err == nil {
		t.Errorf("a grant that expired already was accepted")
	}
}

func TestRevokeTerminatesSessions(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 3)
	victim, bystander := f.principals[0], f.principals[2] // both @'%'
	connect := func(principal string) *sql.Conn { return session(t, login(t, principal, 1)) }
	victimConn, bystanderConn := connect(victim), connect(bystander)
	f.mustExec(t, "GRANT PROCESS, CONNECTION ADMIN ON *.* TO "+literal(f.prefix+"_gitgrant")+"@'%'")
	p := f.open(t, map[string]any{"terminate_sessions": true})
	if err := p.Check(t.Context()); err != nil {
		t.Errorf("Check with PROCESS and CONNECTION ADMIN: %v", err)
	}
	defer p.Close()
	providertest.CheckRevokeEndsSessions(t, p, "reader", victim, victimConn.PingContext, bystanderConn.PingContext)
}

func TestCheck(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 1)
	cfg := f.config(map[string]any{"native_expiry": true, "event_schema": f.prefix + "_missing", "terminate_sessions": true})
	cfg.Roles["ghost"] = gitgrant.RoleConfig{Target: f.prefix + "_ghost"}
	p, err := Open(t.Context(), cfg, depsWith(f.gitgrantDSN))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	err = p.(providers.Checker).Check(t.Context())
	for _, want := range []string{f.prefix + "_ghost", "does not exist", "event_schema", "lacks PROCESS"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Check error %v does not mention %q", err, want)
		}
	}
	if !errors.Is(err, providers.ErrNotFound) {
		t.Errorf("Check error %v does not wrap ErrNotFound for the missing role", err)
	}
}

func TestPrincipalSyntax(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in        string
		want      account
		canonical string
		bad       bool
	}{
		{in: "alice", want: account{"alice", "%"}, canonical: "alice"},
		{in: "'alice'@'%'", want: account{"alice", "%"}, canonical: "alice"},
		{in: "'alice'@'10.0.%'", want: account{"alice", "10.0.%"}, canonical: "'alice'@'10.0.%'"},
		{in: "'o''brien'@'localhost'", want: account{"o'brien", "localhost"}, canonical: "'o''brien'@'localhost'"},
		{in: "'a@b'@'%'", want: account{"a@b", "%"}, canonical: "'a@b'@'%'"},
		{in: "ünïcødé", want: account{"ünïcødé", "%"}, canonical: "ünïcødé"},
		// Every spelling MySQL's documentation uses reads as the one
		// account Members reports: user names keep their case, host
		// names do not.
		{in: `"alice"@"%"`, want: account{"alice", "%"}, canonical: "alice"},
		{in: "`alice`@`%`", want: account{"alice", "%"}, canonical: "alice"},
		{in: `'alice'@"10.0.%"`, want: account{"alice", "10.0.%"}, canonical: "'alice'@'10.0.%'"},
		{in: "'Alice'@'LOCALHOST'", want: account{"Alice", "localhost"}, canonical: "'Alice'@'localhost'"},
		{in: "'ALICE'@'%'", want: account{"ALICE", "%"}, canonical: "ALICE"},
		{in: "'alice'@'Host.Example.ORG'", want: account{"alice", "host.example.org"}, canonical: "'alice'@'host.example.org'"},
		{in: `"o""brien"@'%'`, want: account{`o"brien`, "%"}, canonical: `'o"brien'@'%'`},
		{in: "`semi;colon ``tick```@'%'", want: account{"semi;colon `tick`", "%"}, canonical: "'semi;colon `tick`'@'%'"},
		{in: `a"b`, bad: true},
		{in: "a`b", bad: true},
		{in: "'alice'@%", bad: true},
		{in: `'alice"@'%'`, bad: true},
		{in: "alice@example.com", bad: true},
		{in: "o'brien", bad: true},
		{in: "'alice'", bad: true},
		{in: "'alice'@'%' OR 1=1", bad: true},
		{in: "'some_role'@''", want: account{"some_role", ""}, canonical: "'some_role'@''"},
		{in: `back\slash`, bad: true},
		{in: "emoji\U0001F600", bad: true},
		{in: strings.Repeat("a", 129), bad: true},
		{in: "", bad: true},
	}
	for _, tt := range tests {
		a, err := parsePrincipal(tt.in)
		if tt.bad {
			if !errors.Is(err, providers.ErrInvalidName) {
				t.Errorf("parsePrincipal(%q) = %v, %v; want ErrInvalidName", tt.in, a, err)
			}
			continue
		}
		if err != nil || a != tt.want || a.String() != tt.canonical {
			t.Errorf("parsePrincipal(%q) = %#v (%s), %v; want %#v (%s)", tt.in, a, a, err, tt.want, tt.canonical)
		}
		if back, err := parsePrincipal(a.String()); err != nil || back != a {
			t.Errorf("%q does not read back: %v, %v", a.String(), back, err)
		}
	}
}

// TestRoundTrips pins what each call costs on the wire: the statement the
// mariadb client would send for it, and with native expiry the event's
// statement beside it.
func TestRoundTrips(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 2)
	var writes providertest.Writes
	count := func(c *drv.Config) { c.DialFunc = writes.Dial }
	ctx := t.Context()
	plain := f.openTweaked(t, nil, count)
	defer plain.Close()
	native := f.openTweaked(t, map[string]any{"native_expiry": true, "event_schema": f.schema}, count)
	defer native.Close()
	for _, p := range []*Provider{plain, native} { // connect, learn the dialect
		if _, err := p.Members(ctx, "reader"); err != nil {
			t.Fatal(err)
		}
	}
	until := time.Now().Add(time.Hour)
	alice, bob := f.principals[0], f.principals[1]
	writes.CheckCosts(t, []providertest.Cost{
		{Name: "grant", Want: 1, Do: func() error { return plain.Grant(ctx, providers.Grant{Role: "reader", Principal: alice}) }},
		{Name: "grant again", Want: 1, Do: func() error { return plain.Grant(ctx, providers.Grant{Role: "reader", Principal: alice}) }},
		{Name: "revoke", Want: 1, Do: func() error { return plain.Revoke(ctx, "reader", alice) }},
		{Name: "revoke what is gone", Want: 1, Do: func() error { return plain.Revoke(ctx, "reader", alice) }},
		{Name: "grant with an expiry event", Want: 2, Do: func() error {
			return native.Grant(ctx, providers.Grant{Role: "reader", Principal: bob, Until: until})
		}},
		{Name: "revoke and drop the event", Want: 2, Do: func() error { return native.Revoke(ctx, "reader", bob) }},
	})
}

// BenchmarkGrantRevoke1000 grants one role to 1,000 accounts and revokes it
// again through the provider, one call each as the reconciler makes them,
// side by side with its floors: the same statements from the mariadb
// client in one session, and from go-sql-driver on one connection (with
// native expiry, each grant's CREATE OR REPLACE EVENT and each revoke's
// DROP EVENT too). All connect as gitgrant's account.
func BenchmarkGrantRevoke1000(b *testing.B) {
	client := testenv.Client(b, "mariadb", "install mariadb-client")
	f := newFixture(b, 1000)
	cfg, err := drv.ParseDSN(f.gitgrantDSN)
	if err != nil {
		b.Fatal(err)
	}
	host, port, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		b.Fatal(err)
	}
	for _, native := range []bool{false, true} {
		b.Run(fmt.Sprintf("native_expiry=%v", native), func(b *testing.B) {
			settings := map[string]any{}
			if native {
				settings = map[string]any{"native_expiry": true, "event_schema": f.schema}
			}
			until := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
			statements := f.statements(b, f.open(b, settings), native, until)
			floor := providertest.Floor{Clients: []providertest.Client{
				{Name: "mariadb", Run: func() error {
					cmd := exec.Command(client, "--no-defaults", "--batch", "--default-character-set=utf8mb4",
						"--host="+host, "--port="+port, "--user="+cfg.User, cfg.DBName)
					cmd.Stdin = strings.NewReader(strings.Join(statements, ";\n") + ";\n")
					if out, err := cmd.CombinedOutput(); err != nil {
						return fmt.Errorf("%w\n%s", err, out)
					}
					return nil
				}},
				{Name: "go-sql-driver", Run: func() error {
					db, err := sql.Open("mysql", f.gitgrantDSN)
					if err != nil {
						return err
					}
					defer db.Close()
					conn, err := db.Conn(context.Background())
					if err != nil {
						return err
					}
					defer conn.Close()
					for _, s := range statements {
						if _, err := conn.ExecContext(context.Background(), s); err != nil {
							return err
						}
					}
					return nil
				}},
			}}
			for b.Loop() {
				floor.Compare(b, func() providers.Provider { return f.open(b, settings) }, "reader", f.principals, until)
			}
			floor.Report(b)
		})
	}
}

// statements are what p sends to grant the fixture's reader role to every
// principal and then revoke it, after the time zone it sets on connecting
// (event times are written in UTC).
func (f *fixture) statements(b testing.TB, p *Provider, native bool, until time.Time) []string {
	defer p.Close()
	maria, err := p.isMariaDB(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	role := f.roles["reader"]
	var grants, revokes []string
	for _, pr := range f.principals {
		a, err := parsePrincipal(pr)
		if err != nil {
			b.Fatal(err)
		}
		if native {
			if !maria {
				grants = append(grants, p.dropEventSQL(role, a))
			}
			grants = append(grants, p.createEventSQL(maria, role, a, until))
		}
		grants = append(grants, grantSQL(role, a))
		revokes = append(revokes, revokeSQL(role, a))
		if native {
			revokes = append(revokes, p.dropEventSQL(role, a))
		}
	}
	return slices.Concat([]string{"SET time_zone = '+00:00'"}, grants, revokes)
}

// A role granted to a role is a member too (drift), reported as the role
// name quoted with an empty host, and revocable in that form.
func TestRoleGrantedToRole(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 0)
	inner := f.prefix + "_inner"
	f.mustExec(t, "CREATE ROLE "+ident(inner))
	t.Cleanup(func() { f.admin.Exec("DROP ROLE IF EXISTS " + ident(inner)) })
	// Only gitgrant's account administers the fixture's roles.
	as, err := sql.Open("mysql", f.gitgrantDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer as.Close()
	if _, err := as.Exec("GRANT " + ident(f.roles["reader"]) + " TO " + ident(inner)); err != nil {
		t.Fatal(err)
	}
	p := f.open(t, nil)
	defer p.Close()
	ctx := t.Context()
	ms, err := p.Members(ctx, "reader")
	if err != nil {
		t.Fatal(err)
	}
	principal := "'" + inner + "'@''"
	if diff := cmp.Diff([]providers.Member{{Principal: principal}}, ms); diff != "" {
		t.Fatalf("members (-want +got):\n%s", diff)
	}
	if err := p.Revoke(ctx, "reader", principal); err != nil {
		t.Fatal(err)
	}
	if ms, err := p.Members(ctx, "reader"); err != nil || len(ms) != 0 {
		t.Errorf("after revoke: members %v, %v; want none", ms, err)
	}
}

// Whatever spelling of an account gitgrant.yaml uses, CanonicalPrincipal
// turns it into the principal Members reports once it is granted, and
// Grant and Revoke act on that one account.
func TestCanonicalPrincipalIsWhatMembersReports(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 0)
	mixed, plain := f.prefix+"_Mixed", f.prefix+"_plain"
	for _, a := range []account{{mixed, "localhost"}, {plain, "%"}} {
		f.mustExec(t, "CREATE USER "+a.sql())
		t.Cleanup(func() { f.admin.Exec("DROP USER IF EXISTS " + a.sql()) })
	}
	p := f.open(t, nil)
	defer p.Close()
	ctx := t.Context()
	tests := []struct{ spelled, members string }{
		{"'" + mixed + "'@'LOCALHOST'", "'" + mixed + "'@'localhost'"},
		{"`" + mixed + "`@`LocalHost`", "'" + mixed + "'@'localhost'"},
		{"'" + plain + "'@'%'", plain},
		{`"` + plain + `"@"%"`, plain},
		{plain, plain},
	}
	for _, tt := range tests {
		canonical, err := p.CanonicalPrincipal(tt.spelled)
		if err != nil || canonical != tt.members {
			t.Errorf("CanonicalPrincipal(%s) = %q, %v; want %q", tt.spelled, canonical, err, tt.members)
		}
		if err := p.Grant(ctx, providers.Grant{Role: "reader", Principal: tt.spelled}); err != nil {
			t.Fatalf("Grant(%s): %v", tt.spelled, err)
		}
		ms, err := p.Members(ctx, "reader")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]providers.Member{{Principal: tt.members}}, ms); diff != "" {
			t.Errorf("members after granting %s (-want +got):\n%s", tt.spelled, diff)
		}
		if err := p.Revoke(ctx, "reader", tt.spelled); err != nil {
			t.Fatalf("Revoke(%s): %v", tt.spelled, err)
		}
		if ms, err := p.Members(ctx, "reader"); err != nil || len(ms) != 0 {
			t.Errorf("members after revoking %s: %v, %v; want none", tt.spelled, ms, err)
		}
	}
	if _, err := p.CanonicalPrincipal("alice@example.com"); !errors.Is(err, providers.ErrInvalidName) {
		t.Errorf("CanonicalPrincipal(alice@example.com) = %v; want ErrInvalidName", err)
	}
}

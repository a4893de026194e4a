package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
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

// ephemeralFixture is a fixture whose reader role is ephemeral and may
// read (not write) a table, with gitgrant's account holding what
// ephemeral roles need besides the roles: CREATE USER, and PROCESS and
// CONNECTION ADMIN to end connections.
type ephemeralFixture struct {
	*fixture
	table  string
	prefix string
	p      *Provider
}

func newEphemeralFixture(t *testing.T) *ephemeralFixture {
	t.Helper()
	f := newFixture(t, 0)
	e := &ephemeralFixture{fixture: f, table: ident(f.schema) + ".orders", prefix: f.prefix + "_r_"}
	f.mustExec(t, "CREATE TABLE "+e.table+" (id INT PRIMARY KEY, item TEXT)")
	f.mustExec(t, "INSERT INTO "+e.table+" VALUES (1, 'book')")
	f.mustExec(t, "GRANT SELECT ON "+e.table+" TO "+ident(f.roles["reader"]))
	f.mustExec(t, "GRANT CREATE USER, PROCESS, CONNECTION ADMIN ON *.* TO "+literal(f.prefix+"_gitgrant")+"@'%'")
	e.p = e.open(t)
	t.Cleanup(func() {
		// Whatever a failed test left behind.
		users, err := f.column("SELECT User FROM mysql.user WHERE LEFT(User, ?) = ?", len(f.prefix), f.prefix)
		if err != nil {
			return
		}
		for _, u := range users {
			f.admin.Exec("DROP USER IF EXISTS " + literal(u) + "@'%'")
		}
	})
	return e
}

func (e *ephemeralFixture) config() gitgrant.ProviderConfig {
	cfg := e.fixture.config(map[string]any{"event_schema": e.schema})
	r := cfg.Roles["reader"]
	r.Mode, r.AccountPrefix = gitgrant.ModeEphemeral, e.prefix
	cfg.Roles["reader"] = r
	return cfg
}

func (e *ephemeralFixture) open(t *testing.T) *Provider {
	t.Helper()
	p, err := open(e.config(), depsWith(e.gitgrantDSN), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// connectAs opens one connection as the account with password.
func connectAs(t *testing.T, a providers.Account, password string) (*sql.Conn, error) {
	t.Helper()
	cfg := drv.NewConfig()
	cfg.Net, cfg.Addr, cfg.User, cfg.Passwd = "tcp", fmt.Sprintf("%s:%d", a.Connect.Host, a.Connect.Port), a.Name, password
	cfg.Timeout = 5 * time.Second
	conn, err := drv.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	c, err := db.Conn(t.Context())
	if err != nil {
		return nil, err
	}
	if err := c.PingContext(t.Context()); err != nil {
		return nil, err
	}
	return c, nil
}

func (e *ephemeralFixture) events(t *testing.T) map[string]time.Time {
	t.Helper()
	rows, err := e.admin.Query("SELECT EVENT_NAME, EXECUTE_AT FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ?", e.schema)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]time.Time{}
	for rows.Next() {
		var n string
		var at []byte
		if err := rows.Scan(&n, &at); err != nil {
			t.Fatal(err)
		}
		ts, err := time.Parse(time.DateTime, string(at))
		if err != nil {
			t.Fatal(err)
		}
		out[n] = ts
	}
	return out
}

func (e *ephemeralFixture) userExists(t *testing.T, name string) bool {
	t.Helper()
	var n int
	if err := e.admin.QueryRow("SELECT COUNT(*) FROM mysql.user WHERE User = ?", name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n > 0
}

// The whole life of an ephemeral account: the server checks its password,
// its role is active at login and allows what the role allows and no
// more, an EVENT will drop it at until, it is an account and not a member,
// and after DropAccount it is gone with its connection and its event.
func TestEphemeralAccountLifecycle(t *testing.T) {
	t.Parallel()
	e := newEphemeralFixture(t)
	ctx := t.Context()
	until := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	a := providertest.CreateAccount(t, e.p, "reader", until)
	name := a.Name
	if want := (providers.Connection{Host: "127.0.0.1", Port: 3306, Kind: "mysql"}); a.Connect != want {
		t.Errorf("account %v: Connect = %+v, want %+v", a, a.Connect, want)
	}
	if _, err := e.p.CreateAccount(ctx, "reader", name, until); err == nil || !strings.Contains(err.Error(), "exists already") {
		t.Errorf("creating it twice: %v", err)
	}
	for _, wrong := range []string{"", "guess", a.Secret[:39]} {
		if _, err := connectAs(t, a, wrong); err == nil || !strings.Contains(err.Error(), "Access denied") {
			t.Errorf("logging in with a wrong password: %v, want access denied", err)
		}
	}
	conn, err := connectAs(t, a, a.Secret)
	if err != nil {
		t.Fatalf("logging in with the secret: %v", err)
	}
	var item string
	if err := conn.QueryRowContext(ctx, "SELECT item FROM "+e.table+" WHERE id = 1").Scan(&item); err != nil || item != "book" {
		t.Errorf("SELECT as the account (its role active at login): %q, %v", item, err)
	}
	if _, err := conn.ExecContext(ctx, "INSERT INTO "+e.table+" VALUES (2, 'pen')"); err == nil {
		t.Error("the account could write, which the role does not allow")
	}
	if diff := cmp.Diff(map[string]time.Time{dropEventName(newAccount(name, "%")): until}, e.events(t)); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	accounts, err := e.p.Accounts(ctx, "reader")
	if err != nil || !cmp.Equal([]string{name}, accounts) {
		t.Errorf("Accounts = %v, %v; want [%s]", accounts, err, name)
	}
	if members, err := e.p.Members(ctx, "reader"); err != nil || len(members) != 0 {
		t.Errorf("Members = %v, %v; an ephemeral account is not a member to reconcile", members, err)
	}

	if err := e.p.DropAccount(ctx, "reader", name); err != nil {
		t.Fatalf("DropAccount: %v", err)
	}
	if err := conn.PingContext(ctx); err == nil {
		t.Error("the account's connection still answers after DropAccount")
	}
	if e.userExists(t, name) || len(e.events(t)) != 0 {
		t.Errorf("after DropAccount: user exists %v, events %v", e.userExists(t, name), e.events(t))
	}
	if err := e.p.DropAccount(ctx, "reader", name); err != nil {
		t.Errorf("dropping what is gone: %v, want success", err)
	}
}

// With gitgrant down, the EVENT drops the account at until and kills its
// connection. Not parallel: it turns the server's event scheduler on.
func TestEphemeralAccountExpiresByItself(t *testing.T) {
	e := newEphemeralFixture(t)
	eventScheduler(t, e.fixture)
	ctx := t.Context()
	until := time.Now().Add(2 * time.Second)
	a := providertest.CreateAccount(t, e.p, "reader", until)
	conn, err := connectAs(t, a, a.Secret)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for e.userExists(t, a.Name) && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	if e.userExists(t, a.Name) {
		t.Fatal("the account outlived its expiry event")
	}
	if err := conn.PingContext(ctx); err == nil {
		t.Error("the account's connection outlived its expiry event")
	}
	if _, err := connectAs(t, a, a.Secret); err == nil {
		t.Error("the secret still logs in")
	}
	if err := e.p.DropAccount(ctx, "reader", a.Name); err != nil {
		t.Errorf("dropping an account the event dropped: %v", err)
	}
}

// TestHelperCreateThenDie is the process that
// TestEphemeralKilledBetweenCreateAndRecord kills.
func TestHelperCreateThenDie(t *testing.T) {
	providertest.CreateThenDie(t, func(args []string) (providers.Ephemeral, error) {
		dsn, prefix, role, schema := args[0], args[1], args[2], args[3]
		cfg := gitgrant.ProviderConfig{Name: "crash", Type: Type, Settings: map[string]any{"dsn_env": "MYTEST_DSN", "event_schema": schema},
			Roles: map[string]gitgrant.RoleConfig{"reader": {Target: role, Mode: gitgrant.ModeEphemeral, AccountPrefix: prefix}}}
		return open(cfg, depsWith(dsn), nil)
	})
}

// gitgrant is killed (kill -9) between creating an account and recording
// it: a later process lists it among the role's accounts and drops it;
// users that only look similar are never listed.
func TestEphemeralKilledBetweenCreateAndRecord(t *testing.T) {
	t.Parallel()
	e := newEphemeralFixture(t)
	created := providertest.CreatedByKilledProcess(t, e.gitgrantDSN, e.prefix, e.roles["reader"], e.schema)
	for _, a := range []account{{e.prefix + "Admin", "%"}, {e.prefix + "a_b", "%"}, {e.prefix + "abc", "localhost"}, {"x" + e.prefix + "abc", "%"}} {
		e.mustExec(t, "CREATE USER "+a.sql())
		t.Cleanup(func() { e.admin.Exec("DROP USER IF EXISTS " + a.sql()) })
	}
	providertest.CheckOrphanDropped(t, e.open(t), "reader", created) // a new process, knowing nothing of the dead one
	if len(e.events(t)) != 0 {
		t.Errorf("the orphan's event is left: %v", e.events(t))
	}
}

// An account that is the DEFINER of a view is shut out and kept, with
// what to do, until the view no longer needs it.
func TestEphemeralAccountDefiningAView(t *testing.T) {
	t.Parallel()
	e := newEphemeralFixture(t)
	ctx := t.Context()
	e.mustExec(t, "GRANT CREATE VIEW, SELECT ON "+ident(e.schema)+".* TO "+ident(e.roles["reader"]))
	// information_schema shows gitgrant only the views it may see.
	e.mustExec(t, "GRANT SHOW VIEW ON "+ident(e.schema)+".* TO "+literal(e.fixture.prefix+"_gitgrant")+"@'%'")
	a := providertest.CreateAccount(t, e.p, "reader", time.Now().Add(time.Hour))
	conn, err := connectAs(t, a, a.Secret)
	if err != nil {
		t.Fatal(err)
	}
	view := ident(e.schema) + ".books"
	if _, err := conn.ExecContext(ctx, "CREATE VIEW "+view+" AS SELECT item FROM "+e.table); err != nil {
		t.Fatal(err)
	}
	err = e.p.DropAccount(ctx, "reader", a.Name)
	if !errors.Is(err, providers.ErrOwnsObjects) || !strings.Contains(err.Error(), "view `"+e.schema+"`.`books`") {
		t.Fatalf("DropAccount = %v, want ErrOwnsObjects naming the view", err)
	}
	if err := conn.PingContext(ctx); err == nil {
		t.Error("the connection survived")
	}
	if _, err := connectAs(t, a, a.Secret); err == nil || !strings.Contains(err.Error(), "locked") {
		t.Errorf("logging in to the kept account: %v, want it locked", err)
	}
	if ms, err := e.p.Members(ctx, "reader"); err != nil || len(ms) != 0 {
		t.Errorf("members %v, %v", ms, err)
	}
	var grants int
	if err := e.admin.QueryRow("SELECT COUNT(*) FROM mysql.roles_mapping WHERE User = ?", a.Name).Scan(&grants); err != nil || grants != 0 {
		t.Errorf("the kept account holds %d roles (%v), want none", grants, err)
	}
	e.mustExec(t, "DROP VIEW "+view)
	if err := e.p.DropAccount(ctx, "reader", a.Name); err != nil || e.userExists(t, a.Name) {
		t.Errorf("once the view is gone: %v (exists %v)", err, e.userExists(t, a.Name))
	}
}

// MariaDB's general log records every statement: it never holds the
// password, which goes as its hash. Not parallel: it turns the log on.
func TestEphemeralPasswordNeverLogged(t *testing.T) {
	e := newEphemeralFixture(t)
	var generalLog, output string
	if err := e.admin.QueryRow("SELECT @@global.general_log, @@global.log_output").Scan(&generalLog, &output); err != nil {
		t.Fatal(err)
	}
	e.mustExec(t, "SET GLOBAL log_output = 'TABLE'")
	e.mustExec(t, "SET GLOBAL general_log = 'ON'")
	t.Cleanup(func() {
		e.admin.Exec("SET GLOBAL general_log = " + generalLog)
		e.admin.Exec("SET GLOBAL log_output = " + literal(output))
	})
	started := time.Now().Add(-time.Second)
	a := providertest.CreateAccount(t, e.p, "reader", time.Now().Add(time.Hour))
	defer e.p.DropAccount(context.Background(), "reader", a.Name)
	e.mustExec(t, "SET GLOBAL general_log = 'OFF'") // before the look, which names the password
	var created, leaked int
	err := e.admin.QueryRow(`SELECT COALESCE(SUM(CONVERT(argument USING utf8mb4) LIKE ?), 0), COALESCE(SUM(LOCATE(?, CONVERT(argument USING utf8mb4)) > 0), 0)
FROM mysql.general_log WHERE event_time >= ?`, "CREATE USER '"+a.Name+"'%IDENTIFIED BY PASSWORD%", a.Secret, started.Format(time.DateTime)).Scan(&created, &leaked)
	if err != nil {
		t.Fatal(err)
	}
	if created != 1 || leaked != 0 {
		t.Errorf("general log: %d CREATE USER statements with a hash (want 1), %d entries with the password (want 0)", created, leaked)
	}
}

func TestEphemeralRefusesOtherNames(t *testing.T) {
	t.Parallel()
	e := newEphemeralFixture(t)
	providertest.CheckRefusesOtherNames(t, e.p,
		[]string{"root", e.prefix, e.prefix + "ABC", e.prefix + "x'; DROP USER root; --", "gg_other_abc", e.prefix + strings.Repeat("a", 30)},
		"gg_w_abc")
}

func TestEphemeralSettingsRejected(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		role     gitgrant.RoleConfig
		settings map[string]any
		dsn      string
		want     string
	}{
		{"no event schema", gitgrant.RoleConfig{Mode: gitgrant.ModeEphemeral}, nil, "root@tcp(db:3306)/", "need a schema to hold the events"},
		{"prefix too long", gitgrant.RoleConfig{Mode: gitgrant.ModeEphemeral, AccountPrefix: "gg_much_too_long_pre_"}, nil, "root@tcp(db:3306)/app", "longer than the 32"},
		{"on_owned", gitgrant.RoleConfig{Mode: gitgrant.ModeEphemeral, OnOwned: gitgrant.OnOwnedReassign}, nil, "root@tcp(db:3306)/app", "on_owned does not apply"},
		{"account_host port", gitgrant.RoleConfig{Mode: gitgrant.ModeEphemeral}, map[string]any{"account_host": "db:port"}, "root@tcp(db:3306)/app", "1 to 65535"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			settings := map[string]any{"dsn_env": "MYTEST_DSN"}
			for k, v := range tt.settings {
				settings[k] = v
			}
			cfg := gitgrant.ProviderConfig{Name: "my", Type: Type, Roles: map[string]gitgrant.RoleConfig{"r": tt.role}, Settings: settings}
			if p, err := Open(t.Context(), cfg, depsWith(tt.dsn)); err == nil || !strings.Contains(err.Error(), tt.want) {
				if p != nil {
					p.Close()
				}
				t.Errorf("Open = %v, want an error with %q", err, tt.want)
			}
		})
	}
	// account_host replaces the DSN's host and port.
	cfg := gitgrant.ProviderConfig{Name: "my", Type: Type, Roles: map[string]gitgrant.RoleConfig{"r": {Mode: gitgrant.ModeEphemeral}},
		Settings: map[string]any{"dsn_env": "MYTEST_DSN", "account_host": "db.example.com:3307"}}
	p, err := open(cfg, depsWith("root@tcp(10.0.0.5:3306)/app"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if want := (providers.Connection{Host: "db.example.com", Port: 3307, Database: "app", Kind: "mysql"}); p.connect != want {
		t.Errorf("connect = %+v, want %+v", p.connect, want)
	}
}

func TestEphemeralCheck(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 0) // gitgrant's account without PROCESS or CONNECTION ADMIN
	cfg := f.config(map[string]any{"event_schema": f.schema})
	cfg.Roles["reader"] = gitgrant.RoleConfig{Target: f.roles["reader"], Mode: gitgrant.ModeEphemeral}
	p, err := open(cfg, depsWith(f.gitgrantDSN), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	err = p.Check(t.Context())
	for _, want := range []string{"ephemeral roles need PROCESS and CONNECTION ADMIN"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Check = %v, want it to say %q", err, want)
		}
	}
}

// The config's limit on account names is this provider's.
func TestEphemeralLimitsAgreeWithConfig(t *testing.T) {
	t.Parallel()
	providertest.CheckLoginLimit(t, Type, maxAccount)
}

func TestNativePasswordHash(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 0)
	var want string
	// PASSWORD() is MariaDB's (MySQL 8 removed it).
	if err := f.admin.QueryRow("SELECT PASSWORD('Pw0rdOfForty')").Scan(&want); err != nil {
		testenv.Unavailable(t, "PASSWORD()", "a MariaDB server", err)
	}
	if got := nativePasswordHash("Pw0rdOfForty"); got != want {
		t.Errorf("nativePasswordHash = %s, the server's PASSWORD() = %s", got, want)
	}
}

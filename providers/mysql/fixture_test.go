package mysql

import (
	"database/sql"
	"fmt"
	"testing"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/testing/testenv"
	"github.com/gitgrant/gitgrant/providers"
	"github.com/gitgrant/gitgrant/providers/providertest"
	drv "github.com/go-sql-driver/mysql"
)

// fixture is a set of uniquely named roles, accounts and an event schema
// on the test server, dropped when the test ends.
type fixture struct {
	dsn        string
	admin      *sql.DB
	prefix     string
	roles      map[string]string // gitgrant role -> database role
	principals []string
	schema     string
	// gitgrantDSN connects as a least-privileged account made for the
	// fixture; dsn as the server's administrator.
	gitgrantDSN string
}

func newFixture(t testing.TB, nPrincipals int) *fixture {
	t.Helper()
	dsn := testenv.MariaDBDSN(t)
	admin, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{dsn: dsn, admin: admin, prefix: providertest.UniquePrefix(), roles: map[string]string{}}
	f.schema = f.prefix + "_events"
	var accounts []account
	t.Cleanup(func() {
		for _, r := range f.roles {
			f.admin.Exec("DROP ROLE IF EXISTS " + ident(r))
		}
		for _, a := range accounts {
			f.admin.Exec("DROP USER IF EXISTS " + a.sql())
		}
		f.admin.Exec("DROP DATABASE IF EXISTS " + ident(f.schema))
		f.admin.Close()
	})
	f.roles["reader"] = f.prefix + "_reader"
	f.roles["writer"] = f.prefix + " writer `w`; --"
	// gitgrant's own account, with the least privileges the docs list: it
	// administers the roles (and so is their only holder at first), reads
	// the grant tables and keeps its events in the fixture's schema.
	gitgrantAccount := account{f.prefix + "_gitgrant", "%"}
	f.mustExec(t, "CREATE USER "+gitgrantAccount.sql())
	accounts = append(accounts, gitgrantAccount)
	for _, r := range f.roles {
		f.mustExec(t, "CREATE ROLE "+ident(r)+" WITH ADMIN "+gitgrantAccount.sql())
	}
	f.mustExec(t, "CREATE DATABASE "+ident(f.schema))
	for _, grant := range []string{"SELECT ON mysql.roles_mapping", "SELECT ON mysql.user", "EVENT ON " + ident(f.schema) + ".*"} {
		f.mustExec(t, "GRANT "+grant+" TO "+gitgrantAccount.sql())
	}
	cfg, err := drv.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.User, cfg.Passwd = gitgrantAccount.user, ""
	f.gitgrantDSN = cfg.FormatDSN()
	// Names that need quoting prove that they are quoted; some accounts
	// have a host, the others are user@'%', written as a plain user name.
	hostile := []string{`o'brien"; DROP USER root; --`, "ünïcødé ユーザー", "semi;colon `tick`"}
	for i := range nPrincipals {
		a := account{fmt.Sprintf("%s_u%04d", f.prefix, i), "%"}
		if i < len(hostile) {
			a.user = f.prefix + " " + hostile[i]
		}
		if i%3 == 1 {
			a.host = "localhost"
		}
		f.mustExec(t, "CREATE USER "+a.sql())
		accounts = append(accounts, a)
		f.principals = append(f.principals, a.String())
	}
	return f
}

func (f *fixture) mustExec(t testing.TB, q string) {
	t.Helper()
	if _, err := f.admin.Exec(q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// column runs q as the admin and returns the first column of its rows.
func (f *fixture) column(q string, args ...any) ([]string, error) {
	rows, err := f.admin.Query(q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		rows.Scan(&s)
		out = append(out, s)
	}
	return out, nil
}

// login opens a pool of at most conns connections that log in as
// principal, a test account without a password.
func login(t testing.TB, principal string, conns int) *sql.DB {
	t.Helper()
	a, _ := parsePrincipal(principal)
	db, err := sql.Open("mysql", fmt.Sprintf("%s@tcp(127.0.0.1:3306)/", a.user))
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(conns)
	t.Cleanup(func() { db.Close() })
	return db
}

// session takes one connection of db, closed when the test ends; a server
// that refuses the test accounts' logins makes the test unavailable.
func session(t testing.TB, db *sql.DB) *sql.Conn {
	t.Helper()
	c, err := db.Conn(t.Context())
	if err != nil {
		testenv.Unavailable(t, "a login as a test account", "the server must accept passwordless accounts from 127.0.0.1", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func (f *fixture) config(settings map[string]any) gitgrant.ProviderConfig {
	return providertest.Config(Type, "mytest", f.roles, map[string]any{"dsn_env": "MYTEST_DSN"}, settings)
}

func depsWith(dsn string) providers.Deps {
	return providertest.Deps(map[string]string{"MYTEST_DSN": dsn}, nil, nil)
}

func (f *fixture) open(t testing.TB, settings map[string]any) *Provider {
	t.Helper()
	return f.openTweaked(t, settings, nil)
}

func (f *fixture) openTweaked(t testing.TB, settings map[string]any, tweak func(*drv.Config)) *Provider {
	t.Helper()
	p, err := open(f.config(settings), depsWith(f.gitgrantDSN), tweak)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return p
}

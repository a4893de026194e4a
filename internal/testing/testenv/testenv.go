// Package testenv finds the real servers that integration tests talk to
// (PostgreSQL, MariaDB, slapd, git). Locally a missing server skips the test
// with a loud reason; in CI (CI=true) it fails the test instead, so that an
// integration test can never silently not run where it matters.
package testenv

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
)

// InCI reports whether tests run under CI, where missing servers are fatal.
func InCI() bool { return os.Getenv("CI") == "true" }

// Unavailable skips the test locally or fails it in CI, naming what is
// missing and how to provide it.
func Unavailable(t testing.TB, what, how string, err error) {
	t.Helper()
	msg := fmt.Sprintf("%s is not available (%v); %s", what, err, how)
	if InCI() {
		t.Fatalf("CI=true and %s", msg)
	}
	t.Skipf("SKIP (integration): %s", msg)
}

// RunThenStop runs m's tests, then stop, which ends the server they
// started (if any), and exits; a server that would not stop fails the run,
// and what prefixes the error.
func RunThenStop(m *testing.M, what string, stop func() error) {
	code := m.Run()
	if err := stop(); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", what, err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

func env(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// PostgresDSN returns the DSN of a reachable PostgreSQL server as a
// superuser: GITGRANT_TEST_POSTGRES_DSN, or the local trust-auth server.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	dsn := env("GITGRANT_TEST_POSTGRES_DSN", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err == nil {
		err = conn.Ping(ctx)
		conn.Close(ctx)
	}
	if err != nil {
		Unavailable(t, "PostgreSQL", "start it (.ci/run does) or set GITGRANT_TEST_POSTGRES_DSN", err)
	}
	return dsn
}

// MariaDBDSN returns a go-sql-driver DSN of a reachable MariaDB or MySQL
// server as an administrator: GITGRANT_TEST_MYSQL_DSN, or root on 127.0.0.1.
func MariaDBDSN(t testing.TB) string {
	t.Helper()
	dsn := env("GITGRANT_TEST_MYSQL_DSN", "root@tcp(127.0.0.1:3306)/")
	db, err := sql.Open("mysql", dsn)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = db.PingContext(ctx)
		cancel()
		db.Close()
	}
	if err != nil {
		Unavailable(t, "MariaDB", "start it (.ci/run does) or set GITGRANT_TEST_MYSQL_DSN", err)
	}
	return dsn
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Client returns the path of a target system's own command-line client
// (psql, mariadb, ldapmodify), which benchmarks run beside a provider as
// its floor. how says which package provides it.
func Client(t testing.TB, name, how string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		Unavailable(t, name, how, err)
	}
	return path
}

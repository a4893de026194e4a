package testenv

// A private PostgreSQL server that demands a password.
//
// The shared test server trusts every connection (pg_hba.conf: trust), so
// it cannot show that a password works, or that an expired one does not.
// ScramPostgres starts a server of its own from the installed binaries
// (pg_config --bindir, or GITGRANT_TEST_PG_BINDIR), initialised with
// initdb: TCP connections on 127.0.0.1 must authenticate with
// SCRAM-SHA-256, the Unix socket trusts the superuser "postgres" for the
// test's own set-up. PostgreSQL refuses to run as root, so under root the
// server runs as the system user "postgres". It is stopped, and its
// directory removed, when the test ends; should the test binary die
// first, the kernel kills it (process sets Pdeathsig).

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gitgrant/gitgrant/internal/testing/testenv/process"
	"github.com/jackc/pgx/v5"
)

// ScramServer is a running private PostgreSQL server.
type ScramServer struct {
	// AdminDSN connects as the superuser through the Unix socket,
	// without a password.
	AdminDSN string
	// Host and Port are its TCP address, where every login needs its
	// password.
	Host string
	Port int
	// Log is what the server has logged so far, every statement
	// included (log_statement=all).
	Log func() string
}

// ScramPostgres starts a private server for the test. Without the
// PostgreSQL server binaries it skips the test locally and fails it under
// CI=true.
func ScramPostgres(t testing.TB) ScramServer {
	t.Helper()
	bindir, err := postgresBindir()
	if err != nil {
		Unavailable(t, "the PostgreSQL server binaries (initdb, postgres)", "install postgresql (.ci/run does) or set GITGRANT_TEST_PG_BINDIR", err)
	}
	cred, err := postgresCredential()
	if err != nil {
		t.Fatalf("running PostgreSQL as root needs the system user postgres: %v", err)
	}
	dir, err := os.MkdirTemp("", "gitgrant-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	data, sock := filepath.Join(dir, "data"), filepath.Join(dir, "sock")
	for _, d := range []string{data, sock} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if cred != nil {
		for _, d := range []string{dir, data, sock} {
			if err := os.Chown(d, int(cred.Uid), int(cred.Gid)); err != nil {
				t.Fatal(err)
			}
		}
	}
	opts := process.Options{Credential: cred, Env: []string{"LC_ALL=C"}}
	if out, err := process.Command(opts, filepath.Join(bindir, "initdb"), "--pgdata="+data, "--username=postgres", "--auth-local=trust", "--auth-host=scram-sha-256",
		"--no-sync", "--encoding=UTF8", "--no-instructions").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	for attempt := 0; ; attempt++ {
		port := FreePort(t)
		proc, err := process.StartWith(opts, filepath.Join(bindir, "postgres"), "-D", data, "-p", strconv.Itoa(port), "-k", sock,
			"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "logging_collector=off", "-c", "log_statement=all")
		if err != nil {
			t.Fatal(err)
		}
		srv := ScramServer{
			AdminDSN: fmt.Sprintf("host=%s port=%d user=postgres dbname=postgres sslmode=disable", sock, port),
			Host:     "127.0.0.1", Port: port, Log: proc.Output,
		}
		err = proc.WaitReady("postgres", 20*time.Second, 50*time.Millisecond, stopGrace, func() error { return pingPostgres(srv.AdminDSN) })
		if err == nil {
			t.Cleanup(func() { proc.StopWith(syscall.SIGINT, stopGrace) }) // fast shutdown
			return srv
		}
		if attempt == 2 || !strings.Contains(proc.Output(), "could not bind") {
			t.Fatalf("postgres did not start: %v", err)
		}
		proc.Stop(stopGrace) // exited already, or about to
	}
}

// stopGrace is how long the server may take to shut down.
const stopGrace = 10 * time.Second

func pingPostgres(dsn string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	return conn.Close(context.Background())
}

func postgresBindir() (string, error) {
	if d := os.Getenv("GITGRANT_TEST_PG_BINDIR"); d != "" {
		return d, nil
	}
	var dir string
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		dir = strings.TrimSpace(string(out))
	}
	if _, err := os.Stat(filepath.Join(dir, "initdb")); dir == "" || err != nil {
		// Debian's pg_config may come from libpq-dev alone; the server's
		// binaries are under /usr/lib/postgresql/<major>/bin.
		found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
		if len(found) == 0 {
			return "", errors.New("no initdb next to pg_config --bindir or under /usr/lib/postgresql/*/bin")
		}
		dir = filepath.Dir(found[len(found)-1])
	}
	return dir, nil
}

// postgresCredential is who the server runs as: nil (the current user)
// unless that is root.
func postgresCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, err
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return nil, err
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return nil, err
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

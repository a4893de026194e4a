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
// first, the kernel kills it (Pdeathsig).

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

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

// syncBuffer is a bytes.Buffer that a process writes while a test reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
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
	run := func(name string, args ...string) *exec.Cmd {
		cmd := exec.Command(filepath.Join(bindir, name), args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL}
		cmd.Env = append(os.Environ(), "LC_ALL=C")
		return cmd
	}
	if out, err := run("initdb", "--pgdata="+data, "--username=postgres", "--auth-local=trust", "--auth-host=scram-sha-256",
		"--no-sync", "--encoding=UTF8", "--no-instructions").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	for attempt := 0; ; attempt++ {
		port := FreePort(t)
		log := &syncBuffer{}
		cmd := run("postgres", "-D", data, "-p", strconv.Itoa(port), "-k", sock,
			"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "logging_collector=off", "-c", "log_statement=all")
		cmd.Stdout, cmd.Stderr = log, log
		if err := cmd.Start(); err != nil {
			t.Fatalf("starting postgres: %v", err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		srv := ScramServer{
			AdminDSN: fmt.Sprintf("host=%s port=%d user=postgres dbname=postgres sslmode=disable", sock, port),
			Host:     "127.0.0.1", Port: port, Log: log.String,
		}
		if err := waitForPostgres(srv.AdminDSN, exited); err == nil {
			t.Cleanup(func() {
				cmd.Process.Signal(syscall.SIGINT) // fast shutdown
				select {
				case <-exited:
				case <-time.After(10 * time.Second):
					cmd.Process.Kill()
					<-exited
				}
			})
			return srv
		} else if attempt == 2 || !strings.Contains(log.String(), "could not bind") {
			cmd.Process.Kill()
			t.Fatalf("postgres did not start: %v\n%s", err, log.String())
		}
		cmd.Process.Kill()
		<-exited
	}
}

func waitForPostgres(dsn string, exited <-chan error) error {
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		conn, err := pgx.Connect(ctx, dsn)
		cancel()
		if err == nil {
			conn.Close(context.Background())
			return nil
		}
		select {
		case werr := <-exited:
			return fmt.Errorf("postgres exited: %v", werr)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return err
		}
	}
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

package postgres

import (
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/testing/testenv"
	"github.com/gitgrant/gitgrant/providers"
	"github.com/gitgrant/gitgrant/providers/providertest"
	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// ephemeralFixture is a fixture whose reader role is ephemeral, with a
// table the reader group may read (and not write), and a provider that
// connects as gitgrant with the least privileges ephemeral roles need.
type ephemeralFixture struct {
	*fixture
	table  string
	prefix string
	p      *Provider
}

func newEphemeralFixture(t *testing.T, settings map[string]any, tweak func(*gitgrant.RoleConfig)) *ephemeralFixture {
	t.Helper()
	f := newFixture(t, 1)
	e := &ephemeralFixture{fixture: f, table: f.prefix + "_orders", prefix: f.prefix + "_reader_"}
	f.mustExec(t, "CREATE TABLE "+quote(e.table)+" (id int PRIMARY KEY, item text)")
	t.Cleanup(func() { f.admin.Exec(context.Background(), "DROP TABLE IF EXISTS "+quote(e.table)) })
	f.mustExec(t, "INSERT INTO "+quote(e.table)+" VALUES (1, 'book')")
	f.mustExec(t, "GRANT SELECT ON "+quote(e.table)+" TO "+quote(f.groups["reader"]))
	lp := f.leastPrivilege(t)
	gitgrantRole := f.prefix + "_gitgrant"
	f.mustExec(t, "ALTER ROLE "+quote(gitgrantRole)+" CREATEROLE")
	f.mustExec(t, "GRANT pg_signal_backend TO "+quote(gitgrantRole))
	cfg := lp.config(settings)
	r := cfg.Roles["reader"]
	r.Mode, r.AccountPrefix = gitgrant.ModeEphemeral, e.prefix
	if tweak != nil {
		tweak(&r)
	}
	cfg.Roles["reader"] = r
	p, err := open(t.Context(), cfg, depsWith(lp.dsn), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	e.p = p
	return e
}

// connectAs opens a session as the account over TCP with its password.
func connectAs(t *testing.T, a providers.Account, password string) (*pgx.Conn, error) {
	t.Helper()
	cfg, err := pgx.ParseConfig(fmt.Sprintf("host=%s port=%d dbname=%s sslmode=disable connect_timeout=5", a.Connect.Host, a.Connect.Port, a.Connect.Database))
	if err != nil {
		t.Fatal(err)
	}
	cfg.User, cfg.Password = a.Name, password
	c, err := pgx.ConnectConfig(t.Context(), cfg)
	if err == nil {
		t.Cleanup(func() { c.Close(context.Background()) })
	}
	return c, err
}

// checkVerifier reports whether a pg_authid SCRAM-SHA-256 verifier is
// that of password (RFC 5802: StoredKey and ServerKey from the salted
// password), computed here apart from the provider's code.
func checkVerifier(t *testing.T, verifier, password string) bool {
	t.Helper()
	var iter int
	var salt, keys string
	head, rest, _ := strings.Cut(strings.TrimPrefix(verifier, "SCRAM-SHA-256$"), "$")
	iterS, salt, _ := strings.Cut(head, ":")
	iter, _ = strconv.Atoi(iterS)
	keys = rest
	storedB64, serverB64, _ := strings.Cut(keys, ":")
	rawSalt, err := base64.StdEncoding.DecodeString(salt)
	if err != nil || iter == 0 {
		t.Fatalf("not a SCRAM verifier: %q", verifier)
	}
	salted, err := pbkdf2.Key(sha256.New, password, rawSalt, iter, 32)
	if err != nil {
		t.Fatal(err)
	}
	h := hmac.New(sha256.New, salted)
	h.Write([]byte("Client Key"))
	stored := sha256.Sum256(h.Sum(nil))
	h = hmac.New(sha256.New, salted)
	h.Write([]byte("Server Key"))
	return base64.StdEncoding.EncodeToString(stored[:]) == storedB64 && base64.StdEncoding.EncodeToString(h.Sum(nil)) == serverB64
}

// The whole life of an ephemeral account on the shared server: it
// connects, can do what the role allows and nothing more, is listed as
// an account and not as a member, and after DropAccount it is gone and
// its open session is dead.
func TestEphemeralAccountLifecycle(t *testing.T) {
	t.Parallel()
	e := newEphemeralFixture(t, nil, nil)
	ctx := t.Context()
	until := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	a := providertest.CreateAccount(t, e.p, "reader", until)
	name := a.Name
	if want := (providers.Connection{Host: "127.0.0.1", Port: 5432, Database: "postgres", Kind: "postgres"}); a.Connect != want {
		t.Errorf("Connect = %+v, want %+v (the DSN's)", a.Connect, want)
	}
	if _, err := e.p.CreateAccount(ctx, "reader", name, until); err == nil || !strings.Contains(err.Error(), "exists already") {
		t.Errorf("creating it twice: %v, want an error", err)
	}

	// What the server stored: a SCRAM verifier of the secret (the trust
	// rule of this server's pg_hba.conf lets anyone in without it:
	// TestEphemeralPasswordIsRequired proves it on a server that asks),
	// the password's expiry, LOGIN, and membership of the group.
	var verifier string
	var validUntil time.Time
	var canLogin, member bool
	err := e.admin.QueryRow(ctx, `SELECT rolpassword, rolvaliduntil, rolcanlogin, pg_has_role(oid, $2::text::regrole, 'MEMBER')
FROM pg_authid WHERE rolname = $1`, name, quote(e.groups["reader"])).Scan(&verifier, &validUntil, &canLogin, &member)
	if err != nil {
		t.Fatal(err)
	}
	if !checkVerifier(t, verifier, a.Secret) || !validUntil.Equal(until) || !canLogin || !member {
		t.Errorf("pg_authid: verifier of the secret %v, valid until %s (want %s), login %v, member %v",
			checkVerifier(t, verifier, a.Secret), validUntil, until, canLogin, member)
	}

	conn, err := connectAs(t, a, a.Secret)
	if err != nil {
		t.Fatalf("connect as %s: %v", name, err)
	}
	var item string
	if err := conn.QueryRow(ctx, "SELECT item FROM "+quote(e.table)+" WHERE id = 1").Scan(&item); err != nil || item != "book" {
		t.Errorf("SELECT as the account: %q, %v", item, err)
	}
	if _, err := conn.Exec(ctx, "INSERT INTO "+quote(e.table)+" VALUES (2, 'pen')"); err == nil {
		t.Error("the account could write, which the role does not allow")
	}

	accounts, err := e.p.Accounts(ctx, "reader")
	if err != nil || !cmp.Equal([]string{name}, accounts) {
		t.Errorf("Accounts = %v, %v; want [%s]", accounts, err, name)
	}
	members, err := e.p.Members(ctx, "reader")
	if err != nil || len(members) != 0 {
		t.Errorf("Members = %v, %v; an ephemeral account is not a member to reconcile", members, err)
	}

	if err := e.p.DropAccount(ctx, "reader", name); err != nil {
		t.Fatalf("DropAccount: %v", err)
	}
	if err := conn.Ping(ctx); err == nil {
		t.Error("the account's session still answers after DropAccount")
	}
	if _, err := connectAs(t, a, a.Secret); err == nil {
		t.Error("the account can still log in")
	}
	if accounts, err := e.p.Accounts(ctx, "reader"); err != nil || len(accounts) != 0 {
		t.Errorf("Accounts after the drop = %v, %v", accounts, err)
	}
	if err := e.p.DropAccount(ctx, "reader", name); err != nil {
		t.Errorf("dropping what is gone: %v, want success", err)
	}
}

// On a server that asks for passwords (scram-sha-256 on TCP), the secret
// logs in and nothing else does; once VALID UNTIL passes the password no
// longer works, but an open session goes on until DropAccount ends it.
// The server's statement log never sees the password.
func TestEphemeralPasswordIsRequired(t *testing.T) {
	t.Parallel()
	srv := testenv.ScramPostgres(t)
	ctx := t.Context()
	admin, err := pgx.Connect(ctx, srv.AdminDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	for _, sql := range []string{"CREATE ROLE readers NOLOGIN", "CREATE TABLE orders (id int)", "INSERT INTO orders VALUES (7)", "GRANT SELECT ON orders TO readers"} {
		if _, err := admin.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	cfg := gitgrant.ProviderConfig{Name: "scram", Type: Type, Settings: map[string]any{"dsn_env": "PGTEST_DSN", "account_host": fmt.Sprintf("%s:%d", srv.Host, srv.Port)},
		Roles: map[string]gitgrant.RoleConfig{"reader": {Target: "readers", Mode: gitgrant.ModeEphemeral}}}
	p, err := open(ctx, cfg, depsWith(srv.AdminDSN), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	until := time.Now().Add(3 * time.Second)
	a, err := p.CreateAccount(ctx, "reader", gitgrant.NewAccountName("gg_reader_"), until)
	if err != nil {
		t.Fatal(err)
	}
	if a.Connect.Host != srv.Host || a.Connect.Port != srv.Port {
		t.Errorf("Connect = %+v, want account_host's %s:%d", a.Connect, srv.Host, srv.Port)
	}
	for _, wrong := range []string{"", "not-the-password", a.Secret[:39]} {
		_, err := connectAs(t, a, wrong)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "28P01" {
			t.Errorf("logging in with a wrong password: %v, want invalid_password (28P01)", err)
		}
	}
	session, err := connectAs(t, a, a.Secret)
	if err != nil {
		t.Fatalf("logging in with the secret: %v", err)
	}
	var id int
	if err := session.QueryRow(ctx, "SELECT id FROM orders").Scan(&id); err != nil || id != 7 {
		t.Errorf("SELECT as the account: %d, %v", id, err)
	}
	time.Sleep(time.Until(until) + 500*time.Millisecond)
	if _, err := connectAs(t, a, a.Secret); err == nil {
		t.Error("the secret still logs in after VALID UNTIL")
	}
	if err := session.Ping(ctx); err != nil {
		t.Errorf("VALID UNTIL ended a session (it only ends password logins): %v", err)
	}
	if err := p.DropAccount(ctx, "reader", a.Name); err != nil {
		t.Fatal(err)
	}
	if err := session.Ping(ctx); err == nil {
		t.Error("the session outlived DropAccount")
	}
	log := srv.Log()
	if !strings.Contains(log, "CREATE ROLE \""+a.Name+"\" LOGIN PASSWORD 'SCRAM-SHA-256$") {
		t.Errorf("the server log does not show the CREATE ROLE statement with a verifier:\n%s", log)
	}
	if strings.Contains(log, a.Secret) {
		t.Error("the server log holds the password")
	}
}

// TestHelperCreateThenDie is the process that
// TestEphemeralKilledBetweenCreateAndRecord kills.
func TestHelperCreateThenDie(t *testing.T) {
	providertest.CreateThenDie(t, func(args []string) (providers.Ephemeral, error) {
		dsn, prefix, group := args[0], args[1], args[2]
		cfg := gitgrant.ProviderConfig{Name: "crash", Type: Type, Settings: map[string]any{"dsn_env": "PGTEST_DSN"},
			Roles: map[string]gitgrant.RoleConfig{"reader": {Target: group, Mode: gitgrant.ModeEphemeral, AccountPrefix: prefix}}}
		return open(context.Background(), cfg, depsWith(dsn), nil)
	})
}

// gitgrant is killed (kill -9) between creating an account and recording
// it: the account is not lost. A later pass lists the role's accounts,
// finds it unexplained, and drops it; logins that only look similar are
// never listed.
func TestEphemeralKilledBetweenCreateAndRecord(t *testing.T) {
	t.Parallel()
	e := newEphemeralFixture(t, nil, nil)
	created := providertest.CreatedByKilledProcess(t, e.dsn, e.prefix, e.groups["reader"])
	// Logins that are not gitgrant's accounts, though they start alike.
	for _, n := range []string{e.prefix + "Admin", e.prefix + "a_b", "x" + e.prefix + "abc"} {
		e.mustExec(t, "CREATE ROLE "+quote(n)+" LOGIN")
	}
	// A new process, knowing nothing of the dead one.
	p, err := open(t.Context(), e.p.cfg, depsWith(e.dsn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	providertest.CheckOrphanDropped(t, p, "reader", created)
}

// Objects the account made are given to the role's group (reassign), or
// keep the account, shut out, until a person moves them (refuse).
func TestEphemeralAccountOwningObjects(t *testing.T) {
	t.Parallel()
	for _, onOwned := range []string{gitgrant.OnOwnedReassign, gitgrant.OnOwnedRefuse} {
		t.Run(onOwned, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, 0)
			group := f.groups["reader"]
			schemaName := f.prefix + "_work"
			f.mustExec(t, "CREATE SCHEMA "+quote(schemaName))
			t.Cleanup(func() { f.admin.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+quote(schemaName)+" CASCADE") })
			f.mustExec(t, "GRANT USAGE, CREATE ON SCHEMA "+quote(schemaName)+" TO "+quote(group))
			cfg := f.config(nil)
			cfg.Roles["reader"] = gitgrant.RoleConfig{Target: group, Mode: gitgrant.ModeEphemeral, AccountPrefix: f.prefix + "_o_", OnOwned: onOwned}
			// REASSIGN OWNED needs the privileges of both roles: a
			// superuser has them.
			p, err := open(t.Context(), cfg, depsWith(f.dsn), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			ctx := t.Context()
			a, err := p.CreateAccount(ctx, "reader", gitgrant.NewAccountName(f.prefix+"_o_"), time.Now().Add(time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			conn, err := connectAs(t, a, a.Secret)
			if err != nil {
				t.Fatal(err)
			}
			table := quote(schemaName) + ".notes"
			if _, err := conn.Exec(ctx, "CREATE TABLE "+table+" (note text)"); err != nil {
				t.Fatal(err)
			}
			err = p.DropAccount(ctx, "reader", a.Name)
			var owner string
			if qerr := f.admin.QueryRow(ctx, "SELECT tableowner FROM pg_tables WHERE schemaname = $1 AND tablename = 'notes'", schemaName).Scan(&owner); qerr != nil {
				t.Fatal(qerr)
			}
			if onOwned == gitgrant.OnOwnedReassign {
				if err != nil || owner != group {
					t.Fatalf("DropAccount = %v; the table is owned by %q, want %q", err, owner, group)
				}
				return
			}
			if !errors.Is(err, providers.ErrOwnsObjects) || !strings.Contains(err.Error(), "REASSIGN OWNED BY") {
				t.Fatalf("DropAccount = %v, want ErrOwnsObjects saying what to do", err)
			}
			var canLogin, member bool
			if qerr := f.admin.QueryRow(ctx, "SELECT rolcanlogin, pg_has_role(oid, $2::text::regrole, 'MEMBER') FROM pg_roles WHERE rolname = $1",
				a.Name, quote(group)).Scan(&canLogin, &member); qerr != nil {
				t.Fatal(qerr)
			}
			if canLogin || member || owner != a.Name {
				t.Errorf("refused drop: login %v, member %v, table owner %q; want no access and the table untouched", canLogin, member, owner)
			}
			if err := conn.Ping(ctx); err == nil {
				t.Error("the session survived the refused drop")
			}
			f.mustExec(t, "DROP TABLE "+table)
			if err := p.DropAccount(ctx, "reader", a.Name); err != nil {
				t.Errorf("once the table is gone: %v", err)
			}
		})
	}
}

// Names that are not one of the role's accounts are refused before any
// statement is sent: a mistake can never drop a person's own login.
func TestEphemeralRefusesOtherNames(t *testing.T) {
	t.Parallel()
	e := newEphemeralFixture(t, nil, nil)
	providertest.CheckRefusesOtherNames(t, e.p,
		[]string{"postgres", e.prefix, e.prefix + "ABC", e.prefix + "x\"; DROP ROLE postgres; --", "gg_other_abc", e.prefix + strings.Repeat("a", 64)},
		"gg_writer_abc")
}

func TestEphemeralCheck(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 0)
	lp := f.leastPrivilege(t) // no CREATEROLE, no pg_signal_backend
	cfg := lp.config(nil)
	cfg.Roles["reader"] = gitgrant.RoleConfig{Target: f.groups["reader"], Mode: gitgrant.ModeEphemeral}
	p, err := open(t.Context(), cfg, depsWith(lp.dsn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	err = p.Check(t.Context())
	for _, want := range []string{"role reader is ephemeral but the connected role cannot create logins (needs CREATEROLE)", "pg_signal_backend"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Check = %v, want it to say %q", err, want)
		}
	}
}

func TestEphemeralSettingsRejected(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		role gitgrant.RoleConfig
		host string
		want string
	}{
		{"prefix too long", gitgrant.RoleConfig{Mode: gitgrant.ModeEphemeral, AccountPrefix: strings.Repeat("a", 51) + "_"}, "", "longer than the 63"},
		{"prefix not lower case", gitgrant.RoleConfig{Mode: gitgrant.ModeEphemeral, AccountPrefix: "Gg_"}, "", "lower-case letter"},
		{"account_host port", gitgrant.RoleConfig{Mode: gitgrant.ModeEphemeral}, "db.example.com:x", "1 to 65535"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			settings := map[string]any{"dsn_env": "D"}
			if tt.host != "" {
				settings["account_host"] = tt.host
			}
			cfg := gitgrant.ProviderConfig{Name: "pg", Type: Type, Roles: map[string]gitgrant.RoleConfig{"r": tt.role}, Settings: settings}
			deps := providers.DefaultDeps()
			deps.Getenv = func(string) string { return "postgres://localhost/db" }
			if p, err := Open(t.Context(), cfg, deps); err == nil || !strings.Contains(err.Error(), tt.want) {
				if p != nil {
					p.Close()
				}
				t.Errorf("Open = %v, want an error with %q", err, tt.want)
			}
		})
	}
}

// The config's limit on PostgreSQL login names is this provider's.
func TestEphemeralLimitsAgreeWithConfig(t *testing.T) {
	t.Parallel()
	providertest.CheckLoginLimit(t, Type, maxIdentifier)
}

func TestScrubPgError(t *testing.T) {
	t.Parallel()
	secret := providers.NewPassword()
	err := fmt.Errorf("wrapped: %w", &pgconn.PgError{Code: "42601", Message: "syntax error at or near \"" + secret + "\"", Detail: secret})
	got := (&Provider{name: "pg"}).classify("create", scrubPgError(err, secret))
	if strings.Contains(got.Error(), secret) {
		t.Errorf("the classified error shows the secret: %v", got)
	}
}

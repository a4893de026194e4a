package postgres

import (
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/providers"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Ephemeral accounts (roles with mode: ephemeral): a LOGIN role made for
// one request, member of the role's group, with a password that expires
// (VALID UNTIL) at the end of the window, dropped when the request ends.

var _ providers.Ephemeral = (*Provider)(nil)

// scramIterations is PostgreSQL's default scram_iterations.
const scramIterations = 4096

// IsEphemeral implements providers.Ephemeral.
func (p *Provider) IsEphemeral(role string) bool { return p.cfg.IsEphemeral(role) }

// AccountPrefix implements providers.Ephemeral.
func (p *Provider) AccountPrefix(role string) string { return p.cfg.RoleAccountPrefix(role) }

// checkEphemeralRoles validates the prefixes of the ephemeral roles of cfg
// when the provider opens.
func checkEphemeralRoles(cfg gitgrant.ProviderConfig) error {
	for role := range cfg.Roles {
		if !cfg.IsEphemeral(role) {
			continue
		}
		if err := gitgrant.CheckAccountPrefix(cfg.RoleAccountPrefix(role), maxIdentifier); err != nil {
			return fmt.Errorf("provider %s: role %s: %w", cfg.Name, role, err)
		}
	}
	return nil
}

// connection is where requesters connect: account_host when set (host or
// host:port), else the DSN's host, port and database.
func connection(provider, accountHost string, dsn *pgconn.Config) (providers.Connection, error) {
	c := providers.Connection{Host: dsn.Host, Port: int(dsn.Port), Database: dsn.Database, Kind: "postgres"}
	return c.WithAccountHost(provider, accountHost)
}

// accountName checks that name is one of role's ephemeral accounts.
func (p *Provider) accountName(role, name string) (group string, err error) {
	if group, err = p.target(role); err != nil {
		return "", err
	}
	if !p.cfg.IsEphemeral(role) {
		return "", fmt.Errorf("provider %s: role %s is not ephemeral (mode: ephemeral)", p.name, role)
	}
	if err := gitgrant.CheckAccountName(p.cfg.RoleAccountPrefix(role), name, maxIdentifier); err != nil {
		return "", fmt.Errorf("provider %s: role %s: %w: %v", p.name, role, providers.ErrInvalidName, err)
	}
	return group, nil
}

// scramVerifier is what PostgreSQL stores for password (SCRAM-SHA-256,
// RFC 5802 and 7677, in pg_authid's format). Sending it instead of the
// password, as psql's \password does, keeps the password out of the
// server's statement logs and pg_stat_activity.
func scramVerifier(password string) (string, error) {
	salt := make([]byte, 16)
	rand.Read(salt)
	// The password is ASCII letters and digits: SASLprep leaves it as is.
	salted, err := pbkdf2.Key(sha256.New, password, salt, scramIterations, sha256.Size)
	if err != nil {
		return "", err
	}
	mac := func(key []byte, msg string) []byte {
		h := hmac.New(sha256.New, key)
		h.Write([]byte(msg))
		return h.Sum(nil)
	}
	stored := sha256.Sum256(mac(salted, "Client Key"))
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("SCRAM-SHA-256$%d:%s$%s:%s", scramIterations, b64(salt), b64(stored[:]), b64(mac(salted, "Server Key"))), nil
}

// literal quotes a string constant (standard_conforming_strings is on
// since PostgreSQL 9.1; nothing quoted here holds a backslash).
func literal(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func createAccountSQL(name, group, verifier string, until time.Time) string {
	return "CREATE ROLE " + quote(name) + " LOGIN PASSWORD " + literal(verifier) +
		" VALID UNTIL " + literal(until.UTC().Format(time.RFC3339)) + " IN ROLE " + quote(group)
}

// CreateAccount implements providers.Ephemeral: one statement creates the
// login with its password's expiry and the group granted, so there is
// never a login without them. VALID UNTIL ends password logins at until;
// sessions open then go on until DropAccount ends them.
func (p *Provider) CreateAccount(ctx context.Context, role, name string, until time.Time) (providers.Account, error) {
	group, err := p.accountName(role, name)
	if err != nil {
		return providers.Account{}, err
	}
	if !until.After(p.now()) {
		return providers.Account{}, fmt.Errorf("provider %s: create %s: until %s is not in the future", p.name, name, until.UTC().Format(time.RFC3339))
	}
	secret := providers.NewPassword()
	verifier, err := scramVerifier(secret)
	if err != nil {
		return providers.Account{}, err
	}
	op := "create account " + name + " for " + role
	if _, err := p.pool.Exec(ctx, createAccountSQL(name, group, verifier, until)); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42710" { // duplicate_object
			return providers.Account{}, fmt.Errorf("provider %s: %s: a role named %s exists already; gitgrant makes each account once, with a new name", p.name, op, name)
		}
		return providers.Account{}, providers.Scrub(p.classify(op, scrubPgError(err, secret, verifier)), secret, verifier)
	}
	return providers.Account{Name: name, Secret: secret, Connect: p.connect}, nil
}

// scrubPgError removes secrets from the fields of a server error that
// classify reads; other errors pass as they are.
func scrubPgError(err error, secrets ...string) error {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return err
	}
	c := *pgErr
	c.Message = providers.ScrubString(c.Message, secrets...)
	c.Detail = providers.ScrubString(c.Detail, secrets...)
	c.Hint = providers.ScrubString(c.Hint, secrets...)
	c.Where = providers.ScrubString(c.Where, secrets...)
	return &c
}

// ownedSQL counts, per database, the objects and privileges that keep a
// role from being dropped (pg_shdepend: what it owns, privileges granted
// to it, policies naming it), the current database marked.
const ownedSQL = `
SELECT COALESCE(d.datname, '(shared objects)'), COALESCE(d.datname = current_database(), false), count(*)
FROM pg_catalog.pg_shdepend s
LEFT JOIN pg_catalog.pg_database d ON d.oid = s.dbid
WHERE s.refclassid = 'pg_catalog.pg_authid'::pg_catalog.regclass
  AND s.refobjid = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = $1)
GROUP BY 1, 2 ORDER BY 1`

type owned struct {
	Database string
	Current  bool
	Count    int64
}

// DropAccount implements providers.Ephemeral. First the login ends
// (NOLOGIN, so nobody logs in again), then its sessions, then the role:
// objects it owns in this database are reassigned to the role's group
// (on_owned: reassign) before it is dropped. Objects elsewhere, or
// on_owned: refuse, keep the role, without its group and unable to log in,
// and the error (ErrOwnsObjects) says what a person has to move.
func (p *Provider) DropAccount(ctx context.Context, role, name string) error {
	group, err := p.accountName(role, name)
	if err != nil {
		return err
	}
	op := "drop account " + name
	if _, err := p.pool.Exec(ctx, "ALTER ROLE "+quote(name)+" NOLOGIN"); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42704" { // gone
			return nil
		}
		return p.classify(op, err)
	}
	if err := p.TerminateSessions(ctx, name); err != nil {
		return err
	}
	rows, err := p.pool.Query(ctx, ownedSQL, name)
	if err != nil {
		return p.classify(op, err)
	}
	holdings, err := pgx.CollectRows(rows, pgx.RowToStructByPos[owned])
	if err != nil {
		return p.classify(op, err)
	}
	var here, elsewhere []string
	for _, h := range holdings {
		if h.Current {
			here = append(here, fmt.Sprintf("%d in database %s", h.Count, h.Database))
		} else {
			elsewhere = append(elsewhere, fmt.Sprintf("%d in %s", h.Count, h.Database))
		}
	}
	refuse := p.cfg.RoleOnOwned(role) == gitgrant.OnOwnedRefuse
	if len(here)+len(elsewhere) == 0 || !refuse && len(elsewhere) == 0 {
		sql := "DROP ROLE " + quote(name)
		if len(here) > 0 {
			// One implicit transaction: all of it or none.
			sql = "REASSIGN OWNED BY " + quote(name) + " TO " + quote(group) + "; DROP OWNED BY " + quote(name) + "; " + sql
		}
		if _, err := p.pool.Exec(ctx, sql); err != nil {
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) && pgErr.Code == "42704" {
				return nil
			}
			if len(here) > 0 && errors.As(err, &pgErr) && pgErr.Code == "42501" {
				return fmt.Errorf("provider %s: %s: it owns objects (%s) and reassigning them to %s needs the privileges of both roles (%s); it can no longer log in: %w",
					p.name, op, strings.Join(here, ", "), group, pgErr.Message, providers.ErrOwnsObjects)
			}
			return p.classify(op, err)
		}
		return nil
	}
	// Keep the role, but without the access: it can no longer log in,
	// and now holds no group either.
	if err := p.exec(ctx, op, revokeSQL(group, name)); err != nil {
		return err
	}
	where := strings.Join(append(here, elsewhere...), ", ")
	fix := fmt.Sprintf("move them (in each database: REASSIGN OWNED BY %s TO <owner>; DROP OWNED BY %s)", quote(name), quote(name))
	if !refuse {
		fix = fmt.Sprintf("gitgrant reassigns only in the database it connects to; in the others: REASSIGN OWNED BY %s TO <owner>; DROP OWNED BY %s", quote(name), quote(name))
	}
	return fmt.Errorf("provider %s: %s: it owns objects or holds privileges (%s); it can no longer log in and no longer holds %s. To drop it, %s, and gitgrant drops it at its next pass: %w",
		p.name, op, where, group, fix, providers.ErrOwnsObjects)
}

// Accounts implements providers.Ephemeral: the roles named with role's
// prefix and a suffix gitgrant could have made, with or without LOGIN.
func (p *Provider) Accounts(ctx context.Context, role string) ([]string, error) {
	if _, err := p.target(role); err != nil {
		return nil, err
	}
	prefix := p.cfg.RoleAccountPrefix(role)
	rows, err := p.pool.Query(ctx, "SELECT rolname FROM pg_catalog.pg_roles WHERE starts_with(rolname, $1) ORDER BY 1", prefix)
	if err != nil {
		return nil, p.classify("list accounts of "+role, err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, p.classify("list accounts of "+role, err)
	}
	out := []string{}
	for _, n := range names {
		if gitgrant.CheckAccountName(prefix, n, maxIdentifier) == nil {
			out = append(out, n)
		}
	}
	return out, nil
}

// Package postgres manages membership of PostgreSQL group roles. A managed
// role is a group role (the role's target name); granting it to a principal
// is GRANT group TO login, where the login role must already exist. It
// optionally ends the principal's sessions on revoke. PostgreSQL has no
// expiry of a membership (VALID UNTIL expires a password), so gitgrant
// itself revokes at expiry.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/providers"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Type is the `type:` of a postgres provider in gitgrant.yaml.
const Type = "postgres"

// maxIdentifier is NAMEDATALEN-1: PostgreSQL silently truncates longer
// names, which could make a name refer to a different role.
const maxIdentifier = 63

// Settings are a postgres provider entry's settings in gitgrant.yaml, as
// postgres.schema.json beside this file describes them.
type Settings struct {
	DSNEnv            string `json:"dsn_env"`
	DSNFile           string `json:"dsn_file"`
	AccountHost       string `json:"account_host"`
	TerminateSessions bool   `json:"terminate_sessions"`
}

// Provider is a postgres provider. It is safe for concurrent use.
type Provider struct {
	name              string
	cfg               gitgrant.ProviderConfig
	pool              *pgxpool.Pool
	terminateSessions bool
	// alwaysSeekGrantors makes Revoke look for other grantors' rows on
	// any server, so that tests run that path on PostgreSQL 15 too.
	alwaysSeekGrantors bool
	// connect is where ephemeral accounts connect (ephemeral.go).
	connect providers.Connection
	now     func() time.Time
}

var (
	_ providers.Provider          = (*Provider)(nil)
	_ providers.Checker           = (*Provider)(nil)
	_ providers.SessionTerminator = (*Provider)(nil)
)

// Open is the providers.Factory of postgres. It connects lazily: a server
// that is down makes the calls fail, not Open.
func Open(ctx context.Context, cfg gitgrant.ProviderConfig, deps providers.Deps) (providers.Provider, error) {
	return open(ctx, cfg, deps, nil)
}

// open decodes the settings strictly and opens the provider; tweak, when
// set, adjusts the pool's configuration (tests count round trips with it).
func open(ctx context.Context, cfg gitgrant.ProviderConfig, deps providers.Deps, tweak func(*pgxpool.Config)) (*Provider, error) {
	var s Settings
	if err := providers.Decode(cfg, &s); err != nil {
		return nil, err
	}
	if err := providers.CheckTargets(cfg, validIdentifier); err != nil {
		return nil, err
	}
	if err := checkEphemeralRoles(cfg); err != nil {
		return nil, err
	}
	dsn, err := providers.SecretRef{Name: "dsn", Env: s.DSNEnv, File: s.DSNFile}.Read(cfg.Name, deps)
	if err != nil {
		return nil, err
	}
	pc, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// The parser's message may quote the DSN, password and all.
		return nil, fmt.Errorf("provider %s: the DSN cannot be parsed (expected postgres://user@host:5432/db?sslmode=verify-full; the value is not shown because it may hold a password)", cfg.Name)
	}
	connect, err := connection(cfg.Name, s.AccountHost, &pc.ConnConfig.Config)
	if err != nil {
		return nil, err
	}
	pc.MaxConns = 4
	// One round trip per statement, cold or warm: a statement without
	// arguments goes as a simple query, as psql sends it; one with
	// arguments (all text) as an unnamed statement described in the same
	// round trip. Nothing is prepared, so nothing can be out of step with
	// the server (or with a pooler in front of it).
	pc.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec
	pc.ConnConfig.RuntimeParams["application_name"] = "gitgrant"
	if tweak != nil {
		tweak(pc)
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, providers.Unavailable("postgres "+cfg.Name, "open", err)
	}
	return &Provider{
		name:              cfg.Name,
		cfg:               cfg,
		pool:              pool,
		terminateSessions: s.TerminateSessions,
		connect:           connect,
		now:               deps.Now,
	}, nil
}

// validIdentifier rejects names that cannot be quoted into exactly one
// PostgreSQL role name.
func validIdentifier(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("%w: empty", providers.ErrInvalidName)
	case len(s) > maxIdentifier:
		return fmt.Errorf("%w: %.20q... is %d bytes; PostgreSQL role names have at most %d", providers.ErrInvalidName, s, len(s), maxIdentifier)
	case !utf8.ValidString(s):
		return fmt.Errorf("%w: %q is not valid UTF-8", providers.ErrInvalidName, s)
	case strings.ContainsRune(s, 0):
		return fmt.Errorf("%w: %q contains a NUL byte", providers.ErrInvalidName, s)
	}
	switch strings.ToLower(s) {
	case "public", "none":
		// Both are role specifications, not roles, even when quoted.
		return fmt.Errorf("%w: %q is reserved", providers.ErrInvalidName, s)
	}
	return nil
}

func quote(s string) string { return pgx.Identifier{s}.Sanitize() }

// The statements Grant and Revoke send; the benchmark hands psql the same.
func grantSQL(group, principal string) string {
	return "GRANT " + quote(group) + " TO " + quote(principal)
}
func revokeSQL(group, principal string) string {
	return "REVOKE " + quote(group) + " FROM " + quote(principal)
}

// target resolves a declared role to its group role name.
func (p *Provider) target(role string) (string, error) {
	return providers.DeclaredTarget(p.cfg, role)
}

// classify turns a driver error into gitgrant's error kinds.
func (p *Provider) classify(op string, err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "42704": // undefined_object: a role does not exist
			return fmt.Errorf("provider %s: %s: %s: %w", p.name, op, pgErr.Message, providers.ErrNotFound)
		case "42501", "0LP01": // insufficient_privilege, invalid_grant_operation
			return &gitgrant.SystemError{System: "postgres " + p.name, Op: op, Err: errors.New(pgErr.Message)}
		}
		retryable := strings.HasPrefix(pgErr.Code, "08") || strings.HasPrefix(pgErr.Code, "53") ||
			strings.HasPrefix(pgErr.Code, "57") || strings.HasPrefix(pgErr.Code, "40")
		return &gitgrant.SystemError{System: "postgres " + p.name, Op: op, Err: fmt.Errorf("%s (SQLSTATE %s)", pgErr.Message, pgErr.Code), Retryable: retryable}
	}
	return providers.Unavailable("postgres "+p.name, op, err)
}

// concurrentUpdate reports errors that two sessions changing the same
// membership at once can cause; the statements are idempotent, so they are
// simply run again.
func concurrentUpdate(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	return pgErr.Code == "23505" || pgErr.Code == "40001" || pgErr.Code == "40P01" ||
		(pgErr.Code == "XX000" && strings.Contains(pgErr.Message, "concurrently"))
}

func (p *Provider) exec(ctx context.Context, op, sql string, args ...any) error {
	if err := execRetrying(ctx, p.pool, sql, args...); err != nil {
		return p.classify(op, err)
	}
	return nil
}

// execRetrying runs sql on db, again when a concurrent change of the same
// membership got in its way. Without arguments it is one simple-protocol
// round trip, as psql sends it.
func execRetrying(ctx context.Context, db interface {
	Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
}, sql string, args ...any) error {
	var err error
	for range 5 {
		if _, err = db.Exec(ctx, sql, args...); err == nil || !concurrentUpdate(err) {
			break
		}
	}
	return err
}

// membersSQL lists a group's members in one round trip. It returns no row
// when the group does not exist, and one row with a NULL member when it
// has no members. PostgreSQL 16 keeps one row per grantor, hence DISTINCT.
// The connected role is left out: it holds the groups it administers WITH
// ADMIN OPTION (PostgreSQL 16 grants a CREATEROLE creator its roles so),
// and revoking that as drift would leave gitgrant unable to grant.
const membersSQL = `
SELECT DISTINCT m.rolname
FROM pg_catalog.pg_roles g
LEFT JOIN pg_catalog.pg_auth_members am ON am.roleid = g.oid
  AND am.member <> (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = current_user)
LEFT JOIN pg_catalog.pg_roles m ON m.oid = am.member
WHERE g.rolname = $1`

// Members lists the roles that are direct members of role's group role,
// except the connected role itself.
func (p *Provider) Members(ctx context.Context, role string) ([]providers.Member, error) {
	group, err := p.target(role)
	if err != nil {
		return nil, err
	}
	rows, err := p.pool.Query(ctx, membersSQL, group)
	if err != nil {
		return nil, p.classify("list "+role, err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[*string])
	if err != nil {
		return nil, p.classify("list "+role, err)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("provider %s: group role %q of role %s does not exist: %w", p.name, group, role, providers.ErrNotFound)
	}
	out := []providers.Member{}
	ephemeral, prefix := p.cfg.IsEphemeral(role), p.cfg.RoleAccountPrefix(role)
	for _, n := range names {
		if n == nil || ephemeral && gitgrant.CheckAccountName(prefix, *n, maxIdentifier) == nil {
			continue // an ephemeral account is listed by Accounts
		}
		out = append(out, providers.Member{Principal: *n})
	}
	return providers.SortMembers(out), nil
}

// Grant makes g.Principal a member of the role's group role. Until is not
// enforced by PostgreSQL; gitgrant revokes at expiry.
func (p *Provider) Grant(ctx context.Context, g providers.Grant) error {
	group, err := p.target(g.Role)
	if err != nil {
		return err
	}
	if err := validIdentifier(g.Principal); err != nil {
		return fmt.Errorf("provider %s: principal: %w", p.name, err)
	}
	// Already a member is a notice, not an error.
	return p.exec(ctx, "grant "+g.Role+" to "+g.Principal, grantSQL(group, g.Principal))
}

// grantorsSQL finds who granted a membership that is still there, given
// both roles as quoted identifiers. It reads one catalog table, so that
// planning it afresh on every revoke costs little.
const grantorsSQL = `
SELECT DISTINCT pg_catalog.pg_get_userbyid(grantor)
FROM pg_catalog.pg_auth_members
WHERE roleid = $1::pg_catalog.text::pg_catalog.regrole
  AND member = $2::pg_catalog.text::pg_catalog.regrole`

// Revoke removes principal from the role's group role. Not a member, or a
// principal that no longer exists, is success. A membership granted by
// another role (a DBA by hand) is revoked too, since managed roles are
// exclusive. Up to PostgreSQL 15 a membership is one row whoever granted
// it, and REVOKE removes it: one round trip, the statement psql would send.
// From 16 on each grantor has a row of its own and REVOKE removes only the
// connected role's, so Revoke also looks for the others' in the same round
// trip and revokes each naming its grantor.
func (p *Provider) Revoke(ctx context.Context, role, principal string) error {
	group, err := p.target(role)
	if err != nil {
		return err
	}
	if err := validIdentifier(principal); err != nil {
		return fmt.Errorf("provider %s: principal: %w", p.name, err)
	}
	op := "revoke " + role + " from " + principal
	conn, err := p.pool.Acquire(ctx)
	if err != nil {
		return p.classify(op, err)
	}
	if p.alwaysSeekGrantors || grantorRows(conn.Conn().PgConn()) {
		err = revokeEveryGrantor(ctx, conn, group, principal)
	} else {
		err = execRetrying(ctx, conn, revokeSQL(group, principal))
	}
	conn.Release()
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42704" {
		// The principal (or the group) does not exist: it holds nothing.
		if exists, xerr := p.roleExists(ctx, group); xerr != nil || !exists {
			if xerr != nil {
				return xerr
			}
			return fmt.Errorf("provider %s: group role %q of role %s does not exist: %w", p.name, group, role, providers.ErrNotFound)
		}
		return nil
	}
	if err != nil {
		return p.classify(op, err)
	}
	if p.terminateSessions {
		return p.TerminateSessions(ctx, principal)
	}
	return nil
}

// grantorRows reports whether the server keeps one membership row per
// grantor (PostgreSQL 16 and later).
func grantorRows(c *pgconn.PgConn) bool {
	v := c.ParameterStatus("server_version")
	major, _, _ := strings.Cut(v, ".")
	n, err := strconv.Atoi(major)
	// A version that cannot be read is treated as new: looking costs a
	// query in the same round trip, not looking could leave access in
	// place.
	return err != nil || n >= 16
}

// revokeEveryGrantor revokes a membership on a server that keeps a row
// per grantor: REVOKE, and in the same round trip a look for rows of other
// grantors, which are then revoked naming each.
func revokeEveryGrantor(ctx context.Context, conn *pgxpool.Conn, group, principal string) error {
	var grantors []string
	var err error
	for range 5 {
		batch := &pgx.Batch{}
		batch.Queue(revokeSQL(group, principal))
		batch.Queue(grantorsSQL, quote(group), quote(principal))
		br := conn.SendBatch(ctx, batch)
		_, err = br.Exec()
		if err == nil {
			var rows pgx.Rows
			if rows, err = br.Query(); err == nil {
				grantors, err = pgx.CollectRows(rows, pgx.RowTo[string])
			}
		}
		if cerr := br.Close(); err == nil {
			err = cerr
		}
		if err == nil || !concurrentUpdate(err) {
			break
		}
	}
	if err != nil {
		return err
	}
	for _, gr := range grantors {
		if err := execRetrying(ctx, conn, revokeSQL(group, principal)+" GRANTED BY "+quote(gr)); err != nil {
			return err
		}
	}
	return nil
}

func (p *Provider) roleExists(ctx context.Context, name string) (bool, error) {
	var exists bool
	err := p.pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = $1)", name).Scan(&exists)
	if err != nil {
		return false, p.classify("look up role "+name, err)
	}
	return exists, nil
}

// TerminateSessions ends every backend of principal except gitgrant's own.
// The connected role needs pg_signal_backend (superusers' sessions can
// only be ended by a superuser).
func (p *Provider) TerminateSessions(ctx context.Context, principal string) error {
	if err := validIdentifier(principal); err != nil {
		return fmt.Errorf("provider %s: principal: %w", p.name, err)
	}
	rows, err := p.pool.Query(ctx, `
SELECT pid, pg_catalog.pg_terminate_backend(pid)
FROM pg_catalog.pg_stat_activity
WHERE usename = $1 AND pid <> pg_catalog.pg_backend_pid()`, principal)
	if err != nil {
		return p.classify("terminate sessions of "+principal, err)
	}
	type result struct {
		PID        int32
		Terminated bool
	}
	res, err := pgx.CollectRows(rows, pgx.RowToStructByPos[result])
	if err != nil {
		return p.classify("terminate sessions of "+principal, err)
	}
	var failed []string
	for _, r := range res {
		if !r.Terminated {
			failed = append(failed, fmt.Sprint(r.PID))
		}
	}
	if len(failed) > 0 {
		return &gitgrant.SystemError{System: "postgres " + p.name, Op: "terminate sessions of " + principal,
			Err: fmt.Errorf("backends %s were not ended", strings.Join(failed, ", "))}
	}
	return nil
}

// checkSQL tells, for every managed group, whether it exists and whether
// the connected role may grant it: superuser, ADMIN OPTION on it, or (up
// to PostgreSQL 15) CREATEROLE for a group that is not a superuser.
const checkSQL = `
SELECT t.name,
       g.oid IS NOT NULL,
       COALESCE(me.rolsuper
         OR pg_catalog.pg_has_role(current_user, g.oid, 'MEMBER WITH ADMIN OPTION')
         OR (me.rolcreaterole AND NOT g.rolsuper AND current_setting('server_version_num')::int < 160000), false),
       me.rolsuper OR pg_catalog.pg_has_role(current_user, 'pg_signal_backend', 'MEMBER'),
       me.rolsuper OR me.rolcreaterole
FROM unnest($1::text[]) AS t(name)
LEFT JOIN pg_catalog.pg_roles g ON g.rolname = t.name
CROSS JOIN (SELECT rolsuper, rolcreaterole FROM pg_catalog.pg_roles WHERE rolname = current_user) me`

// Check verifies that the server answers and that the connected role can
// grant every managed group (and end sessions, when configured to, or
// create and drop logins and end their sessions for ephemeral roles).
func (p *Provider) Check(ctx context.Context) error {
	roles := make([]string, 0, len(p.cfg.Roles))
	for r := range p.cfg.Roles {
		roles = append(roles, r)
	}
	slices.Sort(roles)
	targets := make([]string, len(roles))
	for i, r := range roles {
		targets[i] = p.cfg.RoleTarget(r)
	}
	if err := p.pool.Ping(ctx); err != nil {
		return p.classify("connect", err)
	}
	rows, err := p.pool.Query(ctx, checkSQL, targets)
	if err != nil {
		return p.classify("check", err)
	}
	type result struct {
		Name      string
		Exists    bool
		CanGrant  bool
		CanSignal bool
		CanCreate bool
	}
	res, err := pgx.CollectRows(rows, pgx.RowToStructByPos[result])
	if err != nil {
		return p.classify("check", err)
	}
	var errs []error
	for i, r := range res {
		switch {
		case !r.Exists:
			errs = append(errs, fmt.Errorf("role %s: group role %q does not exist: %w", roles[i], r.Name, providers.ErrNotFound))
		case !r.CanGrant:
			errs = append(errs, fmt.Errorf("role %s: the connected role cannot grant %q (needs ADMIN OPTION on it, or CREATEROLE before PostgreSQL 16)", roles[i], r.Name))
		}
		if i == 0 && p.terminateSessions && !r.CanSignal {
			errs = append(errs, errors.New("terminate_sessions is set but the connected role is not a member of pg_signal_backend"))
		}
		if p.cfg.IsEphemeral(roles[i]) && !r.CanCreate {
			errs = append(errs, fmt.Errorf("role %s is ephemeral but the connected role cannot create logins (needs CREATEROLE)", roles[i]))
		}
		if p.cfg.IsEphemeral(roles[i]) && !r.CanSignal {
			errs = append(errs, fmt.Errorf("role %s is ephemeral but the connected role cannot end its accounts' sessions (needs membership of pg_signal_backend)", roles[i]))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("provider %s: %w", p.name, errors.Join(errs...))
	}
	return nil
}

// Close closes the connection pool.
func (p *Provider) Close() error {
	p.pool.Close()
	return nil
}

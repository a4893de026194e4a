// Package mysql manages role grants on MySQL 8 and MariaDB 10.4+: a managed
// role is a database role (the role's target name), granted to a user
// account. Where the event scheduler runs, a grant can also carry its
// expiry as a one-time EVENT that revokes it, so access ends even when
// gitgrant is down.
package mysql

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/providers"
	drv "github.com/go-sql-driver/mysql"
)

// Type is the `type:` of a mysql provider in gitgrant.yaml.
const Type = "mysql"

// Provider is a mysql provider. It is safe for concurrent use.
type Provider struct {
	name              string
	cfg               gitgrant.ProviderConfig
	db                *sql.DB
	nativeExpiry      bool
	eventSchema       string
	terminateSessions bool
	now               func() time.Time
	// connect is where ephemeral accounts connect, accountDSN how
	// gitgrant logs in as one (ephemeral.go).
	connect    providers.Connection
	accountDSN *drv.Config

	dialect struct {
		sync.Mutex
		known, mariaDB bool
	}
}

var (
	_ providers.Provider          = (*Provider)(nil)
	_ providers.NativeExpirer     = (*Provider)(nil)
	_ providers.Checker           = (*Provider)(nil)
	_ providers.SessionTerminator = (*Provider)(nil)
	_ providers.Canonicalizer     = (*Provider)(nil)
)

// Settings are a mysql provider entry's settings in gitgrant.yaml, as
// mysql.schema.json beside this file describes them.
type Settings struct {
	DSNEnv            string `json:"dsn_env"`
	DSNFile           string `json:"dsn_file"`
	NativeExpiry      bool   `json:"native_expiry"`
	EventSchema       string `json:"event_schema"`
	AccountHost       string `json:"account_host"`
	TerminateSessions bool   `json:"terminate_sessions"`
}

// Open is the providers.Factory of mysql. It connects lazily.
func Open(ctx context.Context, cfg gitgrant.ProviderConfig, deps providers.Deps) (providers.Provider, error) {
	return open(cfg, deps, nil)
}

// open decodes the settings strictly and opens the provider; tweak, when
// set, adjusts the driver's configuration (tests count round trips with
// it).
func open(cfg gitgrant.ProviderConfig, deps providers.Deps, tweak func(*drv.Config)) (*Provider, error) {
	var s Settings
	if err := providers.Decode(cfg, &s); err != nil {
		return nil, err
	}
	if err := providers.CheckTargets(cfg, validRole); err != nil {
		return nil, err
	}
	dsn, err := providers.SecretRef{Name: "dsn", Env: s.DSNEnv, File: s.DSNFile}.Read(cfg.Name, deps)
	if err != nil {
		return nil, err
	}
	dc, err := drv.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("provider %s: the DSN cannot be parsed (expected user:password@tcp(host:3306)/; the value is not shown because it may hold a password)", cfg.Name)
	}
	dc.ParseTime = true
	dc.Loc = time.UTC
	if dc.Params == nil {
		dc.Params = map[string]string{}
	}
	// Event times are written and read in UTC.
	dc.Params["time_zone"] = "'+00:00'"
	if tweak != nil {
		tweak(dc)
	}
	conn, err := drv.NewConnector(dc)
	if err != nil {
		return nil, fmt.Errorf("provider %s: the DSN is not usable: %w", cfg.Name, err)
	}
	p := &Provider{
		name:              cfg.Name,
		cfg:               cfg,
		db:                sql.OpenDB(conn),
		nativeExpiry:      s.NativeExpiry,
		eventSchema:       cmp.Or(s.EventSchema, dc.DBName),
		terminateSessions: s.TerminateSessions,
		now:               deps.Now,
	}
	p.db.SetMaxOpenConns(4)
	p.db.SetConnMaxIdleTime(time.Minute)
	if p.nativeExpiry && p.eventSchema == "" {
		p.db.Close()
		return nil, fmt.Errorf("provider %s: native_expiry needs a schema to hold its events: set event_schema, or name a database in the DSN", cfg.Name)
	}
	if err := p.openEphemeral(dc, s.AccountHost); err != nil {
		p.db.Close()
		return nil, err
	}
	return p, nil
}

// target resolves a declared role to its database role.
func (p *Provider) target(role string) (string, error) {
	return providers.DeclaredTarget(p.cfg, role)
}

// CanonicalPrincipal implements providers.Canonicalizer: the spelling
// Members reports for the account s names ('alice'@'%' is alice,
// 'Bob'@'LOCALHOST' is 'Bob'@'localhost').
func (p *Provider) CanonicalPrincipal(s string) (string, error) {
	a, err := p.principal(s)
	if err != nil {
		return "", err
	}
	return a.String(), nil
}

func (p *Provider) principal(s string) (account, error) {
	a, err := parsePrincipal(s)
	if err != nil {
		return a, fmt.Errorf("provider %s: principal: %w", p.name, err)
	}
	return a, nil
}

// Server error numbers gitgrant tells apart.
const (
	erNoSuchUser       = 1133 // GRANT to an account that does not exist (MariaDB)
	erInvalidRole      = 1959 // a role that does not exist (MariaDB)
	erCannotRevokeRole = 1962 // not granted, or no such account (MariaDB)
	erUnknownAuthID    = 3523 // an account or role that does not exist (MySQL)
	erWrongLength      = 1470 // a name too long for the grant tables
	erEventExists      = 1537
	erUnknownThread    = 1094
)

func serverError(err error) (*drv.MySQLError, bool) {
	var me *drv.MySQLError
	ok := errors.As(err, &me)
	return me, ok
}

// classify turns a driver error into gitgrant's error kinds.
func (p *Provider) classify(op string, err error) error {
	me, ok := serverError(err)
	if !ok {
		// Network errors, driver.ErrBadConn, timeouts: the server is not
		// there or not answering.
		return providers.Unavailable("mysql "+p.name, op, err)
	}
	switch me.Number {
	case erNoSuchUser, erInvalidRole, erUnknownAuthID:
		return fmt.Errorf("provider %s: %s: %s: %w", p.name, op, me.Message, providers.ErrNotFound)
	case erWrongLength:
		return fmt.Errorf("provider %s: %s: %s: %w", p.name, op, me.Message, providers.ErrInvalidName)
	}
	// Access denied and the like need a person; lost connections and lock
	// waits do not.
	retryable := me.Number == 1205 || me.Number == 1213 || me.Number == 1040 || me.Number == 1053
	return &gitgrant.SystemError{System: "mysql " + p.name, Op: op, Err: fmt.Errorf("server error %d: %s", me.Number, me.Message), Retryable: retryable}
}

// isMariaDB finds the server's dialect on first use and remembers it.
func (p *Provider) isMariaDB(ctx context.Context) (bool, error) {
	p.dialect.Lock()
	defer p.dialect.Unlock()
	if p.dialect.known {
		return p.dialect.mariaDB, nil
	}
	var version string
	if err := p.db.QueryRowContext(ctx, "SELECT VERSION()").Scan(&version); err != nil {
		return false, p.classify("connect", err)
	}
	p.dialect.known = true
	p.dialect.mariaDB = strings.Contains(strings.ToLower(version), "mariadb")
	return p.dialect.mariaDB, nil
}

// roleSQL names a role in GRANT and REVOKE. MySQL roles are accounts;
// a bare name means host '%' on both servers.
func roleSQL(role string) string { return ident(role) }

// Members lists the accounts the role is granted to, except the account
// gitgrant connects as (which holds the roles it administers WITH ADMIN
// OPTION). With native expiry, each carries the time its EVENT revokes it.
func (p *Provider) Members(ctx context.Context, role string) ([]providers.Member, error) {
	target, err := p.target(role)
	if err != nil {
		return nil, err
	}
	maria, err := p.isMariaDB(ctx)
	if err != nil {
		return nil, err
	}
	args := []any{target}
	if p.nativeExpiry {
		args = append(args, p.eventSchema)
	}
	rows, err := p.db.QueryContext(ctx, membersQuery(maria, p.nativeExpiry), args...)
	if err != nil {
		return nil, p.classify("list "+role, err)
	}
	defer rows.Close()
	found := false
	out := []providers.Member{}
	ephemeral, prefix := p.cfg.IsEphemeral(role), p.cfg.RoleAccountPrefix(role)
	for rows.Next() {
		var user, host sql.NullString
		var until sql.NullTime
		if err := rows.Scan(&found, &user, &host, &until); err != nil {
			return nil, p.classify("list "+role, err)
		}
		if !user.Valid {
			continue
		}
		if ephemeral && host.String == "%" && gitgrant.CheckAccountName(prefix, user.String, maxAccount) == nil {
			continue // an ephemeral account is listed by Accounts
		}
		m := providers.Member{Principal: newAccount(user.String, host.String).String()}
		if until.Valid {
			m.Until = until.Time.UTC()
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, p.classify("list "+role, err)
	}
	if !found {
		return nil, fmt.Errorf("provider %s: database role %q of role %s does not exist: %w", p.name, target, role, providers.ErrNotFound)
	}
	return providers.SortMembers(out), nil
}

// membersQuery lists a role's grantees in one round trip: one row per
// grantee, or one row with NULLs when there are none; the first column
// says whether the role exists at all. Parameters: the role, then (with
// events) the event schema.
func membersQuery(maria, events bool) string {
	roles, grants := "mysql.user r ON r.User = ? AND r.is_role = 'Y'", "mysql.roles_mapping m ON m.Role = r.User"
	user, host := "m.User", "m.Host"
	if !maria {
		roles, grants = "mysql.user r ON r.User = ? AND r.Host = '%'", "mysql.role_edges m ON m.FROM_USER = r.User AND m.FROM_HOST = r.Host"
		user, host = "m.TO_USER", "m.TO_HOST"
	}
	until, eventsJoin := "NULL", ""
	if events {
		until = "e.EXECUTE_AT"
		eventsJoin = "LEFT JOIN information_schema.EVENTS e ON e.EVENT_SCHEMA = ? AND e.EVENT_NAME = CONCAT('" + eventPrefix + "', " +
			"LEFT(SHA2(CONCAT(r.User, 0x00, " + user + ", 0x00, " + host + "), 256), 16))\n"
	}
	return "SELECT r.User IS NOT NULL, " + user + ", " + host + ", " + until + "\n" +
		"FROM (SELECT 1) one\n" +
		"LEFT JOIN " + roles + "\n" +
		"LEFT JOIN " + grants + "\n" +
		"  AND CONCAT(" + user + ", '@', " + host + ") <> CURRENT_USER()\n" +
		eventsJoin
}

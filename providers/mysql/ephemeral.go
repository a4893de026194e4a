package mysql

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/providers"
	drv "github.com/go-sql-driver/mysql"
)

// Ephemeral accounts (roles with mode: ephemeral): a user 'name'@'%'
// made for one request, with the role granted as its default role, and a
// one-time EVENT that drops it (and, on MariaDB, kills its connections)
// at the end of the window, so the account ends even if gitgrant is down.

var _ providers.Ephemeral = (*Provider)(nil)

// maxAccount is the longest ephemeral account name: MySQL 8 takes 32
// characters in a user name (MariaDB 80).
const maxAccount = 32

// dropEventPrefix names the EVENTs that drop ephemeral accounts.
const dropEventPrefix = "gitgrant_drop_"

// Server errors of account statements.
const (
	erCannotUser = 1396 // CREATE USER of an account that exists (and other account operations)
)

// IsEphemeral implements providers.Ephemeral.
func (p *Provider) IsEphemeral(role string) bool { return p.cfg.IsEphemeral(role) }

// AccountPrefix implements providers.Ephemeral.
func (p *Provider) AccountPrefix(role string) string { return p.cfg.RoleAccountPrefix(role) }

// openEphemeral checks the ephemeral roles' settings and finds where
// their accounts connect; it runs when the provider opens.
func (p *Provider) openEphemeral(dc *drv.Config, accountHost string) error {
	ephemeral := false
	for role := range p.cfg.Roles {
		if !p.cfg.IsEphemeral(role) {
			continue
		}
		ephemeral = true
		if err := gitgrant.CheckAccountPrefix(p.cfg.RoleAccountPrefix(role), maxAccount); err != nil {
			return fmt.Errorf("provider %s: role %s: %w", p.name, role, err)
		}
		if r := p.cfg.Roles[role]; r.OnOwned != "" {
			return fmt.Errorf("provider %s: role %s: on_owned does not apply to mysql: accounts own no tables, and the DEFINER of a view, routine, trigger or event cannot be reassigned", p.name, role)
		}
	}
	if !ephemeral {
		return nil
	}
	if p.eventSchema == "" {
		return fmt.Errorf("provider %s: ephemeral roles need a schema to hold the events that drop their accounts at expiry: set event_schema, or name a database in the DSN", p.name)
	}
	p.connect = providers.Connection{Database: dc.DBName, Kind: "mysql"}
	if dc.Net == "unix" {
		p.connect.Host = dc.Addr
	} else if host, port, err := net.SplitHostPort(dc.Addr); err == nil {
		p.connect.Host = host
		p.connect.Port, _ = strconv.Atoi(port)
	} else {
		p.connect.Host = dc.Addr
	}
	var err error
	if p.connect, err = p.connect.WithAccountHost(p.name, accountHost); err != nil {
		return err
	}
	// gitgrant logs in as a new account once, on MariaDB, to make its
	// role its default (SET DEFAULT ROLE ... FOR another account needs
	// write access to the mysql schema). Same server and TLS, no
	// database: the account may not see the DSN's.
	p.accountDSN = dc.Clone()
	p.accountDSN.DBName = ""
	return nil
}

// accountOf checks that name is one of role's ephemeral accounts.
func (p *Provider) accountOf(role, name string) (target string, a account, err error) {
	if target, err = p.target(role); err != nil {
		return "", a, err
	}
	if !p.cfg.IsEphemeral(role) {
		return "", a, fmt.Errorf("provider %s: role %s is not ephemeral (mode: ephemeral)", p.name, role)
	}
	if err := gitgrant.CheckAccountName(p.cfg.RoleAccountPrefix(role), name, maxAccount); err != nil {
		return "", a, fmt.Errorf("provider %s: role %s: %w: %v", p.name, role, providers.ErrInvalidName, err)
	}
	return target, newAccount(name, "%"), nil
}

// nativePasswordHash is the mysql_native_password hash of password, as
// PASSWORD() computes it: sending it instead of the password keeps the
// password out of the server's logs.
func nativePasswordHash(password string) string {
	first := sha1.Sum([]byte(password))
	second := sha1.Sum(first[:])
	return "*" + strings.ToUpper(hex.EncodeToString(second[:]))
}

func dropEventName(a account) string {
	sum := sha256.Sum256([]byte(a.user + "\x00" + a.host))
	return dropEventPrefix + hex.EncodeToString(sum[:8])
}

// createDropEventSQL schedules the drop of a at at (UTC): the account
// goes, and on MariaDB its connections with it.
func (p *Provider) createDropEventSQL(maria bool, a account, at time.Time) string {
	body := "DROP USER IF EXISTS " + a.sql()
	create := "CREATE EVENT "
	if maria {
		body = "BEGIN DROP USER IF EXISTS " + a.sql() + "; KILL CONNECTION USER " + a.sql() + "; END"
		create = "CREATE OR REPLACE EVENT "
	}
	return create + ident(p.eventSchema) + "." + ident(dropEventName(a)) +
		" ON SCHEDULE AT " + literal(at.Format(time.DateTime)) +
		" ON COMPLETION NOT PRESERVE COMMENT 'gitgrant: drop ephemeral account at expiry' DO " + body
}

// CreateAccount implements providers.Ephemeral. The account exists before
// its role: first the user, then the EVENT that drops it at until, then
// the role and its default; a failure on the way drops what was made.
func (p *Provider) CreateAccount(ctx context.Context, role, name string, until time.Time) (providers.Account, error) {
	target, a, err := p.accountOf(role, name)
	if err != nil {
		return providers.Account{}, err
	}
	at := until.UTC().Truncate(time.Second)
	if !at.After(p.now()) {
		return providers.Account{}, fmt.Errorf("provider %s: create %s: until %s is not in the future", p.name, name, until.UTC().Format(time.RFC3339))
	}
	maria, err := p.isMariaDB(ctx)
	if err != nil {
		return providers.Account{}, err
	}
	op := "create account " + name + " for " + role
	secret := providers.NewPassword()
	hash := nativePasswordHash(secret)
	create := "CREATE USER " + a.sql() + " IDENTIFIED BY PASSWORD " + literal(hash)
	if !maria {
		// MySQL 8 has no IDENTIFIED BY PASSWORD; it rewrites passwords
		// out of its logs itself.
		create = "CREATE USER " + a.sql() + " IDENTIFIED BY " + literal(secret)
	}
	scrub := func(err error) error {
		if me, ok := serverError(err); ok {
			c := *me
			c.Message = providers.ScrubString(c.Message, secret, hash)
			err = &c
		}
		return providers.Scrub(p.classify(op, err), secret, hash)
	}
	if _, err := p.db.ExecContext(ctx, create); err != nil {
		if me, ok := serverError(err); ok && me.Number == erCannotUser {
			return providers.Account{}, fmt.Errorf("provider %s: %s: an account named %s exists already; gitgrant makes each account once, with a new name", p.name, op, a)
		}
		return providers.Account{}, scrub(err)
	}
	undo := func(err error) (providers.Account, error) {
		// Best effort: a later pass drops what is left (the ledger names it).
		p.db.ExecContext(context.WithoutCancel(ctx), "DROP USER IF EXISTS "+a.sql())
		p.db.ExecContext(context.WithoutCancel(ctx), "DROP EVENT IF EXISTS "+ident(p.eventSchema)+"."+ident(dropEventName(a)))
		return providers.Account{}, err
	}
	if _, err := p.db.ExecContext(ctx, p.createDropEventSQL(maria, a, at)); err != nil {
		return undo(p.classify(op+": schedule the drop", err))
	}
	if _, err := p.db.ExecContext(ctx, grantSQL(target, a)); err != nil {
		return undo(p.classify(op+": grant "+target, err))
	}
	if err := p.setDefaultRole(ctx, maria, target, a, secret); err != nil {
		return undo(scrub(err))
	}
	return providers.Account{Name: name, Secret: secret, Connect: p.connect}, nil
}

// setDefaultRole makes role active whenever a logs in: MySQL lets an
// account with CREATE USER set it; MariaDB lets only the account itself
// (or a writer of the mysql schema), so gitgrant logs in as it once.
func (p *Provider) setDefaultRole(ctx context.Context, maria bool, role string, a account, secret string) error {
	if !maria {
		_, err := p.db.ExecContext(ctx, "SET DEFAULT ROLE "+roleSQL(role)+" TO "+a.sql())
		return err
	}
	dc := p.accountDSN.Clone()
	dc.User, dc.Passwd = a.user, secret
	conn, err := drv.NewConnector(dc)
	if err != nil {
		return err
	}
	db := sql.OpenDB(conn)
	defer db.Close()
	_, err = db.ExecContext(ctx, "SET DEFAULT ROLE "+roleSQL(role))
	return err
}

// definedSQL lists the stored objects whose DEFINER is an account (that
// gitgrant's account can see): they stop working if it is dropped.
const definedSQL = `
SELECT 'view', TABLE_SCHEMA, TABLE_NAME FROM information_schema.VIEWS WHERE DEFINER = ?
UNION ALL SELECT LOWER(ROUTINE_TYPE), ROUTINE_SCHEMA, ROUTINE_NAME FROM information_schema.ROUTINES WHERE DEFINER = ?
UNION ALL SELECT 'trigger', TRIGGER_SCHEMA, TRIGGER_NAME FROM information_schema.TRIGGERS WHERE DEFINER = ?
UNION ALL SELECT 'event', EVENT_SCHEMA, EVENT_NAME FROM information_schema.EVENTS WHERE DEFINER = ?
LIMIT 11`

// DropAccount implements providers.Ephemeral: the account goes (no new
// logins), then its connections, then its EVENT. An account that is the
// DEFINER of a view, routine, trigger or event is locked, loses its role
// and its connections, and is kept (ErrOwnsObjects) until a person
// changes those objects: dropping it would break them.
func (p *Provider) DropAccount(ctx context.Context, role, name string) error {
	target, a, err := p.accountOf(role, name)
	if err != nil {
		return err
	}
	op := "drop account " + name
	maria, err := p.isMariaDB(ctx)
	if err != nil {
		return err
	}
	definer := a.user + "@" + a.host
	rows, err := p.db.QueryContext(ctx, definedSQL, definer, definer, definer, definer)
	if err != nil {
		return p.classify(op, err)
	}
	var defined []string
	for rows.Next() {
		var kind, schema, obj string
		if err := rows.Scan(&kind, &schema, &obj); err != nil {
			rows.Close()
			return p.classify(op, err)
		}
		defined = append(defined, fmt.Sprintf("%s %s.%s", kind, ident(schema), ident(obj)))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return p.classify(op, err)
	}
	if len(defined) > 0 {
		if _, err := p.db.ExecContext(ctx, "ALTER USER IF EXISTS "+a.sql()+" ACCOUNT LOCK"); err != nil {
			return p.classify(op+": lock", err)
		}
		if err := p.Revoke(ctx, role, a.String()); err != nil {
			return err
		}
		if err := p.killAccount(ctx, maria, a); err != nil {
			return err
		}
		if len(defined) > 10 {
			defined = append(defined[:10], "...")
		}
		return fmt.Errorf("provider %s: %s: it is the DEFINER of %s, which would stop working; it is locked and no longer holds %s. Change their DEFINER (or drop them), and gitgrant drops it at its next pass: %w",
			p.name, op, strings.Join(defined, ", "), target, providers.ErrOwnsObjects)
	}
	if _, err := p.db.ExecContext(ctx, "DROP USER IF EXISTS "+a.sql()); err != nil {
		return p.classify(op, err)
	}
	// Connections outlive DROP USER: end them, also those of an account
	// the EVENT dropped (MySQL's cannot kill them).
	if err := p.killAccount(ctx, maria, a); err != nil {
		return err
	}
	if _, err := p.db.ExecContext(ctx, "DROP EVENT IF EXISTS "+ident(p.eventSchema)+"."+ident(dropEventName(a))); err != nil {
		return p.classify(op+": drop its event", err)
	}
	return nil
}

// killAccount ends a's connections: one KILL USER on MariaDB, a KILL per
// connection on MySQL.
func (p *Provider) killAccount(ctx context.Context, maria bool, a account) error {
	if !maria {
		return p.TerminateSessions(ctx, a.String())
	}
	if _, err := p.db.ExecContext(ctx, "KILL CONNECTION USER "+a.sql()); err != nil {
		return p.classify("end the connections of "+a.String(), err)
	}
	return nil
}

// Accounts implements providers.Ephemeral: the users '<prefix>...'@'%'
// whose names gitgrant could have made.
func (p *Provider) Accounts(ctx context.Context, role string) ([]string, error) {
	if _, err := p.target(role); err != nil {
		return nil, err
	}
	maria, err := p.isMariaDB(ctx)
	if err != nil {
		return nil, err
	}
	prefix := p.cfg.RoleAccountPrefix(role)
	q := "SELECT User FROM mysql.user WHERE Host = '%' AND LEFT(User, ?) = ?"
	if maria {
		q += " AND is_role = 'N'"
	}
	rows, err := p.db.QueryContext(ctx, q+" ORDER BY User", len(prefix), prefix)
	if err != nil {
		return nil, p.classify("list accounts of "+role, err)
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, p.classify("list accounts of "+role, err)
		}
		if gitgrant.CheckAccountName(prefix, n, maxAccount) == nil {
			out = append(out, n)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, p.classify("list accounts of "+role, err)
	}
	return out, nil
}

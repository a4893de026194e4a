package mysql

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/providers"
)

// Grant grants the role to the account. With native expiry and an Until,
// it first schedules the EVENT that revokes the grant at Until (rounded
// down to the second), so that no grant ever exists without its fail-safe;
// a grant without Until drops any earlier event.
func (p *Provider) Grant(ctx context.Context, g providers.Grant) error {
	role, err := p.target(g.Role)
	if err != nil {
		return err
	}
	a, err := p.principal(g.Principal)
	if err != nil {
		return err
	}
	op := "grant " + g.Role + " to " + g.Principal
	if p.nativeExpiry {
		if g.Until.IsZero() {
			err = p.dropEvent(ctx, op, role, a)
		} else {
			err = p.scheduleRevoke(ctx, op, role, a, g.Until)
		}
		if err != nil {
			return err
		}
	}
	// Granting a role the account holds already is not an error.
	if _, err := p.db.ExecContext(ctx, grantSQL(role, a)); err != nil {
		err = p.classify(op, err)
		if p.nativeExpiry && !g.Until.IsZero() && errors.Is(err, providers.ErrNotFound) {
			p.dropEvent(ctx, op, role, a) // best effort: nothing to expire
		}
		return err
	}
	return nil
}

// scheduleRevoke creates or replaces the one-time EVENT that revokes role
// from a at until.
func (p *Provider) scheduleRevoke(ctx context.Context, op, role string, a account, until time.Time) error {
	at := until.UTC().Truncate(time.Second)
	if !at.After(p.now()) {
		return fmt.Errorf("provider %s: %s: until %s is not in the future", p.name, op, until.Format(time.RFC3339))
	}
	maria, err := p.isMariaDB(ctx)
	if err != nil {
		return err
	}
	if maria {
		if _, err := p.db.ExecContext(ctx, p.createEventSQL(true, role, a, at)); err != nil {
			return p.classify(op+": schedule expiry", err)
		}
		return nil
	}
	// MySQL has no CREATE OR REPLACE EVENT; a concurrent grant of the same
	// membership can win the race between drop and create, so try again.
	for attempt := 0; ; attempt++ {
		if err := p.dropEvent(ctx, op, role, a); err != nil {
			return err
		}
		_, err := p.db.ExecContext(ctx, p.createEventSQL(false, role, a, at))
		if me, ok := serverError(err); ok && me.Number == erEventExists && attempt < 3 {
			continue
		}
		if err != nil {
			return p.classify(op+": schedule expiry", err)
		}
		return nil
	}
}

func (p *Provider) dropEvent(ctx context.Context, op, role string, a account) error {
	_, err := p.db.ExecContext(ctx, p.dropEventSQL(role, a))
	if err != nil {
		return p.classify(op+": drop expiry event", err)
	}
	return nil
}

// The statements Grant and Revoke send, one home for each, which the
// benchmark also hands the mariadb client as the floor.

func grantSQL(role string, a account) string  { return "GRANT " + roleSQL(role) + " TO " + a.sql() }
func revokeSQL(role string, a account) string { return "REVOKE " + roleSQL(role) + " FROM " + a.sql() }

// createEventSQL schedules the revocation of role from a at at (whole
// seconds, UTC). MariaDB replaces an earlier event in the same statement.
func (p *Provider) createEventSQL(maria bool, role string, a account, at time.Time) string {
	create := "CREATE EVENT "
	if maria {
		create = "CREATE OR REPLACE EVENT "
	}
	return create + ident(p.eventSchema) + "." + ident(eventName(role, a)) +
		" ON SCHEDULE AT " + literal(at.Format(time.DateTime)) +
		" ON COMPLETION NOT PRESERVE COMMENT 'gitgrant: revoke at expiry'" +
		" DO " + revokeSQL(role, a)
}

func (p *Provider) dropEventSQL(role string, a account) string {
	return "DROP EVENT IF EXISTS " + ident(p.eventSchema) + "." + ident(eventName(role, a))
}

// Revoke takes the role from the account; not granted, or an account that
// does not exist, is success. It then drops the expiry event and, when
// configured to, ends the account's sessions.
func (p *Provider) Revoke(ctx context.Context, role, principal string) error {
	target, err := p.target(role)
	if err != nil {
		return err
	}
	a, err := p.principal(principal)
	if err != nil {
		return err
	}
	op := "revoke " + role + " from " + principal
	_, err = p.db.ExecContext(ctx, revokeSQL(target, a))
	if me, ok := serverError(err); ok {
		switch me.Number {
		case erCannotRevokeRole:
			err = nil
		case erUnknownAuthID: // MySQL: the account or the role is missing
			if _, merr := p.Members(ctx, role); merr != nil {
				return merr
			}
			err = nil
		}
	}
	if err != nil {
		return p.classify(op, err)
	}
	if p.nativeExpiry {
		if err := p.dropEvent(ctx, op, target, a); err != nil {
			return err
		}
	}
	if p.terminateSessions {
		return p.TerminateSessions(ctx, principal)
	}
	return nil
}

// NativeExpiry reports whether grants end by themselves: native_expiry is
// set and the server's event scheduler is ON right now. Any doubt (the
// server cannot be asked) is false.
func (p *Provider) NativeExpiry() bool {
	if !p.nativeExpiry {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	on, err := p.schedulerOn(ctx)
	return err == nil && on
}

func (p *Provider) schedulerOn(ctx context.Context) (bool, error) {
	var state string
	if err := p.db.QueryRowContext(ctx, "SELECT @@global.event_scheduler").Scan(&state); err != nil {
		return false, p.classify("read event_scheduler", err)
	}
	return strings.EqualFold(state, "ON") || state == "1", nil
}

// TerminateSessions kills every connection of the account's user name
// (the process list does not tell which host pattern a connection
// matched), except gitgrant's own.
func (p *Provider) TerminateSessions(ctx context.Context, principal string) error {
	a, err := p.principal(principal)
	if err != nil {
		return err
	}
	op := "terminate sessions of " + principal
	rows, err := p.db.QueryContext(ctx, "SELECT ID FROM information_schema.PROCESSLIST WHERE USER = ? AND ID <> CONNECTION_ID()", a.user)
	if err != nil {
		return p.classify(op, err)
	}
	var ids []uint64
	for rows.Next() {
		var id uint64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return p.classify(op, err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return p.classify(op, err)
	}
	var errs []error
	for _, id := range ids {
		_, err := p.db.ExecContext(ctx, fmt.Sprintf("KILL CONNECTION %d", id))
		if me, ok := serverError(err); ok && me.Number == erUnknownThread {
			continue // it ended by itself meanwhile
		}
		if err != nil {
			errs = append(errs, p.classify(op, err))
		}
	}
	return errors.Join(errs...)
}

// Check verifies that the server answers, that every managed role exists,
// and that native expiry can work when it is configured. Grant rights are
// proven by the first grant: MySQL and MariaDB have no side-effect-free
// way to ask whether an account may grant a role.
func (p *Provider) Check(ctx context.Context) error {
	if err := p.db.PingContext(ctx); err != nil {
		return p.classify("connect", err)
	}
	var errs []error
	for role := range p.cfg.Roles {
		if _, err := p.Members(ctx, role); err != nil {
			var sys *gitgrant.SystemError
			if errors.As(err, &sys) {
				return err
			}
			errs = append(errs, err)
		}
	}
	ephemeral := false
	for role := range p.cfg.Roles {
		ephemeral = ephemeral || p.cfg.IsEphemeral(role)
	}
	lacks, err := need(ctx, p.schedulerOn,
		p.nativeExpiry, "native_expiry is set but the event scheduler is not ON (SET GLOBAL event_scheduler=ON, and event_scheduler=ON in the server config): gitgrant alone revokes at expiry",
		ephemeral, "ephemeral roles need the event scheduler ON (SET GLOBAL event_scheduler=ON, and event_scheduler=ON in the server config) for the events that drop their accounts at expiry: without it gitgrant alone drops them")
	if err != nil {
		return err
	}
	errs = append(errs, lacks...)
	if p.nativeExpiry || ephemeral {
		var n int
		if err := p.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", p.eventSchema).Scan(&n); err != nil {
			return p.classify("check event schema", err)
		}
		if n == 0 {
			errs = append(errs, fmt.Errorf("event_schema %q does not exist (or the account cannot see it)", p.eventSchema))
		}
	}
	lacks, err = need(ctx, p.canKill,
		p.terminateSessions, "terminate_sessions is set but the account lacks PROCESS (to see other users' connections) and CONNECTION ADMIN or SUPER (to kill them)",
		ephemeral, "ephemeral roles need PROCESS and CONNECTION ADMIN (or SUPER) to end their accounts' connections")
	if err != nil {
		return err
	}
	errs = append(errs, lacks...)
	if len(errs) > 0 {
		return fmt.Errorf("provider %s: %w", p.name, errors.Join(errs...))
	}
	return nil
}

// need asks the server for a capability that a setting, the ephemeral
// roles, or both depend on (and only then), and says what its absence
// breaks: forSetting when the setting is on, forEphemeral when there are
// ephemeral roles.
func need(ctx context.Context, has func(context.Context) (bool, error), setting bool, forSetting string, ephemeral bool, forEphemeral string) ([]error, error) {
	if !setting && !ephemeral {
		return nil, nil
	}
	ok, err := has(ctx)
	if err != nil || ok {
		return nil, err
	}
	var lacks []error
	if setting {
		lacks = append(lacks, errors.New(forSetting))
	}
	if ephemeral {
		lacks = append(lacks, errors.New(forEphemeral))
	}
	return lacks, nil
}

// canKill reports whether the account holds, globally and directly, the
// privileges TerminateSessions needs. Without PROCESS the process list
// shows only the account's own connections, so killing would silently
// find nothing.
func (p *Provider) canKill(ctx context.Context) (bool, error) {
	var process, kill bool
	err := p.db.QueryRowContext(ctx, `
SELECT COALESCE(MAX(PRIVILEGE_TYPE = 'PROCESS'), 0), COALESCE(MAX(PRIVILEGE_TYPE IN ('SUPER', 'CONNECTION ADMIN')), 0)
FROM information_schema.USER_PRIVILEGES
WHERE GRANTEE = CONCAT("'", SUBSTRING_INDEX(CURRENT_USER(), '@', 1), "'@'", SUBSTRING_INDEX(CURRENT_USER(), '@', -1), "'")`).Scan(&process, &kill)
	if err != nil {
		return false, p.classify("check privileges", err)
	}
	return process && kill, nil
}

// Close closes the connection pool.
func (p *Provider) Close() error { return p.db.Close() }

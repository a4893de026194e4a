package mysql

import (
	"context"
	"database/sql"
	"time"

	"github.com/gitgrant/gitgrant/providers"
)

var _ providers.UsageObserver = (*Provider)(nil)

// Sessions lists the connections of principal's user name in
// information_schema.PROCESSLIST (MySQL and MariaDB), gitgrant's own
// excepted. The server keeps no connection start there; Started is the
// start of the connection's current command (now minus TIME), a lower
// bound of its use. A user name's connections from every host count:
// the list names the client's address, not the account it matched.
// Seeing other users' connections needs the PROCESS privilege.
func (p *Provider) Sessions(ctx context.Context, principal string) ([]providers.Session, error) {
	a, err := p.principal(principal)
	if err != nil {
		return nil, err
	}
	op := "list sessions of " + principal
	rows, err := p.db.QueryContext(ctx, "SELECT TIME FROM information_schema.PROCESSLIST WHERE USER = ? AND ID <> CONNECTION_ID() ORDER BY TIME DESC", a.user)
	if err != nil {
		return nil, p.classify(op, err)
	}
	defer rows.Close()
	now := p.now()
	var out []providers.Session
	for rows.Next() {
		var secs sql.NullInt64
		if err := rows.Scan(&secs); err != nil {
			return nil, p.classify(op, err)
		}
		s := providers.Session{}
		if secs.Valid {
			s.Started = now.Add(-time.Duration(secs.Int64) * time.Second).UTC().Truncate(time.Second)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, p.classify(op, err)
	}
	return out, nil
}

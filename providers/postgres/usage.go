package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gitgrant/gitgrant/providers"
)

var _ providers.UsageObserver = (*Provider)(nil)

// Sessions lists the client backends of principal in pg_stat_activity,
// gitgrant's own excepted. A role without pg_read_all_stats sees other
// roles' sessions without their start (Started is then zero).
func (p *Provider) Sessions(ctx context.Context, principal string) ([]providers.Session, error) {
	if err := validIdentifier(principal); err != nil {
		return nil, fmt.Errorf("provider %s: principal: %w", p.name, err)
	}
	rows, err := p.pool.Query(ctx, `
SELECT backend_start
FROM pg_catalog.pg_stat_activity
WHERE usename = $1 AND backend_type = 'client backend' AND pid <> pg_catalog.pg_backend_pid()
ORDER BY backend_start`, principal)
	if err != nil {
		return nil, p.classify("list sessions of "+principal, err)
	}
	starts, err := pgx.CollectRows(rows, pgx.RowTo[*time.Time])
	if err != nil {
		return nil, p.classify("list sessions of "+principal, err)
	}
	out := make([]providers.Session, len(starts))
	for i, s := range starts {
		if s != nil {
			out[i].Started = s.UTC()
		}
	}
	return out, nil
}

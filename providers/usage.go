package providers

import (
	"context"
	"time"
)

// UsageObserver is implemented by providers that can see whether a
// principal uses its access: the sessions of the principal open in the
// target system now. It is a sample, not a history: a session that
// began and ended between two looks is never seen (docs/report.md,
// "Usage"). Callers detect it with a type assertion.
type UsageObserver interface {
	Sessions(ctx context.Context, principal string) ([]Session, error)
}

// Session is one open session of a principal.
type Session struct {
	// Started is when the session began, when the system tells (zero
	// otherwise).
	Started time.Time
}

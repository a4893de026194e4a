package providertest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/providers"
)

// Figures are what GrantRevoke measured: how long each phase took on the
// clock it was given, and how many API requests it made (when the
// provider counts them with a Calls method).
type Figures struct {
	Grant, List, Revoke                time.Duration
	GrantCalls, ListCalls, RevokeCalls int64
}

// GrantRevoke grants role to each principal until until, one after
// another as the reconciler applies a plan; lists the role, which must
// show them all; and revokes them again. clock measures the phases: a fake
// clock that the fake moves by its round trips and the provider's waits,
// or the wall clock.
func GrantRevoke(tb testing.TB, p providers.Provider, role string, principals []string, until time.Time, clock gitgrant.Clock) Figures {
	tb.Helper()
	ctx := tb.Context()
	var f Figures
	calls := func() int64 {
		if c, ok := p.(interface{ Calls() int64 }); ok {
			return c.Calls()
		}
		return 0
	}
	phase := func(d *time.Duration, n *int64, run func()) {
		start, before := clock.Now(), calls()
		run()
		*d, *n = clock.Now().Sub(start), calls()-before
	}
	phase(&f.Grant, &f.GrantCalls, func() {
		if err := GrantEach(ctx, p, role, principals, until); err != nil {
			tb.Fatal(err)
		}
	})
	phase(&f.List, &f.ListCalls, func() {
		ms, err := p.Members(ctx, role)
		if err != nil || len(ms) != len(principals) {
			tb.Fatalf("Members: %d of %d, %v", len(ms), len(principals), err)
		}
	})
	phase(&f.Revoke, &f.RevokeCalls, func() {
		for _, who := range principals {
			if err := p.Revoke(ctx, role, who); err != nil {
				tb.Fatalf("Revoke(%s): %v", who, err)
			}
		}
	})
	return f
}

// GrantEach grants role to each principal in turn until until, as the
// reconciler applies a plan, and stops at the first error.
func GrantEach(ctx context.Context, p providers.Provider, role string, principals []string, until time.Time) error {
	for _, who := range principals {
		if err := p.Grant(ctx, providers.Grant{Role: role, Principal: who, Until: until}); err != nil {
			return fmt.Errorf("Grant(%s): %w", who, err)
		}
	}
	return nil
}

// Report reports the figures as benchmark metrics.
func (f Figures) Report(b *testing.B) {
	b.ReportMetric(float64(f.GrantCalls), "grant-calls")
	b.ReportMetric(float64(f.ListCalls), "list-calls")
	b.ReportMetric(float64(f.RevokeCalls), "revoke-calls")
	b.ReportMetric(f.Grant.Seconds(), "grant-s")
	b.ReportMetric(f.Revoke.Seconds(), "revoke-s")
	b.ReportMetric((f.Grant + f.List + f.Revoke).Seconds(), "total-s")
}

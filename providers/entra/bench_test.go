package entra

import (
	"testing"
	"time"

	"github.com/gitgrant/gitgrant/providers/internal/httpapitest"
	"github.com/gitgrant/gitgrant/providers/providertest"
)

// BenchmarkGrantRevoke1000 grants and then revokes 1,000 memberships of one
// group, one after another as the reconciler applies a plan, against the
// fake with Graph's throttling budget for a small tenant (3,500 resource
// units per 10 seconds per application; the fake charges 1 per read, 2 per
// list, 3 per write) and reads that miss a new membership once. The fake's
// clock moves 50ms per request (a usual round trip) and when gitgrant
// waits, so the seconds are the time the run would take against Graph.
// The busy-tenant case leaves gitgrant a tenth of that budget, to show
// 429s and Retry-After waits at scale.
func BenchmarkGrantRevoke1000(b *testing.B) {
	for _, mode := range []struct {
		name     string
		settings map[string]any
		budget   int
	}{
		{"members", nil, 3500},
		{"pim", map[string]any{"pim": true}, 3500},
		// Other applications have used up nine tenths of the budget.
		{"members-busy-tenant", nil, 350},
	} {
		b.Run(mode.name, func(b *testing.B) {
			upns := providertest.Numbered("user%04d@contoso.com", 1000)
			for b.Loop() {
				c := httpapitest.ManualClock()
				f := setup(b, c, 1, upns)
				f.Set(func() { f.budget.Limit, f.Latency = mode.budget, 50*time.Millisecond })
				p := open(b, config(f, map[string]string{"ops": groupID(0)}, mode.settings), c)
				providertest.GrantRevoke(b, p, "ops", upns, c.Now().Add(24*time.Hour), c).Report(b)
				f.ReportLimits(b, p.api)
			}
		})
	}
}

package okta

import (
	"testing"
	"time"

	"github.com/gitgrant/gitgrant/providers/internal/httpapitest"
	"github.com/gitgrant/gitgrant/providers/providertest"
)

// BenchmarkGrantRevoke1000 grants and then revokes 1,000 memberships of one
// group, one after another as the reconciler applies a plan, against the
// fake with Okta's usual per-endpoint limit of 600 requests a minute and
// reads that miss a new membership once. The fake's clock moves 50ms per
// request (a usual round trip) and when gitgrant waits, so the seconds are
// the time the run would take against Okta; 429s shows that gitgrant
// waited for each spent window instead of drawing refusals.
func BenchmarkGrantRevoke1000(b *testing.B) {
	logins := providertest.Numbered("user%04d@example.com", 1000)
	for b.Loop() {
		c := httpapitest.ManualClock()
		f := setup(b, c, []string{"00gops"}, logins)
		f.Set(func() { f.quota.Limit, f.Latency = 600, 50*time.Millisecond })
		p := open(b, config(f.url, "app", map[string]string{"ops": "00gops"}), c)
		providertest.GrantRevoke(b, p, "ops", logins, c.Now().Add(time.Hour), c).Report(b)
		f.ReportLimits(b, p.api)
	}
}

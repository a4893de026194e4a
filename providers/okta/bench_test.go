package okta

import (
	"fmt"
	"testing"
	"time"

	"github.com/gitgrant/gitgrant/providers"
)

// BenchmarkGrantRevoke1000 grants and then revokes 1,000 memberships of one
// group, one after another as the reconciler applies a plan, against the
// fake with Okta's usual per-endpoint limit of 600 requests a minute and
// reads that miss a new membership once. The fake's clock moves 50ms per
// request (a usual round trip) and when gitgrant waits, so okta-min is the
// time the run would take against Okta; 429s shows that gitgrant waited
// for each spent window instead of drawing refusals.
func BenchmarkGrantRevoke1000(b *testing.B) {
	const n = 1000
	var logins []string
	for i := range n {
		logins = append(logins, fmt.Sprintf("user%04d@example.com", i))
	}
	for b.Loop() {
		c := manualClock()
		f := setup(b, c, []string{"00gops"}, logins)
		f.set(func(f *fakeOkta) { f.perMinute, f.latency = 600, 50*time.Millisecond })
		p := open(b, config(f.url, "app", map[string]string{"ops": "00gops"}), c)
		ctx := b.Context()
		start := c.now()
		for _, l := range logins {
			if err := p.Grant(ctx, providers.Grant{Role: "ops", Principal: l, Until: start.Add(time.Hour)}); err != nil {
				b.Fatal(err)
			}
		}
		granted, grantCalls := c.now().Sub(start), p.api.Calls()
		ms, err := p.Members(ctx, "ops")
		if err != nil || len(ms) != n {
			b.Fatalf("Members: %d, %v", len(ms), err)
		}
		for _, l := range logins {
			if err := p.Revoke(ctx, "ops", l); err != nil {
				b.Fatal(err)
			}
		}
		f.mu.Lock()
		throttled, issued := f.throttled, f.issued
		f.mu.Unlock()
		b.ReportMetric(float64(grantCalls), "grant-calls")
		b.ReportMetric(float64(p.api.Calls()-grantCalls), "list+revoke-calls")
		b.ReportMetric(granted.Minutes(), "grant-okta-min")
		b.ReportMetric(c.now().Sub(start).Minutes(), "okta-min")
		b.ReportMetric(float64(throttled), "429s")
		waits, waited := p.api.Waited()
		b.ReportMetric(float64(waits), "limit-waits")
		b.ReportMetric(waited.Seconds(), "limit-wait-s")
		b.ReportMetric(float64(issued), "tokens")
	}
}

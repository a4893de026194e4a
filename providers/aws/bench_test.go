package aws

import (
	"fmt"
	"testing"
	"time"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/providers/providertest"
)

// BenchmarkGrantRevoke1000 grants 1,000 account assignments one after
// another, as the reconciler applies a provider's actions, lists them and
// revokes them, against the fake throttling each API at 20 requests in any
// one second (an assumed Identity Center limit; ThrottlingException over
// it) with every change asynchronous (IN_PROGRESS at first, SUCCEEDED at
// the first status read). The provider paces itself at 19 requests a
// second across both APIs and is never throttled. Run with -benchtime=1x.
func BenchmarkGrantRevoke1000(b *testing.B) {
	f := newFake(b)
	f.quota.Limit = 20 // each service
	names := make([]string, 1000)
	for i := range names {
		names[i] = fmt.Sprintf("user%04d", i)
		f.addUser(names[i], names[i]+"@acme.example")
	}
	cfg := testConfig(f, roles(), map[string]any{"requests_per_second": 19})
	for b.Loop() {
		p := mustOpen(b, cfg, nil)
		providertest.GrantRevoke(b, p, "admin", names, time.Now().Add(time.Hour), gitgrant.SystemClock).Report(b)
		f.Mu.Lock()
		b.ReportMetric(float64(f.Throttled), "throttled")
		f.Mu.Unlock()
	}
}

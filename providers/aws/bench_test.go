package aws

import (
	"fmt"
	"testing"
	"time"

	"github.com/gitgrant/gitgrant/providers"
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
	f.perSecond["SWBExternalService"], f.perSecond["AWSIdentityStore"] = 20, 20
	names := make([]string, 1000)
	for i := range names {
		names[i] = fmt.Sprintf("user%04d", i)
		f.addUser(names[i], names[i]+"@acme.example")
	}
	cfg := testConfig(f, roles(), map[string]any{"requests_per_second": 19})
	ctx := b.Context()
	for b.Loop() {
		p := mustOpen(b, cfg, nil)
		start := time.Now()
		for _, n := range names {
			if err := p.Grant(ctx, providers.Grant{Role: "admin", Principal: n, Until: time.Now().Add(time.Hour)}); err != nil {
				b.Fatal(err)
			}
		}
		granted, grantCalls := time.Since(start), p.Calls()
		ms, err := p.Members(ctx, "admin")
		if err != nil || len(ms) != len(names) {
			b.Fatalf("Members: %d, %v", len(ms), err)
		}
		listCalls := p.Calls() - grantCalls
		start = time.Now()
		for _, n := range names {
			if err := p.Revoke(ctx, "admin", n); err != nil {
				b.Fatal(err)
			}
		}
		revoked := time.Since(start)
		b.ReportMetric(float64(grantCalls), "grant-calls")
		b.ReportMetric(granted.Seconds(), "grant-s")
		b.ReportMetric(float64(listCalls), "list-calls")
		b.ReportMetric(float64(p.Calls()-grantCalls-listCalls), "revoke-calls")
		b.ReportMetric(revoked.Seconds(), "revoke-s")
		f.mu.Lock()
		b.ReportMetric(float64(f.throttled), "throttled")
		f.mu.Unlock()
	}
}

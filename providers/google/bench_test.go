package google

import (
	"testing"
	"time"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/providers/providertest"
)

// BenchmarkGrantRevoke1000 grants 1,000 memberships one after another, as
// the reconciler applies a provider's actions, lists them, and revokes
// them, against the fake with a quota of 10 requests in any one second
// (600 a minute, an assumed Cloud Identity / Resource Manager quota; set
// requests_per_second to yours). The provider paces itself at 9 a second
// and is never throttled. Run with -benchtime=1x: one iteration takes
// minutes, by design.
func BenchmarkGrantRevoke1000(b *testing.B) {
	for _, kind := range []string{KindGroups, KindIAM} {
		b.Run(kind, func(b *testing.B) {
			e := newEnv(b)
			names := providertest.Numbered("user%04d@acme.example", 1000)
			e.fake.addPrincipals(names...)
			e.fake.addGroup("ops@acme.example")
			e.fake.addPolicy("projects/acme-prod")
			e.fake.quota.Limit = 10
			roles := map[string]string{"ops": "ops@acme.example"}
			if kind == KindIAM {
				roles = map[string]string{"ops": "roles/viewer"}
			}
			cfg := e.config(kind, roles, map[string]any{"requests_per_second": 9})
			ctx := b.Context()
			for b.Loop() {
				pp, err := Open(ctx, cfg, e.deps)
				if err != nil {
					b.Fatal(err)
				}
				providertest.GrantRevoke(b, pp, "ops", names, time.Now().Add(4*time.Hour), gitgrant.SystemClock).Report(b)
				e.fake.Mu.Lock()
				b.ReportMetric(float64(e.fake.Throttled), "throttled")
				e.fake.Mu.Unlock()
				b.ReportMetric(float64(e.fake.Calls()["token"]), "token-calls")
			}
		})
	}
}

package engine

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/trust"
)

func TestStandingUnderPending(t *testing.T) {
	t.Parallel()
	roles := map[string]gitgrant.RoleConfig{"ro": {}, "rw": {}}
	inForce := &gitgrant.Config{Providers: map[string]gitgrant.ProviderConfig{"db": {Roles: roles, Standing: []gitgrant.Standing{
		{Principal: "svc"}, {Principal: "etl", Roles: []string{"ro", "rw"}}, {Principal: "ops", Roles: []string{"rw"}},
	}}}}
	pendingCfg := &gitgrant.Config{Providers: map[string]gitgrant.ProviderConfig{"db": {Roles: roles, Standing: []gitgrant.Standing{
		{Principal: "svc", Roles: []string{"ro"}}, {Principal: "etl"}, {Principal: "new"},
	}}}}
	load := func(s trust.State) *gitgrant.Config {
		if s["gitgrant.yaml"] == "pending" {
			return pendingCfg
		}
		return nil // does not load
	}
	for _, c := range []struct {
		name string
		rep  trust.Report
		want []gitgrant.Standing
	}{
		{"nothing pending", trust.Report{}, inForce.Providers["db"].Standing},
		{"refused, not pending", trust.Report{Unverified: []trust.Unverified{{State: trust.State{"gitgrant.yaml": "pending"}}}}, inForce.Providers["db"].Standing},
		{"pending narrows, adds nothing", trust.Report{Unverified: []trust.Unverified{{Unknown: true, State: trust.State{"gitgrant.yaml": "pending"}}}},
			[]gitgrant.Standing{{Principal: "svc", Roles: []string{"ro"}}, {Principal: "etl", Roles: []string{"ro", "rw"}}}},
		{"pending that does not load narrows nothing", trust.Report{Unverified: []trust.Unverified{{Unknown: true, State: trust.State{"gitgrant.yaml": "broken"}}}}, inForce.Providers["db"].Standing},
	} {
		got := standingUnderPending(inForce, c.rep, load)
		if diff := cmp.Diff(c.want, got.Providers["db"].Standing); diff != "" {
			t.Errorf("%s (-want +got):\n%s", c.name, diff)
		}
	}
	if len(inForce.Providers["db"].Standing) != 3 {
		t.Errorf("the configuration in force was changed in place")
	}
}

package all_test

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/providers"
	"github.com/gitgrant/gitgrant/providers/all"
	"github.com/gitgrant/gitgrant/schema"
)

// Every registered type has a settings schema, or gitgrant.yaml could
// never select it; and every schema belongs to a registered type, or
// gitgrant.yaml could select a type this build cannot open.
func TestEveryTypeHasASchema(t *testing.T) {
	t.Parallel()
	known := schema.ProviderTypes()
	registered := all.Registry().Types()
	for _, typ := range registered {
		if !slices.Contains(known, typ) {
			t.Errorf("provider type %q has no settings schema: add %s.schema.json beside its code", typ, typ)
		}
	}
	if diff := cmp.Diff(registered, known); diff != "" {
		t.Errorf("registered types and settings schemas differ (-registered +schemas):\n%s", diff)
	}
}

// The types the config lets have `mode: ephemeral` are exactly those
// whose providers make ephemeral accounts.
func TestEphemeralTypesImplementEphemeral(t *testing.T) {
	t.Parallel()
	dsns := map[string]string{"postgres": "postgres://gitgrant@127.0.0.1:1/app", "mysql": "gitgrant@tcp(127.0.0.1:1)/app"}
	for _, typ := range schema.EphemeralTypes() {
		dsn, ok := dsns[typ]
		if !ok {
			t.Errorf("type %s has ephemeral accounts in the config; add it here", typ)
			continue
		}
		deps := providers.DefaultDeps()
		deps.Getenv = func(string) string { return dsn }
		cfg := gitgrant.ProviderConfig{Name: "p", Type: typ, Settings: map[string]any{"dsn_env": "DSN"},
			Roles: map[string]gitgrant.RoleConfig{"r": {Mode: gitgrant.ModeEphemeral}}}
		p, err := all.Registry().Open(t.Context(), cfg, deps)
		if err != nil {
			t.Errorf("%s: %v", typ, err)
			continue
		}
		if e, ok := p.(providers.Ephemeral); !ok || !e.IsEphemeral("r") || e.AccountPrefix("r") != "gg_r_" {
			t.Errorf("%s: the provider does not make ephemeral accounts of role r", typ)
		}
		p.Close()
	}
}

package all_test

import (
	"slices"
	"testing"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/providers"
	"github.com/gitgrant/gitgrant/providers/all"
	"github.com/gitgrant/gitgrant/schema"
)

// Every registered type has a settings schema, or gitgrant.yaml could
// never select it.
func TestEveryTypeHasASchema(t *testing.T) {
	t.Parallel()
	known := schema.ProviderTypes()
	for _, typ := range all.Registry().Types() {
		if !slices.Contains(known, typ) {
			t.Errorf("provider type %q has no schema/providers/%s.schema.json", typ, typ)
		}
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

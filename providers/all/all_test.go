package all_test

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/providers"
	"github.com/gitgrant/gitgrant/providers/all"
	"github.com/gitgrant/gitgrant/providers/aws"
	"github.com/gitgrant/gitgrant/providers/entra"
	"github.com/gitgrant/gitgrant/providers/exec"
	"github.com/gitgrant/gitgrant/providers/githubteam"
	"github.com/gitgrant/gitgrant/providers/google"
	"github.com/gitgrant/gitgrant/providers/kubernetes"
	"github.com/gitgrant/gitgrant/providers/ldap"
	"github.com/gitgrant/gitgrant/providers/mysql"
	"github.com/gitgrant/gitgrant/providers/okta"
	"github.com/gitgrant/gitgrant/providers/postgres"
	"github.com/gitgrant/gitgrant/providers/providertest"
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

// Every type's Settings has a json tag for each key of its schema and no
// other: a key the schema accepts is one Open reads.
func TestSettingsMatchSchemas(t *testing.T) {
	t.Parallel()
	settings := map[string]any{
		postgres.Type:   postgres.Settings{},
		mysql.Type:      mysql.Settings{},
		exec.Type:       exec.Settings{},
		ldap.Type:       ldap.Settings{},
		githubteam.Type: githubteam.Settings{},
		okta.Type:       okta.Settings{},
		entra.Type:      entra.Settings{},
		google.Type:     google.Settings{},
		aws.Type:        aws.Settings{},
		kubernetes.Type: kubernetes.Settings{},
	}
	for _, typ := range all.Registry().Types() {
		s, ok := settings[typ]
		if !ok {
			t.Errorf("type %s: add its Settings here", typ)
			continue
		}
		t.Run(typ, func(t *testing.T) { providertest.SettingsMatchSchema(t, typ, s) })
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

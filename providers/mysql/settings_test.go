package mysql

import (
	"testing"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/providers"
	"github.com/gitgrant/gitgrant/providers/providertest"
)

// TestOpenRefusesSettings: the settings are decoded strictly, so a key
// the schema does not name or a value of another type stops Open, as the
// schema stops gitgrant.yaml; no DSN is quoted.
func TestOpenRefusesSettings(t *testing.T) {
	t.Parallel()
	good := gitgrant.ProviderConfig{Name: "my", Type: Type, Roles: map[string]gitgrant.RoleConfig{"r": {}}, Settings: map[string]any{"dsn_env": "MYTEST_DSN"}}
	open := func(cfg gitgrant.ProviderConfig) (providers.Provider, error) {
		return Open(t.Context(), cfg, depsWith("root:sekret@tcp(db:3306)/app"))
	}
	providertest.CheckRefusals(t, good, open, []providertest.Refusal{
		{Name: "unknown setting", Settings: map[string]any{"dsn": "root:sekret@tcp(db:3306)/"}, Says: `unknown setting "dsn"`},
		{Name: "setting of another type", Settings: map[string]any{"native_expiry": "yes"}, Says: "native_expiry must be true or false"},
		{Name: "both dsn_env and dsn_file", Settings: map[string]any{"dsn_file": "/run/dsn"}, Says: "not both"},
	}, "sekret")
}

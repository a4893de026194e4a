package mysql

import (
	"strings"
	"testing"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/providers/providertest"
)

func TestSettingsMatchSchema(t *testing.T) {
	t.Parallel()
	providertest.SettingsMatchSchema(t, Type, Settings{})
}

// TestOpenRefusesSettings: the settings are decoded strictly, so a key
// the schema does not name or a value of another type stops Open, as the
// schema stops gitgrant.yaml; no DSN is quoted.
func TestOpenRefusesSettings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		settings map[string]any
		want     string
	}{
		{"unknown setting", map[string]any{"dsn": "root:sekret@tcp(db:3306)/"}, `unknown setting "dsn"`},
		{"setting of another type", map[string]any{"native_expiry": "yes"}, "native_expiry must be true or false"},
		{"both dsn_env and dsn_file", map[string]any{"dsn_file": "/run/dsn"}, "not both"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			settings := map[string]any{"dsn_env": "MYTEST_DSN"}
			for k, v := range tt.settings {
				settings[k] = v
			}
			cfg := gitgrant.ProviderConfig{Name: "my", Type: Type, Roles: map[string]gitgrant.RoleConfig{"r": {}}, Settings: settings}
			p, err := Open(t.Context(), cfg, depsWith("root:sekret@tcp(db:3306)/app"))
			if err == nil {
				p.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "sekret") {
				t.Errorf("error %q: want it to mention %q and no password", err, tt.want)
			}
		})
	}
}

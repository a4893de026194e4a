package entra

import (
	"errors"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/gitgrant/gitgrant/providers/providertest"
	"github.com/gitgrant/gitgrant/schema"
)

// TestConfigFromYAML: settings the schema accepts open a provider, and
// the schema refuses what Open would (an inline secret, an unknown key).
func TestConfigFromYAML(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("testdata/gitgrant.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, diags := schema.LoadConfig("gitgrant.yaml", data)
	if diags.HasErrors() {
		t.Fatalf("LoadConfig: %v", diags)
	}
	d := deps()
	d.ReadFile = func(name string) ([]byte, error) {
		if name == "/run/secrets/entra-gitgrant" {
			return []byte(testSecret + "\n"), nil
		}
		return nil, errors.New("no such file")
	}
	for _, name := range slices.Sorted(maps.Keys(cfg.Providers)) {
		p, err := Open(t.Context(), cfg.Providers[name], d)
		if err != nil {
			t.Errorf("Open(%s): %v", name, err)
			continue
		}
		p.Close()
	}

	bad := []struct{ name, edit, want string }{
		{"inline client secret", "client_secret_env: ENTRA_CLIENT_SECRET", "client_secret: abc~def"},
		{"unknown setting", "pim: true", "pim: true\n    pim_policy: x"},
		{"principal by mail", "principal: userPrincipalName", "principal: mail"},
		{"pim as a string", "pim: true", "pim: \"yes\""},
	}
	for _, b := range bad {
		text := strings.Replace(string(data), b.edit, b.want, 1)
		if _, diags := schema.LoadConfig("gitgrant.yaml", []byte(text)); !diags.HasErrors() {
			t.Errorf("%s: LoadConfig accepted it", b.name)
		}
	}
}

func TestSettingsMatchSchema(t *testing.T) {
	t.Parallel()
	providertest.SettingsMatchSchema(t, Type, Settings{})
}

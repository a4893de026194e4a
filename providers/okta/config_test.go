package okta

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
// the schema refuses what Open would (an inline token, an unknown key).
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
	_, pemKey := testKey()
	d.ReadFile = func(name string) ([]byte, error) {
		if name == "/run/secrets/okta-gitgrant.pem" {
			return []byte(pemKey), nil
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
		{"inline API token", "api_token_env: OKTA_API_TOKEN", "api_token: 00abcdef"},
		{"unknown setting", "principal: login", "principal: login\n    group_prefix: x"},
		{"principal by id", "principal: login", "principal: id"},
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

package providertest

import (
	"maps"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/providers"
	"github.com/gitgrant/gitgrant/schema"
)

// Edit changes a gitgrant.yaml text: the first Old becomes New.
type Edit struct {
	Name, Old, New string
}

// ConfigFromYAML loads the gitgrant.yaml at path as every command does,
// opens each provider it declares with open (and closes it), and checks
// that the schema refuses the file after each edit: settings the schema
// accepts must open, and what Open would refuse the schema refuses first.
func ConfigFromYAML(t *testing.T, path string, open func(gitgrant.ProviderConfig) (providers.Provider, error), refused ...Edit) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg, diags := schema.LoadConfig("gitgrant.yaml", data)
	if diags.HasErrors() {
		t.Fatalf("LoadConfig: %v", diags)
	}
	for _, name := range slices.Sorted(maps.Keys(cfg.Providers)) {
		p, err := open(cfg.Providers[name])
		if err != nil {
			t.Errorf("Open(%s): %v", name, err)
			continue
		}
		p.Close()
	}
	for _, e := range refused {
		if !strings.Contains(string(data), e.Old) {
			t.Errorf("%s: %s has no %q to change", e.Name, path, e.Old)
			continue
		}
		text := strings.Replace(string(data), e.Old, e.New, 1)
		if _, diags := schema.LoadConfig("gitgrant.yaml", []byte(text)); !diags.HasErrors() {
			t.Errorf("%s: LoadConfig accepted it", e.Name)
		}
	}
}

// Config is a provider entry named name of type typ that declares a role
// for each target (role -> target), with settings: the keys of each map,
// a later map's over an earlier's.
func Config(typ, name string, targets map[string]string, settings ...map[string]any) gitgrant.ProviderConfig {
	cfg := gitgrant.ProviderConfig{Name: name, Type: typ, Roles: map[string]gitgrant.RoleConfig{}, Settings: map[string]any{}}
	for role, target := range targets {
		cfg.Roles[role] = gitgrant.RoleConfig{Target: target}
	}
	for _, m := range settings {
		maps.Copy(cfg.Settings, m)
	}
	return cfg
}

package providers

import (
	"fmt"
	"path"
	"strings"

	"gopkg.in/yaml.v3"
)

// Example is the entry `gitgrant init` writes into gitgrant.yaml for a new
// provider of a type. Each type brings its own, as <type>.example.yaml
// beside its schema, so that init has no list of types to extend.
type Example struct {
	// Settings are the YAML lines under the provider entry: the settings
	// the type cannot do without, placeholders marked "edit", secrets by
	// reference.
	Settings []string
	// Secrets are the environment variables the settings name.
	Secrets []string
	// Role is the example role; Target, when set, what it maps to.
	Role, Target string
	// Principal is how a person is named on this type, for the comment
	// on identities.
	Principal string
}

// ExampleOf returns the example entry of a provider of type typ named
// name, with the name filled in: {name} as given, {env} in capitals and
// underscores (the prefix of its secrets' variables), {snake} with
// underscores.
func ExampleOf(typ, name string) (Example, bool) {
	f, ok := schemaFiles()[typ]
	if !ok {
		return Example{}, false
	}
	b, err := settingsSchemas.ReadFile(path.Join(path.Dir(f), typ+".example.yaml"))
	if err != nil {
		return Example{}, false
	}
	var raw struct {
		Settings  string   `yaml:"settings"`
		Secrets   []string `yaml:"secrets"`
		Role      string   `yaml:"role"`
		Target    string   `yaml:"target"`
		Principal string   `yaml:"principal"`
	}
	if err := yaml.Unmarshal(b, &raw); err != nil {
		panic(fmt.Sprintf("embedded %s.example.yaml: %v", typ, err)) // a broken build
	}
	fill := strings.NewReplacer("{name}", name, "{env}", envPrefix(name), "{snake}", strings.ReplaceAll(name, "-", "_")).Replace
	ex := Example{Role: raw.Role, Target: fill(raw.Target), Principal: raw.Principal}
	if ex.Principal == "" {
		ex.Principal = "alice"
	}
	for _, line := range strings.Split(strings.TrimRight(raw.Settings, "\n"), "\n") {
		ex.Settings = append(ex.Settings, fill(line))
	}
	for _, s := range raw.Secrets {
		ex.Secrets = append(ex.Secrets, fill(s))
	}
	return ex, true
}

// envPrefix spells a provider name as the prefix of environment
// variables: ORDERS_DB for orders-db.
func envPrefix(name string) string {
	var b strings.Builder
	for _, r := range strings.ToUpper(name) {
		if (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

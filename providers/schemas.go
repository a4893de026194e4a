package providers

import (
	"embed"
	"io/fs"
	"path"
	"slices"
	"strings"
	"sync"
)

// Each provider type's settings schema lives in its own package directory,
// beside the settings struct it describes, named <type>.schema.json, and
// with it <type>.example.yaml, the entry `gitgrant init` writes (see
// ExampleOf). This package embeds them all, so that the schema package
// (which validates gitgrant.yaml and must not depend on any provider's
// technology) and init find them without a list to keep: a new provider
// brings its files along.
//
//go:embed */*.schema.json */*.example.yaml
var settingsSchemas embed.FS

// schemaFiles maps each type to its schema's path in settingsSchemas.
var schemaFiles = sync.OnceValue(func() map[string]string {
	files, _ := fs.Glob(settingsSchemas, "*/*.schema.json")
	out := make(map[string]string, len(files))
	for _, f := range files {
		out[strings.TrimSuffix(path.Base(f), ".schema.json")] = f
	}
	return out
})

// SettingsSchema returns the JSON Schema of a provider type's settings.
func SettingsSchema(typ string) ([]byte, bool) {
	f, ok := schemaFiles()[typ]
	if !ok {
		return nil, false
	}
	b, err := settingsSchemas.ReadFile(f)
	return b, err == nil
}

// SchemaTypes lists the provider types that have a settings schema, sorted.
func SchemaTypes() []string {
	var out []string
	for typ := range schemaFiles() {
		out = append(out, typ)
	}
	slices.Sort(out)
	return out
}

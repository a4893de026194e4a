package providers

import (
	"encoding/json"
	"io/fs"
	"strings"
	"testing"
)

// Every settings schema is JSON, and no two provider packages claim the
// same type.
func TestSettingsSchemas(t *testing.T) {
	t.Parallel()
	files, err := fs.Glob(settingsSchemas, "*/*.schema.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no settings schemas embedded: %v", err)
	}
	if types := SchemaTypes(); len(types) != len(files) {
		t.Errorf("%d schema files name %d types (%v): two packages claim one type", len(files), len(types), files)
	}
	for _, typ := range SchemaTypes() {
		b, ok := SettingsSchema(typ)
		var v map[string]any
		if !ok || json.Unmarshal(b, &v) != nil || v["type"] != "object" {
			t.Errorf("settings schema of %s is not a JSON Schema of an object", typ)
		}
	}
	if _, ok := SettingsSchema("no-such-type"); ok {
		t.Error("SettingsSchema found a type that does not exist")
	}
}

// Every type brings the entry `gitgrant init` writes, with the name
// filled in wherever the example asks for it.
func TestExamples(t *testing.T) {
	t.Parallel()
	for _, typ := range SchemaTypes() {
		ex, ok := ExampleOf(typ, "orders-db")
		if !ok {
			t.Errorf("provider type %s has no %s.example.yaml beside its schema", typ, typ)
			continue
		}
		if len(ex.Settings) == 0 || ex.Role == "" || ex.Principal == "" {
			t.Errorf("example of %s lacks settings, a role or a principal: %+v", typ, ex)
		}
		for _, s := range ex.Secrets {
			if !strings.HasPrefix(s, "ORDERS_DB_") || !strings.Contains(strings.Join(ex.Settings, "\n"), s) {
				t.Errorf("example of %s: secret %s is not named after the provider or not used by its settings", typ, s)
			}
		}
	}
	pg, _ := ExampleOf("postgres", "orders-db")
	if want := "orders_db_readonly"; pg.Target != want {
		t.Errorf("postgres example target = %q, want %q", pg.Target, want)
	}
	if _, ok := ExampleOf("no-such-type", "x"); ok {
		t.Error("ExampleOf found a type that does not exist")
	}
}

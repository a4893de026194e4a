package providers

import (
	"encoding/json"
	"io/fs"
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

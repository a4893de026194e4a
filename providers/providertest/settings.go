package providertest

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gitgrant/gitgrant/providers"
)

// SettingsMatchSchema checks that a provider type's settings struct and
// the schema beside it name the same settings: a key the schema allows but
// the struct lacks would make providers.Decode refuse a valid
// gitgrant.yaml, and a field the schema lacks could never be set.
func SettingsMatchSchema(t *testing.T, typ string, settings any) {
	t.Helper()
	raw, ok := providers.SettingsSchema(typ)
	if !ok {
		t.Fatalf("provider type %s has no settings schema beside it (%s.schema.json)", typ, typ)
	}
	var schema struct {
		Properties           map[string]json.RawMessage `json:"properties"`
		AdditionalProperties *bool                      `json:"additionalProperties"`
	}
	if err := json.Unmarshal(raw, &schema); err != nil {
		t.Fatalf("settings schema of %s: %v", typ, err)
	}
	if schema.AdditionalProperties == nil || *schema.AdditionalProperties {
		t.Errorf("settings schema of %s allows keys it does not name; set additionalProperties: false", typ)
	}
	var inSchema []string
	for k := range schema.Properties {
		inSchema = append(inSchema, k)
	}
	slices.Sort(inSchema)
	inStruct := jsonNames(reflect.TypeOf(settings))
	slices.Sort(inStruct)
	if diff := cmp.Diff(inSchema, inStruct); diff != "" {
		t.Errorf("settings of %s: the schema and %T differ (-schema +struct):\n%s", typ, settings, diff)
	}
}

// jsonNames lists the JSON keys of a struct's fields, embedded structs'
// included.
func jsonNames(typ reflect.Type) []string {
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	var out []string
	for f := range typ.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case name == "-" || !f.IsExported():
		case f.Anonymous && name == "":
			out = append(out, jsonNames(f.Type)...)
		case name == "":
			out = append(out, f.Name)
		default:
			out = append(out, name)
		}
	}
	return out
}

package schema

import (
	"slices"
	"testing"

	"github.com/gitgrant/gitgrant/providers"
)

// A provider type's settings schema has one home: beside its provider, or
// (until it moves) here; never both, where one would silently win.
func TestProviderSchemaHasOneHome(t *testing.T) {
	t.Parallel()
	for _, typ := range keptProviderTypes() {
		if slices.Contains(providers.SchemaTypes(), typ) {
			t.Errorf("provider type %s has a settings schema beside its provider and in schema/providers: delete %s", typ, keptProviderSchema(typ))
		}
	}
	for _, typ := range ProviderTypes() {
		if _, ok := ProviderSchema(typ); !ok {
			t.Errorf("ProviderSchema(%q) is missing though ProviderTypes lists it", typ)
		}
		if _, ok := providerSchema(typ); !ok {
			t.Errorf("providerSchema(%q) does not compile", typ)
		}
	}
}

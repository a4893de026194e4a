package schema

import (
	"testing"
)

// Every provider type's settings schema, each beside its provider,
// compiles.
func TestProviderSchemasCompile(t *testing.T) {
	t.Parallel()
	for _, typ := range ProviderTypes() {
		if _, ok := ProviderSchema(typ); !ok {
			t.Errorf("ProviderSchema(%q) is missing though ProviderTypes lists it", typ)
		}
		if _, ok := providerSchema(typ); !ok {
			t.Errorf("providerSchema(%q) does not compile", typ)
		}
	}
}

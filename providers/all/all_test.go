package all_test

import (
	"slices"
	"testing"

	"github.com/gitgrant/gitgrant/providers/all"
	"github.com/gitgrant/gitgrant/schema"
)

// Every registered type has a settings schema, or gitgrant.yaml could
// never select it.
func TestEveryTypeHasASchema(t *testing.T) {
	t.Parallel()
	known := schema.ProviderTypes()
	for _, typ := range all.Registry().Types() {
		if !slices.Contains(known, typ) {
			t.Errorf("provider type %q has no schema/providers/%s.schema.json", typ, typ)
		}
	}
}

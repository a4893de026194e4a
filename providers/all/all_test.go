package all_test

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gitgrant/gitgrant/providers/all"
	"github.com/gitgrant/gitgrant/schema"
)

// Every registered type has a settings schema, or gitgrant.yaml could
// never select it; and every schema belongs to a registered type, or
// gitgrant.yaml could select a type this build cannot open.
func TestEveryTypeHasASchema(t *testing.T) {
	t.Parallel()
	known := schema.ProviderTypes()
	registered := all.Registry().Types()
	for _, typ := range registered {
		if !slices.Contains(known, typ) {
			t.Errorf("provider type %q has no settings schema: add %s.schema.json beside its code", typ, typ)
		}
	}
	if diff := cmp.Diff(registered, known); diff != "" {
		t.Errorf("registered types and settings schemas differ (-registered +schemas):\n%s", diff)
	}
}

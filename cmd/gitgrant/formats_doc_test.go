package main

import (
	"testing"

	"github.com/gitgrant/gitgrant/internal/render"
	"github.com/gitgrant/gitgrant/internal/testing/golden"
)

// The JSON examples in docs/formats.md are what the commands print: each
// decodes into the command's own type without an unknown field.
func TestFormatsDocJSONExamples(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		intro string
		into  any
	}{
		{"`reconcile --output json` adds to the plan:", &reconcileJSON{}},
		{"`status --output json`:", &render.Status{}},
		{"`providers check --output json`:", &render.ProvidersCheck{}},
	} {
		t.Run(tt.intro, func(t *testing.T) {
			if block, err := golden.DocExample(t, "../../docs/formats.md", tt.intro, tt.into); err != nil {
				t.Errorf("the example does not decode: %v\n%s", err, block)
			}
		})
	}
}

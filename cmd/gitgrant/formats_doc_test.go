package main

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/gitgrant/gitgrant/internal/render"
)

// The JSON examples in docs/formats.md are what the commands print: each
// decodes into the command's own type without an unknown field.
func TestFormatsDocJSONExamples(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("../../docs/formats.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	for _, tt := range []struct {
		intro string
		into  any
	}{
		{"`reconcile --output json` adds to the plan:", &reconcileJSON{}},
		{"`status --output json`:", &render.Status{}},
		{"`providers check --output json`:", &render.ProvidersCheck{}},
	} {
		t.Run(tt.intro, func(t *testing.T) {
			_, after, ok := strings.Cut(doc, tt.intro)
			if !ok {
				t.Fatalf("docs/formats.md has no %q", tt.intro)
			}
			_, block, _ := strings.Cut(after, "```json\n")
			block, _, _ = strings.Cut(block, "```")
			dec := json.NewDecoder(strings.NewReader(block))
			dec.DisallowUnknownFields()
			if err := dec.Decode(tt.into); err != nil {
				t.Errorf("the example does not decode: %v\n%s", err, block)
			}
		})
	}
}

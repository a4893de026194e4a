package render

import (
	"bytes"
	"path/filepath"
	"testing"
	"time"

	"github.com/gitgrant/gitgrant/internal/testing/golden"

	"github.com/gitgrant/gitgrant"
)

func sampleValidation() Validation {
	return NewValidation([]ValidatedFile{
		{Path: "gitgrant.yaml", Kind: "config"},
		{Path: "requests/orders-db/alice.yaml", Kind: "request",
			Request: &gitgrant.Request{Path: "requests/orders-db/alice.yaml", Version: 1, Requester: "alice", Grants: []gitgrant.GrantRef{{Provider: "orders-db", Role: "readwrite"}}, Duration: gitgrant.Duration(2 * time.Hour), Reason: "INC-1234"}},
		{Path: "requests/orders-db/bob.yaml", Kind: "request", Diagnostics: gitgrant.Diagnostics{
			{Position: gitgrant.Position{File: "requests/orders-db/bob.yaml", Line: 3, Column: 7}, Field: "role", Message: `role "admin" is not declared for provider orders-db`, Severity: gitgrant.SeverityError},
			{Position: gitgrant.Position{File: "requests/orders-db/bob.yaml", Line: 5, Column: 1}, Field: "reason", Message: "reason is short", Severity: gitgrant.SeverityWarning},
		}},
	})
}

// The document counts every file's diagnostics; a file without any has
// an empty list, not null.
func TestValidation(t *testing.T) {
	t.Parallel()
	v := sampleValidation()
	if want := (ValidationSummary{Files: 3, Requests: 2, Errors: 1, Warnings: 1}); v.Summary != want || v.OK || !v.Files[0].OK || v.Files[2].OK {
		t.Errorf("summary %+v, ok %v, files ok %v %v %v; want %+v, not ok, the bad file alone not ok", v.Summary, v.OK, v.Files[0].OK, v.Files[1].OK, v.Files[2].OK, want)
	}
	for _, tt := range []struct {
		name  string
		write func(*bytes.Buffer) error
	}{
		{"validation.json", func(b *bytes.Buffer) error { return WriteJSON(b, v) }},
		{"validation.txt", func(b *bytes.Buffer) error { return ValidationText(b, v) }},
		{"validation-summary.md", func(b *bytes.Buffer) error { return ValidationJobSummary(b, v) }},
	} {
		var b bytes.Buffer
		if err := tt.write(&b); err != nil {
			t.Fatal(err)
		}
		golden.Check(t, filepath.Join("testdata", tt.name), b.Bytes())
	}
}

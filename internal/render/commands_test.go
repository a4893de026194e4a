package render

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/gitgrant/gitgrant/internal/testing/golden"

	"github.com/gitgrant/gitgrant"
)

func TestTrustText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		doc  Trust
	}{
		{"trust-verified.txt", Trust{Root: "first", PolicyInForce: &gitgrant.PolicyInForce{Commit: "1111111", How: "trust root"}}},
		{"trust-unverified.txt", Trust{Root: "first", PolicyInForce: &gitgrant.PolicyInForce{
			Commit: "2222222", How: "pull request #12", ConfigCommit: "1111111", Problems: []string{"gitgrant.yaml:3:1: unknown key"},
			Unverified: []gitgrant.UnverifiedPolicy{{Commit: "3333333", Files: []string{"gitgrant.yaml", ".github/CODEOWNERS"},
				Reasons: []string{"pushed without a pull request", "no approval from a code owner"}}},
		}}},
		{"trust-none.txt", Trust{PolicyInForce: &gitgrant.PolicyInForce{Error: "no trust root: run gitgrant trust --root first"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var b bytes.Buffer
			TrustText(&b, tt.doc)
			golden.Check(t, filepath.Join("testdata", tt.name), b.Bytes())
		})
	}
}

func TestProviderChecks(t *testing.T) {
	t.Parallel()
	results := []ProviderCheck{
		{Name: "orders-db", Type: "postgres", OK: true, Roles: 2},
		{Name: "wiki", Type: "exec", OK: true, Roles: 1},
		{Name: "corp", Type: "okta", Error: "provider corp: role admins: not found\nprovider corp: role ops: not found"},
	}
	for _, tt := range []struct {
		name    string
		format  Format
		results []ProviderCheck
	}{
		{"providers-check.txt", Text, results},
		{"providers-check.json", JSON, results},
		{"providers-check-none.json", JSON, nil},
	} {
		var b bytes.Buffer
		if err := ProviderChecks(&b, tt.format, tt.results, false); err != nil {
			t.Fatal(err)
		}
		golden.Check(t, filepath.Join("testdata", tt.name), b.Bytes())
	}
	var b bytes.Buffer
	if err := ProviderChecks(&b, Text, nil, true); err != nil || b.String() != "no providers are declared in gitgrant.yaml\n" {
		t.Errorf("no providers: %q, %v", b.String(), err)
	}
}

package gitgrant_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/gitgrant/gitgrant/internal/workflowcheck"
)

// The workflows in .github/ and the action follow the rules of
// internal/workflowcheck: pinned actions, least privilege, and no pull
// request code run with a write token (actionlint, run by .ci/run, checks
// the rest).
func TestWorkflowsAreHardened(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(".github/workflows/*.y*ml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no workflows found in .github/workflows")
	}
	for _, path := range append(files, "action.yml") {
		t.Run(path, func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range workflowcheck.Check(path, data) {
				t.Error(p)
			}
		})
	}
}

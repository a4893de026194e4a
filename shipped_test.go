package gitgrant_test

import (
	"os/exec"
	"strings"
	"testing"
)

// The binary ships the simulated GitHub (internal/ghfake, the demo's,
// docs/demo.md) and the in-memory provider, and nothing else of the test
// support: no test servers, no test helpers, not the testing package.
func TestBinaryShipsNoTestSupport(t *testing.T) {
	t.Parallel()
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command on PATH: %v", err)
	}
	out, err := exec.Command(goCmd, "list", "-deps", "./cmd/gitgrant").Output()
	if err != nil {
		t.Fatalf("go list -deps ./cmd/gitgrant: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		switch {
		case pkg == "testing",
			strings.HasPrefix(pkg, "github.com/gitgrant/gitgrant/internal/testing/accesstest"),
			strings.HasPrefix(pkg, "github.com/gitgrant/gitgrant/internal/testing/gitserver"),
			strings.HasPrefix(pkg, "github.com/gitgrant/gitgrant/internal/testing/testenv"),
			strings.HasPrefix(pkg, "github.com/gitgrant/gitgrant/internal/testing/"),
			strings.HasPrefix(pkg, "github.com/gitgrant/gitgrant/providers/providertest"):
			t.Errorf("the gitgrant binary imports %s, which is test support", pkg)
		}
	}
}

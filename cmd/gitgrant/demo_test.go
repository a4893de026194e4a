package main

import (
	"path/filepath"
	"regexp"
	"testing"

	"github.com/gitgrant/gitgrant/internal/testing/golden"

	"github.com/gitgrant/gitgrant"
)

// What changes from run to run: the simulated GitHub's port and the real
// time the demo took.
var (
	demoPort = regexp.MustCompile(`127\.0\.0\.1:[0-9]+`)
	demoTook = regexp.MustCompile(`in [0-9]+\.[0-9]s\.`)
)

// The README's main job: on a machine with no credentials, the demo runs
// the real commands through request, approval, merge, grant, expiry,
// revocation, cleanup commit and audit. Its output is what people read
// first, so all of it is a golden file.
func TestDemo(t *testing.T) {
	t.Parallel()
	r := runCLI(t, nil, "demo", "--dir", t.TempDir())
	if r.code != gitgrant.ExitOK {
		t.Fatalf("demo: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	out := demoTook.ReplaceAllString(demoPort.ReplaceAllString(r.stdout, "127.0.0.1:PORT"), "in 0.0s.")
	golden.CheckString(t, filepath.Join("testdata", "golden", "demo.txt"), out)

	// The lines that make the story, whatever else the golden file says.
	wantContains(t, "the demo", out,
		"$ gitgrant trust --root first",
		"requests/orders-db/mallory-readwrite.yaml  rejected",
		"grant  orders-db/readwrite  alice",
		"orders-db role readwrite now: alice\n",
		"revoke  orders-db/readwrite  alice      -            requests/orders-db/alice-readwrite.yaml expired at 2026-11-22T14:20:00Z",
		"orders-db role readwrite now: nobody\n",
		"Gitgrant-Request: requests/orders-db/alice-readwrite.yaml",
		"granted     alice",
		"cleaned-up  alice",
	)
	if r.stderr != "" {
		t.Errorf("stderr: %s", r.stderr)
	}
}

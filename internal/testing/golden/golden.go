// SPDX-License-Identifier: Apache-2.0

// Package golden compares output that people read (plans, PR comments,
// reports, pages) with files under a package's testdata, and rewrites them
// when the test runs with -update:
//
//	go test ./internal/render -update
package golden

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata instead of comparing with them")

// Updating reports whether the test binary runs with -update, for tests
// that regenerate other artefacts (a screenshot) along with their golden
// files.
func Updating() bool { return *update }

// Check compares got with the file at path (relative to the package under
// test, usually testdata/...), or writes got there under -update.
func Check(t testing.TB, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run the test with -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s differs (-want +got); if the change is intended, rerun with -update:\n%s", path, diff)
	}
}

// CheckString is Check for text.
func CheckString(t testing.TB, path, got string) {
	t.Helper()
	Check(t, path, []byte(got))
}

// DocExample is the first fenced ```json block after marker in the
// document at path (a page under docs/ whose examples must stay what the
// commands print), decoded into v with unknown fields refused. It fails
// the test when the page, the marker or the block is missing, and
// returns the block for messages.
func DocExample(t testing.TB, path, marker string, v any) (string, error) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(data), marker)
	if !ok {
		t.Fatalf("%s has no %q", path, marker)
	}
	_, block, ok := strings.Cut(after, "```json\n")
	if !ok {
		t.Fatalf("%s has no ```json block after %q", path, marker)
	}
	block, _, _ = strings.Cut(block, "```")
	dec := json.NewDecoder(strings.NewReader(block))
	dec.DisallowUnknownFields()
	return block, dec.Decode(v)
}

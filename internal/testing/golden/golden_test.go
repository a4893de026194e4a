// SPDX-License-Identifier: Apache-2.0

package golden

import (
	"os"
	"path/filepath"
	"testing"
)

// recorder is a testing.TB that records failures instead of failing.
type recorder struct {
	testing.TB
	failed bool
}

func (r *recorder) Errorf(string, ...any) { r.failed = true }
func (r *recorder) Fatalf(string, ...any) { r.failed = true }
func (r *recorder) Helper()               {}

func TestCheck(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "out.golden")
	*update = true
	CheckString(t, path, "hello\n")
	*update = false
	if b, err := os.ReadFile(path); err != nil || string(b) != "hello\n" {
		t.Fatalf("-update wrote %q, %v", b, err)
	}
	same := &recorder{TB: t}
	CheckString(same, path, "hello\n")
	if same.failed {
		t.Error("equal output reported as different")
	}
	differs := &recorder{TB: t}
	CheckString(differs, path, "hello, world\n")
	if !differs.failed {
		t.Error("different output passed")
	}
	missing := &recorder{TB: t}
	CheckString(missing, filepath.Join(t.TempDir(), "none"), "x")
	if !missing.failed {
		t.Error("a missing golden file passed")
	}
}

// DocExample decodes the block after the marker, not an earlier one, and
// refuses a field the type does not have.
func TestDocExample(t *testing.T) {
	doc := filepath.Join(t.TempDir(), "doc.md")
	page := "# Formats\n\n```json\n{\"other\": 1}\n```\n\n`status --output json`:\n\n```json\n{\"version\": 1}\n```\n\n`old`:\n\n```json\n{\"version\": 1, \"gone\": true}\n```\n"
	if err := os.WriteFile(doc, []byte(page), 0o644); err != nil {
		t.Fatal(err)
	}
	var v struct {
		Version int `json:"version"`
	}
	if _, err := DocExample(t, doc, "`status --output json`:", &v); err != nil || v.Version != 1 {
		t.Errorf("status example: %+v, %v", v, err)
	}
	if _, err := DocExample(t, doc, "`old`:", &v); err == nil {
		t.Error("an unknown field decoded")
	}
}

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

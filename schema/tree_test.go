package schema

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gitgrant/gitgrant"
)

func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, content := range files {
		full := filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// One bad file never hides another's problems, nor stops valid files from
// being decoded.
func TestValidateTreeIsolatesBadFiles(t *testing.T) {
	t.Parallel()
	root := writeTree(t, map[string]string{
		"gitgrant.yaml":                 string(readTestFile(t, "testdata/gitgrant.yaml")),
		"requests/orders-db/good.yaml":  validRequest,
		"requests/orders-db/bad.yaml":   "requester: [\n",
		"requests/orders-db/worse.yaml": strings.Replace(validRequest, "duration: 4h", "duration: 9h", 1),
		"requests/orders-db/notes.txt":  "hello",
		"requests/stray.yaml":           validRequest,
		"requests/README.md":            "# How to request access",
		"requests/orders-db/.gitkeep":   "",
		// Not requests, passed over: documentation and hidden files.
		"requests/.gitkeep":                    "",
		"requests/orders-db/HOWTO.md":          "# Asking for orders-db",
		"requests/orders-db/.draft-alice.yaml": "requester: [\n",
	})
	if err := os.Symlink("../../gitgrant.yaml", filepath.Join(root, "requests/orders-db/link.yaml")); err != nil {
		t.Fatal(err)
	}
	config, requests, err := ReadTree(root)
	if err != nil {
		t.Fatal(err)
	}
	rep := Validate(config, requests, Options{Now: testNow})

	got := map[string]string{}
	for _, f := range rep.Files {
		first := "ok"
		if len(f.Diagnostics) > 0 {
			first = f.Diagnostics[0].Message
			if i := strings.IndexAny(first, ":("); i > 0 {
				first = first[:i]
			}
		}
		got[f.Path] = first
	}
	want := map[string]string{
		"gitgrant.yaml":                 "ok",
		"requests/orders-db/bad.yaml":   "YAML syntax error",
		"requests/orders-db/good.yaml":  "ok",
		"requests/orders-db/link.yaml":  "is a symbolic link",
		"requests/orders-db/notes.txt":  `"notes.txt" is not a request file`,
		"requests/orders-db/worse.yaml": "duration 9h exceeds the 4h maximum of orders-db/readwrite",
		"requests/stray.yaml":           "request file at the root of requests/",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("first diagnostic per file (-want +got):\n%s", diff)
	}
	if errs, _ := rep.Counts(); errs != 5 {
		t.Errorf("errors = %d, want 5:\n%v", errs, rep.Diagnostics())
	}
	for _, f := range rep.Files {
		if f.Path == "requests/orders-db/good.yaml" && f.Request == nil {
			t.Errorf("the valid file was not decoded next to the bad ones")
		}
	}
}

func TestValidateWithoutConfig(t *testing.T) {
	t.Parallel()
	root := writeTree(t, map[string]string{"requests/orders-db/a.yaml": validRequest})
	config, requests, err := ReadTree(root)
	if err != nil {
		t.Fatal(err)
	}
	rep := Validate(config, requests, Options{Now: testNow})
	if d := findDiag(rep.Diagnostics(), "gitgrant.yaml not found"); d == nil {
		t.Errorf("missing config not reported: %v", rep.Diagnostics())
	}
}

// A broken config must not silently let requests through unchecked, and
// says that their policy checks were skipped.
func TestBrokenConfigSkipsPolicyLoudly(t *testing.T) {
	t.Parallel()
	root := writeTree(t, map[string]string{
		"gitgrant.yaml":             "providers: [\n",
		"requests/orders-db/a.yaml": validRequest,
	})
	config, requests, _ := ReadTree(root)
	rep := Validate(config, requests, Options{Now: testNow})
	if rep.Config != nil {
		t.Fatal("broken config returned")
	}
	if findDiag(rep.Diagnostics(), "policy checks of request files were skipped") == nil {
		t.Errorf("skipped policy checks not reported: %v", rep.Diagnostics())
	}
	if errs, _ := rep.Counts(); errs == 0 {
		t.Errorf("a broken config must fail validation")
	}
}

func TestReadFilesLimitsLargeFiles(t *testing.T) {
	t.Parallel()
	root := writeTree(t, map[string]string{
		"gitgrant.yaml":               string(readTestFile(t, "testdata/gitgrant.yaml")),
		"requests/orders-db/big.yaml": strings.Repeat("#", 10<<20),
	})
	_, requests, err := ReadFiles(root, []string{"requests/orders-db/big.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	if len(requests[0].Data) > gitgrant.MaxFileSize+1 {
		t.Errorf("read %d bytes of a 10 MiB file; must stop after the limit", len(requests[0].Data))
	}
	rep := Validate(nil, requests, Options{Now: testNow})
	if findDiag(rep.Diagnostics(), "over the 64 KiB limit") == nil {
		t.Errorf("large file not rejected: %v", rep.Diagnostics())
	}
}

func TestReadTreeFailsLoudly(t *testing.T) {
	t.Parallel()
	if os.Geteuid() == 0 {
		// root reads unreadable directories; use a path that is a file instead
		root := writeTree(t, map[string]string{"requests": "not a directory"})
		if _, _, err := ReadTree(root); err == nil {
			t.Fatal("requests/ being a file read as an empty tree; it must be an error")
		}
		return
	}
	root := writeTree(t, map[string]string{"requests/orders-db/a.yaml": validRequest})
	os.Chmod(filepath.Join(root, "requests/orders-db"), 0)
	defer os.Chmod(filepath.Join(root, "requests/orders-db"), 0o755)
	if _, _, err := ReadTree(root); err == nil {
		t.Fatal("unreadable tree read as empty; it must be an error")
	}
}

// A cached parse gives the same report as a fresh one, and policy is still
// judged on every call: a cached file can become invalid as time passes.
func TestParseCache(t *testing.T) {
	t.Parallel()
	cfg := testConfigFile(t)
	files := []File{
		{Path: "requests/orders-db/a.yaml", Data: []byte(validRequest)},
		{Path: "requests/orders-db/b.yaml", Data: []byte("requester: [\n")},
		{Path: expiringPath, Data: []byte(expiringRequest)},
	}
	cache := &ParseCache{}
	fresh := Validate(cfg, files, Options{Now: testNow})
	first := Validate(cfg, files, Options{Now: testNow, Cache: cache})
	second := Validate(cfg, files, Options{Now: testNow, Cache: cache})
	if diff := cmp.Diff(fresh.Diagnostics(), second.Diagnostics()); diff != "" {
		t.Errorf("cached diagnostics differ (-fresh +cached):\n%s", diff)
	}
	if first.Files[1].Request != second.Files[1].Request {
		t.Errorf("second call parsed again instead of using the cache")
	}
	later := Validate(cfg, files, Options{Now: testNow.Add(2 * time.Hour), Cache: cache})
	if d := findDiag(later.Diagnostics(), "is in the past"); d == nil || d.File != expiringPath {
		t.Errorf("policy not re-judged on a cached file: %v", later.Diagnostics())
	}
}

// validateExpiring validates expiringRequest at expiringPath with the
// test config five hours after testNow, four after the request's end,
// under opts.
func validateExpiring(t *testing.T, opts Options) *Report {
	t.Helper()
	opts.Now = testNow.Add(5 * time.Hour)
	return Validate(testConfigFile(t), []File{{Path: expiringPath, Data: []byte(expiringRequest)}}, opts)
}

// Options.At judges a file's time-based rules at its own time: a request
// merged before its expiry is valid then, whatever the clock says now.
func TestValidateAt(t *testing.T) {
	t.Parallel()
	if rep := validateExpiring(t, Options{}); findDiag(rep.Diagnostics(), "is in the past") == nil {
		t.Errorf("judged now, an expiry in the past is an error: %v", rep.Diagnostics())
	}
	rep := validateExpiring(t, Options{At: map[string]time.Time{expiringPath: testNow}})
	if len(rep.Diagnostics()) != 0 || rep.Files[1].Request == nil {
		t.Errorf("judged at its merge, the request is valid: %v", rep.Diagnostics())
	}
}

// A committed request whose window ended is the reconciler's to clean up:
// a warning on a branch, an error only in a change that adds it.
func TestValidateCommittedExpiryIsAWarning(t *testing.T) {
	t.Parallel()
	rep := validateExpiring(t, Options{Committed: true})
	errs, warnings := rep.Counts()
	d := findDiag(rep.Diagnostics(), "expired at 2026-11-22T13:00:00Z")
	if errs != 0 || warnings != 1 || d == nil || d.Severity != gitgrant.SeverityWarning || d.Field != "expires" || d.Line != 5 {
		t.Errorf("committed: %d errors, %d warnings, %+v; want one warning at the expires line", errs, warnings, rep.Diagnostics())
	}
	if rep.Files[1].Request == nil {
		t.Errorf("an expired committed request still parses into a request")
	}
	if errs, _ := validateExpiring(t, Options{}).Counts(); errs != 1 {
		t.Errorf("under review: %d errors, want 1", errs)
	}
}

// A request path is written into cleanup commit trailers, comments and
// logs: characters that forge a line there, or that are markup, are
// refused by name, with the file named and what to do.
func TestRequestPathCharacters(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		path, what string // what: the character as the message names it; "" when the path is fine
	}{
		{"requests/orders-db/x.yaml\nGitgrant-Approved-By: mallory.yaml", "a newline (U+000A)"},
		{"requests/orders-db/x\r.yaml", "a carriage return (U+000D)"},
		{"requests/orders-db/x\t.yaml", "a tab (U+0009)"},
		{"requests/orders-db/x\x00.yaml", "U+0000"},
		{"requests/orders-db/x\x1b[31m.yaml", "U+001B"},
		{"requests/orders-db/alice\u202eylm.yaml", "U+202E"},
		{"requests/orders-db/ali\u200bce.yaml", "U+200B"},
		{"requests/orders-db/x\u2028.yaml", "U+2028"},
		{"requests/orders-db/`x`.yaml", "a backtick (`)"},
		{"requests/orders-db/<img>.yaml", "<"},
		{"requests/orders-db/x>.yaml", ">"},
		{"requests/orders-db/bad\xffutf8.yaml", "not valid UTF-8"},
		{"requests/orders-db/zoë (2).yaml", ""},
	} {
		rep := Validate(testConfigFile(t),
			[]File{{Path: tt.path, Data: []byte(validRequest), Size: int64(len(validRequest))}}, Options{Now: testNow})
		ds := rep.Files[1].Diagnostics
		if tt.what == "" {
			if len(ds) > 0 || rep.Files[1].Request == nil {
				t.Errorf("%q refused: %v", tt.path, ds)
			}
			continue
		}
		if len(ds) != 1 || rep.Files[1].Request != nil {
			t.Errorf("%q: %v, want one error and no request", tt.path, ds)
			continue
		}
		d := ds[0]
		if d.File != tt.path || d.Severity != gitgrant.SeverityError || !strings.Contains(d.Message, tt.what) || !strings.Contains(d.Message, strconv.Quote(tt.path)) || !strings.Contains(d.Hint, "rename") {
			t.Errorf("%q: %+v, want an error on the file that names %q and quotes the path, with a hint to rename", tt.path, d, tt.what)
		}
	}
}

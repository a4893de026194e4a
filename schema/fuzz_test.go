package schema

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitgrant/gitgrant"
)

// addSeeds adds every file of a testdata folder to the fuzz corpus, on top
// of the checked-in corpus under testdata/fuzz/.
func addSeeds(f *testing.F, glob string) {
	paths, err := filepath.Glob(glob)
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// checkDiagnostics holds for every file, valid or not: each problem names
// the file and a line that exists, and a result is never both a request and
// an error.
func checkDiagnostics(t *testing.T, path string, data []byte, ok bool, ds gitgrant.Diagnostics) {
	t.Helper()
	checkPositions(t, path, data, ds)
	if ok && ds.HasErrors() {
		t.Fatalf("result returned together with errors: %v", ds)
	}
	if !ok && !ds.HasErrors() {
		t.Fatalf("nothing returned and no error to say why")
	}
}

func checkPositions(t *testing.T, path string, data []byte, ds gitgrant.Diagnostics) {
	t.Helper()
	lines := yamlLineBreaks(data) + 2
	for _, d := range ds {
		if d.File != path {
			t.Fatalf("diagnostic for file %q, want %q: %v", d.File, path, d)
		}
		if d.Line < 0 || d.Line > lines || d.Column < 0 {
			t.Fatalf("diagnostic at line %d column %d of a %d-line file: %v", d.Line, d.Column, lines, d)
		}
		if d.Message == "" {
			t.Fatalf("diagnostic without a message: %+v", d)
		}
	}
}

func FuzzLoadRequest(f *testing.F) {
	addSeeds(f, "testdata/requests/*.yaml")
	f.Add([]byte("a: &a [*a]\n"))
	f.Add([]byte("requester: alice\n---\n"))
	cfg := testConfig(f)
	checker := NewPolicy(cfg, testNow)
	f.Fuzz(func(t *testing.T, data []byte) {
		const path = "requests/orders-db/fuzz.yaml"
		req, ds := LoadRequest(path, data)
		checkDiagnostics(t, path, data, req != nil, ds)
		if req == nil {
			return
		}
		if len(req.Grants) == 0 || req.Requester == "" || req.Reason == "" {
			t.Fatalf("accepted a request without grants, requester or reason: %+v", req)
		}
		if (req.Duration == 0) == req.Expires.IsZero() {
			t.Fatalf("accepted a request without exactly one of duration and expires: %+v", req)
		}
		checkPositions(t, path, data, checker.Check(req))
	})
}

func FuzzLoadConfig(f *testing.F) {
	addSeeds(f, "testdata/*.yaml")
	addSeeds(f, "../gitgrant.yaml")
	f.Add([]byte("providers: {a: {type: exec, command: [x], roles: {r: {}}}}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, ds := LoadConfig("gitgrant.yaml", data)
		checkDiagnostics(t, "gitgrant.yaml", data, cfg != nil, ds)
		if cfg == nil {
			return
		}
		if len(cfg.Providers) == 0 {
			t.Fatalf("accepted a config without providers")
		}
		NewPolicy(cfg, testNow) // must not panic on anything LoadConfig accepts
	})
}

// yamlLineBreaks counts line breaks as libyaml does: CRLF, CR, LF, and in
// YAML 1.1 also NEL, LS and PS.
func yamlLineBreaks(data []byte) int {
	s := strings.ReplaceAll(string(data), "\r\n", "\n")
	n := 0
	for _, sep := range []string{"\n", "\r", "\u0085", "\u2028", "\u2029"} {
		n += strings.Count(s, sep)
	}
	return n
}

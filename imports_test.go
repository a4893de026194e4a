package gitgrant_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// technologyHomes: each technology is imported by its own adapter
// packages only (and by tests, which build fakes with it); everything else
// uses the root package's types or its own small interfaces.
var technologyHomes = []struct {
	importPrefix string
	homes        []string // directories, relative to the module root
}{
	{"github.com/google/go-github/", []string{"internal/ghapi", "providers/githubteam"}},
	// Both sides of git are gitrepo's: the client, and the smart-HTTP
	// server and bare-repository writes the simulated GitHub uses.
	{"github.com/go-git/go-git/", []string{"internal/gitrepo"}},
	// Encrypting secrets to SSH keys is the hand-off's alone.
	{"filippo.io/age", []string{"internal/handoff"}},
}

// TestTechnologiesStayHome fails when a non-test Go file outside a
// technology's home imports it.
func TestTechnologiesStayHome(t *testing.T) {
	t.Parallel()
	fset := token.NewFileSet()
	imported := map[string]bool{} // by a non-test file: the prefix is right
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path != "." && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata" || name == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		dir := filepath.ToSlash(filepath.Dir(path))
		for _, imp := range f.Imports {
			p, err := strconv.Unquote(imp.Path.Value)
			if err != nil {
				return err
			}
			for _, tech := range technologyHomes {
				if !strings.HasPrefix(p, tech.importPrefix) {
					continue
				}
				imported[tech.importPrefix] = true
				if !slices.ContainsFunc(tech.homes, func(home string) bool { return within(dir, home) }) {
					t.Errorf("%s imports %s: only %s may; move the call there and give this package root-package types or its own interface",
						fset.Position(imp.Pos()), p, strings.Join(tech.homes, " and "))
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tech := range technologyHomes {
		if !imported[tech.importPrefix] {
			t.Errorf("no file imports %s: is the prefix right?", tech.importPrefix)
		}
	}
}

func within(dir, home string) bool { return dir == home || strings.HasPrefix(dir, home+"/") }

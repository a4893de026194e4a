package codeowners_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gitgrant/gitgrant/internal/codeowners"
)

func TestPatterns(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pattern, path string
		want          bool
	}{
		{"*", "anything/at/all.txt", true},
		{"*.js", "app.js", true},
		{"*.js", "src/deep/app.js", true},
		{"*.js", "app.jsx", false},
		{"*.JS", "app.js", false}, // case-sensitive, as on GitHub
		{"/build/logs/", "build/logs/a.log", true},
		{"/build/logs/", "build/logs/deep/a.log", true},
		{"/build/logs/", "x/build/logs/a.log", false},
		{"/build/logs/", "build/logs", false}, // a directory pattern matches only what is inside
		{"docs/*", "docs/getting-started.md", true},
		{"docs/*", "docs/build-app/troubleshooting.md", false}, // GitHub's documented example
		{"docs/*", "x/docs/a.md", false},                       // an inner slash anchors
		{"apps/", "apps/a", true},
		{"apps/", "deep/down/apps/a", true},
		{"apps/", "apps", false},
		{"/docs/", "docs/a/b.md", true},
		{"/docs", "docs/a/b.md", true},
		{"/docs", "docs", true},
		{"/docs", "x/docs", false},
		{"**/logs", "logs/a", true},
		{"**/logs", "build/logs/a", true},
		{"**/logs", "deeply/nested/logs", true},
		{"**/logs", "build/logsx/a", false},
		{"requests/**/prod.yaml", "requests/prod.yaml", true},
		{"requests/**/prod.yaml", "requests/a/b/prod.yaml", true},
		{"requests/**", "requests/a/b.yaml", true},
		{"requests/**", "other/a.yaml", false},
		{"requests/*/alice.yaml", "requests/orders-db/alice.yaml", true},
		{"requests/*/alice.yaml", "requests/a/b/alice.yaml", false},
		{"/requests/orders-db/", "requests/orders-db/alice.yaml", true},
		{"/requests/orders-db/", "requests/orders-db-prod/alice.yaml", false},
		{"a?c", "abc", true},
		{"a?c", "a/c", false},
		{"README.md", "x/README.md", true},
		{"/README.md", "x/README.md", false},
		{`my\ file.txt`, "my file.txt", true},
		{"a.b", "axb", false}, // a dot is a dot
	}
	for _, tt := range tests {
		t.Run(tt.pattern+" "+tt.path, func(t *testing.T) {
			t.Parallel()
			f := codeowners.Parse("CODEOWNERS", []byte(tt.pattern+" @owner\n"))
			if len(f.Problems) != 0 {
				t.Fatalf("problems: %v", f.Problems)
			}
			if got := f.Match(tt.path) != nil; got != tt.want {
				t.Errorf("%q matches %q = %v, want %v", tt.pattern, tt.path, got, tt.want)
			}
		})
	}
}

// GitHub's documented example file, with who owns what.
func TestGitHubExample(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("testdata/github-example")
	if err != nil {
		t.Fatal(err)
	}
	f := codeowners.Parse("CODEOWNERS", data)
	if len(f.Problems) != 0 {
		t.Fatalf("problems: %v", f.Problems)
	}
	tests := map[string]string{
		"README.md":                          "@global-owner1 @global-owner2",
		"src/app.js":                         "@js-owner",
		"main.go":                            "docs@example.com",
		"notes.txt":                          "@octo-org/octocats",
		"build/logs/today.log":               "@octocat", // **/logs comes later
		"docs/getting-started.md":            "@doctocat",
		"docs/build-app/troubleshooting.md":  "@doctocat",
		"scripts/deploy.sh":                  "@doctocat @octocat",
		"deep/apps/x.py":                     "@octocat",
		"apps/github/x.py":                   "@doctocat",
		"apps/other/x.py":                    "@octocat",
		"deeply/nested/logs/x":               "@octocat",
		"some/dir/readme.txt":                "@octo-org/octocats",
		"apps/github/deeper/still/file.json": "@doctocat",
	}
	for p, want := range tests {
		if got := render(f.Owners(p)); got != want {
			t.Errorf("owners of %s = %q, want %q", p, got, want)
		}
	}
}

func render(os []codeowners.Owner) string {
	s := make([]string, len(os))
	for i, o := range os {
		s[i] = o.String()
	}
	return strings.Join(s, " ")
}

func TestEmptyOwnersUnown(t *testing.T) {
	t.Parallel()
	f := codeowners.Parse("CODEOWNERS", []byte("/apps/ @octocat\n/apps/github\n"))
	if got := f.Owners("apps/github/x"); got != nil {
		t.Errorf("owners %v, want none (the last rule names nobody)", got)
	}
	if r := f.Match("apps/github/x"); r == nil || r.Line != 2 {
		t.Errorf("deciding rule %+v, want line 2", r)
	}
}

// A bad line is skipped and reported; the rest of the file still works.
func TestBadLinesAreSkipped(t *testing.T) {
	t.Parallel()
	data := strings.Join([]string{
		"* @default",
		"!negated.txt @nobody",
		"[ab].txt @nobody",
		`\#hash @nobody`,
		"/requests/ @good @bad!owner @acme/dba not-an-owner",
		"   # indented comment",
		"",
		"/x/ @ok # trailing comment",
		"tail\\",
	}, "\n")
	f := codeowners.Parse(".github/CODEOWNERS", []byte(data))
	want := []codeowners.Problem{
		{2, `pattern "!negated.txt": negation (!) is not supported by CODEOWNERS; line skipped`},
		{3, `pattern "[ab].txt": character ranges ([ ]) are not supported by CODEOWNERS; line skipped`},
		{4, `pattern "\\#hash": escaping "#" is not supported by CODEOWNERS; line skipped`},
		{5, `owner "@bad!owner": not a valid @user or @org/team; owner ignored`},
		{5, `owner "not-an-owner": an owner is @user, @org/team or an email address; owner ignored`},
		{9, "line ends with a backslash; line skipped"},
	}
	if diff := cmp.Diff(want, f.Problems); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
	if got := render(f.Owners("requests/db/a.yaml")); got != "@good @acme/dba" {
		t.Errorf("owners %q: a bad owner must not hand the path back to an earlier rule", got)
	}
	if got := render(f.Owners("negated.txt")); got != "@default" {
		t.Errorf("owners of negated.txt %q", got)
	}
	if got := render(f.Owners("x/y")); got != "@ok" {
		t.Errorf("owners of x/y %q", got)
	}
}

func TestOversizedFileIsIgnored(t *testing.T) {
	t.Parallel()
	f := codeowners.Parse("CODEOWNERS", []byte("* @a\n"+strings.Repeat("#", codeowners.MaxSize)))
	if len(f.Rules) != 0 || len(f.Problems) != 1 {
		t.Errorf("rules %d, problems %v", len(f.Rules), f.Problems)
	}
}

func TestFindUsesGitHubsOrder(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		files   map[string]string
		want    string
		wantErr bool
	}{
		{"all three", map[string]string{".github/CODEOWNERS": "* @a", "CODEOWNERS": "* @b", "docs/CODEOWNERS": "* @c"}, ".github/CODEOWNERS", false},
		{"root before docs", map[string]string{"CODEOWNERS": "* @b", "docs/CODEOWNERS": "* @c"}, "CODEOWNERS", false},
		{"docs only", map[string]string{"docs/CODEOWNERS": "* @c"}, "docs/CODEOWNERS", false},
		{"none", map[string]string{}, "", false},
		{"read error is not absence", map[string]string{".github/CODEOWNERS": "!error"}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, err := codeowners.Find(context.Background(), func(_ context.Context, p string) ([]byte, error) {
				s, ok := tt.files[p]
				switch {
				case !ok:
					return nil, fmt.Errorf("%s: %w", p, fs.ErrNotExist)
				case s == "!error":
					return nil, errors.New("network down")
				}
				return []byte(s), nil
			})
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			got := ""
			if f != nil {
				got = f.Path
			}
			if got != tt.want {
				t.Errorf("found %q, want %q", got, tt.want)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add("* @a\n/docs/ @org/team x@y.z\n**/logs @b\n")
	f.Add("[x\n!y\n\\")
	f.Fuzz(func(t *testing.T, data string) {
		cf := codeowners.Parse("CODEOWNERS", []byte(data))
		_ = cf.Owners("a/b/c.txt")
	})
}

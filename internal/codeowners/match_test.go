package codeowners_test

import (
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gitgrant/gitgrant/internal/codeowners"
)

// A matchCase says whether one pattern, alone in a CODEOWNERS file, owns a
// path. The tables below are grouped by where the expectation comes from.
type matchCase struct {
	pattern, path string
	want          bool
}

func runMatchCases(t *testing.T, cases []matchCase) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.pattern+" "+tt.path, func(t *testing.T) {
			t.Parallel()
			f := codeowners.Parse("CODEOWNERS", []byte(tt.pattern+" @owner\n"))
			if len(f.Problems) != 0 {
				t.Fatalf("problems: %v", f.Problems)
			}
			if got := f.Match(tt.path) != nil; got != tt.want {
				t.Errorf("%q owns %q = %v, want %v", tt.pattern, tt.path, got, tt.want)
			}
		})
	}
}

// Expectations from GitHub's documentation ("About code owners": the
// CODEOWNERS syntax section, its example file and its syntax exceptions)
// and from gitignore(5), which that section says CODEOWNERS follows.
func TestPatternsGitHubRules(t *testing.T) {
	t.Parallel()
	runMatchCases(t, []matchCase{
		// A pattern without a slash matches at any depth, as a file or a directory.
		{"*", "anything/at/all.txt", true},
		{"*.js", "app.js", true},
		{"*.js", "src/deep/app.js", true},
		{"*.js", "app.jsx", false},
		{"README.md", "x/README.md", true},
		{"vendor", "vendor/a/b.go", true},
		{"vendor", "lib/vendor/a.go", true},
		{"vendor", "vendored/a.go", false},
		// A leading slash anchors to the root; so does a slash inside.
		{"/README.md", "README.md", true},
		{"/README.md", "x/README.md", false},
		{"/docs", "docs", true},
		{"/docs", "docs/a/b.md", true},
		{"/docs", "x/docs", false},
		{"docs/*", "x/docs/a.md", false},
		{"requests/orders-db", "x/requests/orders-db/a.yaml", false},
		// A trailing slash: only what is inside the directory, at any depth.
		{"/build/logs/", "build/logs/a.log", true},
		{"/build/logs/", "build/logs/deep/a.log", true},
		{"/build/logs/", "x/build/logs/a.log", false},
		{"/build/logs/", "build/logs", false},
		{"apps/", "apps/a", true},
		{"apps/", "deep/down/apps/a", true},
		{"apps/", "apps", false},
		{"/docs/", "docs/a/b.md", true},
		{"/requests/orders-db/", "requests/orders-db/alice.yaml", true},
		{"/requests/orders-db/", "requests/orders-db-prod/alice.yaml", false},
		// A final lone "*" names the files directly in a directory, not
		// deeper ones: "docs/*" (GitHub's example), and "/*" the root's files.
		{"docs/*", "docs/getting-started.md", true},
		{"docs/*", "docs/build-app/troubleshooting.md", false},
		{"/*", "README.md", true},
		{"/*", "requests/orders-db/alice.yaml", false},
		{"/*", ".github/CODEOWNERS", false},
		{"requests/*/alice.yaml", "requests/orders-db/alice.yaml", true},
		{"requests/*/alice.yaml", "requests/a/b/alice.yaml", false},
		// "*" never crosses a slash; "?" is one character other than a slash.
		{"/requests/*.yaml", "requests/a.yaml", true},
		{"/requests/*.yaml", "requests/db/a.yaml", false},
		{"a?c", "abc", true},
		{"a?c", "ac", false},
		{"a?c", "a/c", false},
		// "**": leading (any depth), middle (zero or more directories), trailing (everything inside).
		{"**/logs", "logs/a", true},
		{"**/logs", "build/logs/a", true},
		{"**/logs", "deeply/nested/logs", true},
		{"**/logs", "build/logsx/a", false},
		{"requests/**/prod.yaml", "requests/prod.yaml", true},
		{"requests/**/prod.yaml", "requests/a/b/prod.yaml", true},
		{"requests/**/prod.yaml", "x/requests/prod.yaml", false},
		{"requests/**", "requests/a/b.yaml", true},
		{"requests/**", "requests", false},
		{"requests/**", "other/a.yaml", false},
		{"**", "a/b", true},
		{"/**", "a/b", true},
		{"docs/**/*", "docs/a/b/c.md", true},
		// A backslash makes the next character literal: "\ " a space,
		// "\[" a bracket, "\*" a star, "\#" a hash (inside a pattern).
		{`my\ file.txt`, "my file.txt", true},
		{`my\ file.txt`, "my", false},
		{`/app/\[id\]/page.tsx`, "app/[id]/page.tsx", true},
		{`/app/\[id\]/page.tsx`, "app/i/page.tsx", false},
		{`/app/\[id\]/page.tsx`, "app/d/page.tsx", false},
		{`\[draft\].md`, "notes/[draft].md", true},
		{`f\*o`, "f*o", true},
		{`f\*o`, "foo", false},
		{`docs/\#1/`, "docs/#1/a.md", true},
		{`\!important.md`, "!important.md", true},
		// Everything else is literal, a dot included.
		{"a.b", "axb", false},
		{"file(1).txt", "file(1).txt", true},
		{"a+b", "aab", false},
		// Paths are case-sensitive on GitHub.
		{"*.JS", "app.js", false},
		{"/Docs/", "docs/a.md", false},
		{"/docs/", "Docs/a.md", false},
	})
}

// Expectations taken from the table of pattern cases published by
// hmarr/codeowners (testdata/patterns.json), rewritten with other names.
// Two of its rows are left out on purpose: paths ending in "/" (GitHub
// only ever asks about files) and brackets treated as literal without a
// backslash (GitHub reports such a line as an error; see TestBadLines).
func TestPatternsHmarrTable(t *testing.T) {
	t.Parallel()
	runMatchCases(t, []matchCase{
		// One segment: a file or directory of that name anywhere.
		{"lib", "lib", true},
		{"lib", "lib.go", false},
		{"lib", "lib/x", true},
		{"lib", "src/lib", true},
		{"lib", "src/lib.go", false},
		{"lib", "src/lib/x", true},
		{"lib", "src/other", false},
		// ... anchored by a leading slash.
		{"/lib", "lib", true},
		{"/lib", "library.go", false},
		{"/lib", "lib/x/y", true},
		{"/lib", "src/lib", false},
		{"/lib", "src/lib/x", false},
		// ... a directory by a trailing slash.
		{"lib/", "lib", false},
		{"lib/", "lib/x", true},
		{"lib/", "lib/x/y", true},
		{"lib/", "src/lib", false},
		{"lib/", "src/lib/x", true},
		{"lib/", "src/lib/x/y", true},
		{"/lib/", "lib", false},
		{"/lib/", "lib/x/y", true},
		{"/lib/", "src/lib/x", false},
		// Two segments anchor themselves.
		{"lib/net", "lib/net", true},
		{"lib/net", "lib/network", false},
		{"lib/net", "lib/net/x", true},
		{"lib/net", "src/lib/net", false},
		{"lib/net", "src/lib/net/x", false},
		{"/lib/net", "lib/net/x", true},
		{"/lib/net", "src/lib/net", false},
		{"lib/net/", "lib/net", false},
		{"lib/net/", "lib/net/x", true},
		{"lib/net/", "src/lib/net/x", false},
		{"/lib/net/", "lib/net/x/y", true},
		{"/lib/net/", "src/lib/net/x", false},
		// Wildcards in one segment.
		{"*", "x", true},
		{"*", "x/y/z", true},
		{"l*", "lib", true},
		{"l*", "lib/x/y", true},
		{"l*", "src/lib", true},
		{"l*", "src/lib/x", true},
		{"l*", "src/other", false},
		{"l*", "xlib", false},
		{"/*", "lib", true},
		{"/*", "go.mod", true},
		{"/*", "lib/x", false},
		{"/*", "lib/x/y", false},
		{"/l*", "lib/x/y", true},
		{"/l*", "src/lib", false},
		{"/l*", "xlib", false},
		{"l*/", "lib", false},
		{"l*/", "lib/x", true},
		{"l*/", "src/lib", false},
		{"l*/", "src/lib/x", true},
		{"/*/", "lib", false},
		{"/*/", "lib/x", true},
		{"/*/", "src/lib/x", true},
		{"/l*/", "lib", false},
		{"/l*/", "lib/x", true},
		{"/l*/", "src/lib/x", false},
		{`l\*b`, "lib", false},
		{`l\*b`, "l*b", true},
		{"l?b", "lib", true},
		{"l?b", "lb", false},
		{"l?b", "liib", false},
		{`l\?b`, "lib", false},
		{`l\?b`, "l?b", true},
		// Wildcards in a longer pattern.
		{"lib/*", "lib", false},
		{"lib/*", "lib/x", true},
		{"lib/*", "lib/x/y", false},
		{"lib/*", "src/lib/x", false},
		{"lib/*.go", "lib/a.go", true},
		{"lib/*.go", "lib/x/a.go", false},
		{"lib/*.go", "src/lib/a.go", false},
		{"lib/*/net", "lib/net", false},
		{"lib/*/net", "lib/x/net", true},
		{"lib/*/net", "lib/x/net/y", true},
		// "**" at the start, the end and in the middle.
		{"**/lib/net", "lib/net", true},
		{"**/lib/net", "src/lib/net", true},
		{"**/lib/net", "src/lib/net/x", true},
		{"**/lib/net", "lib/x/net", false},
		{"**/*net*", "net", true},
		{"**/*net*", "lib/subnet", true},
		{"**/*net*", "lib/network", true},
		{"**/*net*", "lib/x/net", true},
		{"lib/net/**", "lib/net", false},
		{"lib/net/**", "lib/net/x", true},
		{"lib/net/**", "lib/net/x/y", true},
		{"lib/net/**", "src/lib/net/x", false},
		{"lib/**/net", "lib/net", true},
		{"lib/**/net", "lib/net/x", true},
		{"lib/**/net", "lib/a/net/x", true},
		{"lib/**/net", "lib/a/b/net/x", true},
		{"lib/**/net", "src/lib/net", false},
		{"lib/**/", "lib", false},
		{"lib/**/", "lib/x", true},
		{"lib/**/", "lib/x/y", true},
		{"lib/**/net/n*", "lib/net", false},
		{"lib/**/net/n*", "lib/net/nat", true},
		{"lib/**/net/n*", "lib/net/x", false},
		{"lib/**/net/n*", "lib/a/net/nat", true},
		{"lib/**/net/n*", "lib/a/net/x", false},
	})
}

// Expectations from the tables of hairyhenderson/go-codeowners
// (codeowners_test.go: TestFullParseCodeowners, TestOwners), rewritten.
// Left out: its "\#foo/" row (it reads "\#" as a literal "#" at the start
// of a pattern, which GitHub documents as not working; see TestBadLines)
// and its rows that read "docs/*" as unanchored (it marks them itself as
// uncertain; gitignore anchors a pattern with a slash inside).
func TestPatternsHairyhendersonTable(t *testing.T) {
	t.Parallel()
	runMatchCases(t, []matchCase{
		{"foobar/", "foobar/baz.go", true},
		{"docs/*.md", "docs/README.md", true},
		{"docs/*.md", "src/docs/README.md", false},
		{"/build/logs/", "build/logs/a/b.go", true},
		{"/build/logs/", "src/build/logs/a.go", false},
		{`space/test\ space/`, "space/test space/doc1.txt", true},
		{"a/*", "c/b", false},
		{"a/b/*", "a/b/c", true},
		{"a/*/c", "a/b/c", true},
		{"/a/*", "a/aa/file", false},
		{"/a/**", "a/bb/file", true},
	})
}

// Owners of paths when several rules match: the last one wins, and a rule
// without owners leaves its paths unowned.
func TestLastMatchWins(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		lines []string
		path  string
		want  string
	}{
		{"later general rule beats earlier specific one", []string{"/docs/a.md @specific", "* @everyone"}, "docs/a.md", "@everyone"},
		{"later specific rule beats earlier general one", []string{"* @everyone", "/docs/a.md @specific"}, "docs/a.md", "@specific"},
		{"an owner-less rule unowns", []string{"/apps/ @octocat", "/apps/github"}, "apps/github/x", ""},
		{"an owner-less rule does not unown others", []string{"/apps/ @octocat", "/apps/github"}, "apps/web/x", "@octocat"},
		{"no rule matches", []string{"/docs/ @doc"}, "src/a.go", ""},
		{"a skipped line does not hide the line before", []string{"/docs/ @doc", "/docs/[ab].md @x"}, "docs/a.md", "@doc"},
		{"root files only", []string{"* @everyone", "/* @root"}, "go.mod", "@root"},
		{"root files only, deeper files fall through", []string{"* @everyone", "/* @root"}, "requests/orders-db/a.yaml", "@everyone"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := codeowners.Parse("CODEOWNERS", []byte(strings.Join(tt.lines, "\n")))
			if got := render(f.Owners(tt.path)); got != tt.want {
				t.Errorf("owners of %s = %q, want %q", tt.path, got, tt.want)
			}
		})
	}
}

// Every example of GitHub's "About code owners" page, each on its own
// (what its comment promises) and then as the page's one example file
// (testdata/github-example), where the last matching pattern wins.
func TestGitHubDocumentedExamples(t *testing.T) {
	t.Parallel()
	global := "@global-owner1 @global-owner2"
	examples := []struct {
		name   string
		file   string
		owners map[string]string // path -> owners, "" for none
	}{
		{"default owners", "* @global-owner1 @global-owner2", map[string]string{
			"README.md": global, "src/deep/main.c": global,
		}},
		{"last match wins: only the JS owner for JS files", "* @global-owner1 @global-owner2\n*.js @js-owner #This is an inline comment.", map[string]string{
			"web/app.js": "@js-owner", "app.js": "@js-owner", "web/app.ts": global,
		}},
		{"email owner", "*.go docs@example.com", map[string]string{
			"main.go": "docs@example.com", "cmd/gitgrant/main.go": "docs@example.com", "main.c": "",
		}},
		{"team owner", "*.txt @octo-org/octocats", map[string]string{
			"notes.txt": "@octo-org/octocats", "a/b/c.txt": "@octo-org/octocats",
		}},
		{"build/logs at the root and its subdirectories", "/build/logs/ @doctocat", map[string]string{
			"build/logs/today.log": "@doctocat", "build/logs/2026/11/a.log": "@doctocat",
			"src/build/logs/a.log": "", "build/other.log": "",
		}},
		{"docs/* and not nested files", "docs/*  docs@example.com", map[string]string{
			"docs/getting-started.md": "docs@example.com", "docs/build-app/troubleshooting.md": "",
		}},
		{"an apps directory anywhere", "apps/ @octocat", map[string]string{
			"apps/a.py": "@octocat", "web/apps/a.py": "@octocat", "x/y/apps/z/a.py": "@octocat", "application/a.py": "",
		}},
		{"/docs at the root and its subdirectories", "/docs/ @doctocat", map[string]string{
			"docs/a.md": "@doctocat", "docs/build-app/troubleshooting.md": "@doctocat", "web/docs/a.md": "",
		}},
		{"two owners for /scripts", "/scripts/ @doctocat @octocat", map[string]string{
			"scripts/deploy.sh": "@doctocat @octocat", "scripts/ci/run.sh": "@doctocat @octocat",
		}},
		{"a logs directory anywhere", "**/logs @octocat", map[string]string{
			"build/logs/a.log": "@octocat", "scripts/logs/a.log": "@octocat", "deeply/nested/logs/a.log": "@octocat",
			"logs/a.log": "@octocat", "catalogs/a": "",
		}},
		{"apps/github left without owners", "/apps/ @octocat\n/apps/github", map[string]string{
			"apps/web/a.js": "@octocat", "apps/github/a.js": "", "apps/github": "",
		}},
		{"apps/github with its own owner", "/apps/ @octocat\n/apps/github @doctocat", map[string]string{
			"apps/web/a.js": "@octocat", "apps/github/a.js": "@doctocat",
		}},
		// The page's branch-protection section.
		{"branch protection: one owner", "/apps/ @doctocat", map[string]string{"apps/a": "@doctocat"}},
		{"branch protection: either owner", "/apps/ @doctocat @octocat", map[string]string{"apps/a": "@doctocat @octocat"}},
		{"branch protection: a team", "/apps/ @example-org/content-team", map[string]string{"apps/a": "@example-org/content-team"}},
	}
	for _, ex := range examples {
		for path, want := range ex.owners {
			t.Run(ex.name+"/"+path, func(t *testing.T) {
				t.Parallel()
				f := codeowners.Parse("CODEOWNERS", []byte(ex.file))
				if len(f.Problems) != 0 {
					t.Fatalf("problems: %v", f.Problems)
				}
				if got := render(f.Owners(path)); got != want {
					t.Errorf("owners of %s = %q, want %q", path, got, want)
				}
			})
		}
	}

	data, err := os.ReadFile("testdata/github-example")
	if err != nil {
		t.Fatal(err)
	}
	whole := codeowners.Parse("CODEOWNERS", data)
	if len(whole.Problems) != 0 {
		t.Fatalf("problems: %v", whole.Problems)
	}
	got := map[string]string{}
	want := map[string]string{
		"README.md":                          global,
		"src/app.ts":                         global,
		"src/app.js":                         "@js-owner",
		"main.go":                            "docs@example.com",
		"notes.txt":                          "@octo-org/octocats",
		"some/dir/readme.txt":                "@octo-org/octocats",
		"build/logs/today.log":               "@octocat", // "**/logs" comes later
		"build/other.log":                    global,
		"docs/getting-started.md":            "@doctocat", // "/docs/" comes after "docs/*"
		"docs/build-app/troubleshooting.md":  "@doctocat",
		"web/docs/index.js":                  "@js-owner", // "docs/*" is anchored: web/docs is not docs
		"scripts/deploy.sh":                  "@doctocat @octocat",
		"scripts/logs/run.log":               "@octocat",
		"deep/apps/x.py":                     "@octocat",
		"deeply/nested/logs/x":               "@octocat",
		"apps/other/x.py":                    "@octocat",
		"apps/github/x.py":                   "@doctocat", // the last pair of /apps rules
		"apps/github/deeper/still/file.json": "@doctocat",
	}
	for p := range want {
		got[p] = render(whole.Owners(p))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("owners in GitHub's example file (-want +got):\n%s", diff)
	}
}

// Lines GitHub cannot use are skipped, each with a problem naming the line;
// the rest of the file still applies.
func TestBadLines(t *testing.T) {
	t.Parallel()
	tests := []struct {
		line    string
		problem string // "" when the line is valid
	}{
		{"!negated.txt @x", `pattern "!negated.txt": negation (!) is not supported by CODEOWNERS; line skipped`},
		{"[ab].txt @x", `pattern "[ab].txt": character ranges ([ ]) are not supported by CODEOWNERS; escape a literal bracket as \[ or \]; line skipped`},
		{"/Python/ceval*.[ch] @x", `pattern "/Python/ceval*.[ch]": character ranges ([ ]) are not supported by CODEOWNERS; escape a literal bracket as \[ or \]; line skipped`},
		{`/app/[id\]/page.tsx @x`, `pattern "/app/[id\\]/page.tsx": character ranges ([ ]) are not supported by CODEOWNERS; escape a literal bracket as \[ or \]; line skipped`},
		{`/app/\[id]/page.tsx @x`, `pattern "/app/\\[id]/page.tsx": character ranges ([ ]) are not supported by CODEOWNERS; escape a literal bracket as \[ or \]; line skipped`},
		{`\#hash @x`, `pattern "\\#hash": escaping "#" is not supported by CODEOWNERS; line skipped`},
		{"tail\\", "line ends with a backslash; line skipped"},
		{"/ @x", `pattern "/": "/" alone matches nothing; line skipped`},
		{"a//b @x", `pattern "a//b": empty path segment (//); line skipped`},
		// Valid: escaped brackets and a backslash before "!" are literal.
		{`/app/\[id\]/page.tsx @x`, ""},
		{`\!x @x`, ""},
		{`a\\b @x`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			t.Parallel()
			f := codeowners.Parse("CODEOWNERS", []byte("* @default\n"+tt.line+"\n"))
			var want []codeowners.Problem
			if tt.problem != "" {
				want = []codeowners.Problem{{Line: 2, Message: tt.problem}}
			}
			if diff := cmp.Diff(want, f.Problems); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
			wantRules := 2
			if tt.problem != "" {
				wantRules = 1
			}
			if len(f.Rules) != wantRules {
				t.Errorf("%d rules, want %d", len(f.Rules), wantRules)
			}
		})
	}
}

package codeowners_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gitgrant/gitgrant/internal/codeowners"
)

func render(os []codeowners.Owner) string {
	s := make([]string, len(os))
	for i, o := range os {
		s[i] = o.String()
	}
	return strings.Join(s, " ")
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
		{3, `pattern "[ab].txt": character ranges ([ ]) are not supported by CODEOWNERS; escape a literal bracket as \[ or \]; line skipped`},
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

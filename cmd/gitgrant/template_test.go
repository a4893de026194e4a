package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gitgrant/gitgrant/internal/render"
	"github.com/gitgrant/gitgrant/internal/testing/fakeclock"
	"github.com/gitgrant/gitgrant/internal/testing/gitserver"
)

// templateRoot is this repository, which doubles as the template access
// repository: its gitgrant.yaml, requests/ and CODEOWNERS are examples.
const templateRoot = "../.."

// absoluteDate is anything that looks like a calendar date.
var absoluteDate = regexp.MustCompile(`\b\d{4}-\d{2}-\d{2}\b`)

// TestTemplateCarriesNoDates guards against the next calendar time bomb:
// an example request with a fixed date goes stale on that date and then
// fails everyone's first `gitgrant validate`. Examples use durations.
func TestTemplateCarriesNoDates(t *testing.T) {
	t.Parallel()
	n := 0
	err := filepath.WalkDir(filepath.Join(templateRoot, "requests"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		n++
		for i, line := range strings.Split(string(data), "\n") {
			if m := absoluteDate.FindString(line); m != "" {
				t.Errorf("%s:%d: %q is a fixed date; example requests use duration: (and no starts:/expires:) so the template stays valid on any day", path, i+1, m)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("no files under requests/: the guard checked nothing")
	}
}

// TestTemplateOnAnyDate runs the template as a new user does — validate,
// then an offline plan — with the clock today, a year and five years
// ahead, the files committed at that time: nothing may be invalid,
// warned about or rejected because of the date.
func TestTemplateOnAnyDate(t *testing.T) {
	t.Parallel()
	base := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	for _, ahead := range []struct {
		name  string
		years int
	}{{"today", 0}, {"one year ahead", 1}, {"five years ahead", 5}} {
		t.Run(ahead.name, func(t *testing.T) {
			t.Parallel()
			at := base.AddDate(ahead.years, 0, 0)
			dir := copyTemplate(t, at)
			now := at.Add(time.Minute)

			v := runCLIClock(t, now, "validate", "--repo", dir, "--output", "json")
			if v.code != 0 {
				t.Fatalf("validate exited %d:\n%s%s", v.code, v.stdout, v.stderr)
			}
			var validation render.Validation
			if err := json.Unmarshal([]byte(v.stdout), &validation); err != nil {
				t.Fatalf("validate --output json: %v\n%s", err, v.stdout)
			}
			if s := validation.Summary; s.Errors != 0 || s.Warnings != 0 || s.Requests < 3 {
				t.Errorf("validate: %+v, want no errors or warnings over every example", s)
			}

			p := runCLIClock(t, now, "plan", "--repo", dir, "--output", "json")
			// No provider is reachable here (ORDERS_DB_DSN is unset), which
			// is exit 3; the requests themselves must all be plannable.
			if p.code != 0 && p.code != 3 {
				t.Fatalf("plan exited %d:\n%s%s", p.code, p.stdout, p.stderr)
			}
			var plan struct {
				Requests []struct{ Path, Status string }
			}
			if err := json.Unmarshal([]byte(p.stdout), &plan); err != nil {
				t.Fatalf("plan --output json: %v\n%s", err, p.stdout)
			}
			if len(plan.Requests) != validation.Summary.Requests {
				t.Errorf("plan lists %d requests, validate %d", len(plan.Requests), validation.Summary.Requests)
			}
			for _, r := range plan.Requests {
				if r.Status == "rejected" || r.Status == "expired" {
					t.Errorf("%s is %s a minute after it was committed", r.Path, r.Status)
				}
			}
		})
	}
}

// copyTemplate commits the template's access-repository files to a new
// repository at time at.
func copyTemplate(t *testing.T, at time.Time) string {
	t.Helper()
	w := gitserver.NewWork(t, "", at)
	for _, name := range []string{"gitgrant.yaml", ".github/CODEOWNERS", "requests"} {
		src := filepath.Join(templateRoot, name)
		err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, err := filepath.Rel(templateRoot, path)
			if err != nil {
				return err
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			w.Write(rel, string(data))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	w.CommitAt(at, "admin", "Start an access repository from the template")
	return w.Dir
}

// runCLIClock runs a command with no environment and the clock at now.
func runCLIClock(t *testing.T, now time.Time, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	e := &env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr, getenv: testEnv(nil), clk: fakeclock.New(now)}
	code := run(context.Background(), args, e)
	return result{code, stdout.String(), stderr.String()}
}

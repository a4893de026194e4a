package render

import (
	"fmt"
	"io"

	"github.com/gitgrant/gitgrant"
)

// Validation is the documented shape of `validate --output json`
// (docs/formats.md). Fields are only added within a version.
type Validation struct {
	Version int               `json:"version"`
	OK      bool              `json:"ok"`
	Summary ValidationSummary `json:"summary"`
	Files   []ValidatedFile   `json:"files"`
}

// ValidationSummary counts what a validation read and found.
type ValidationSummary struct {
	Files    int `json:"files"`
	Requests int `json:"requests"`
	Errors   int `json:"errors"`
	Warnings int `json:"warnings"`
}

// ValidatedFile is one file's outcome.
type ValidatedFile struct {
	Path        string               `json:"path"`
	Kind        string               `json:"kind"` // "config" or "request"
	OK          bool                 `json:"ok"`
	Request     *gitgrant.Request    `json:"request,omitempty"`
	Diagnostics gitgrant.Diagnostics `json:"diagnostics"`
}

// NewValidation is the validation document of files: OK and the summary
// are counted from their diagnostics (OK of each file too), and empty
// lists are [] in JSON, never null.
func NewValidation(files []ValidatedFile) Validation {
	v := Validation{Version: JSONVersion, Files: []ValidatedFile{}}
	for _, f := range files {
		if f.Diagnostics == nil {
			f.Diagnostics = gitgrant.Diagnostics{}
		}
		f.OK = !f.Diagnostics.HasErrors()
		v.Summary.Files++
		if f.Kind == "request" {
			v.Summary.Requests++
		}
		for _, d := range f.Diagnostics {
			if d.Severity == gitgrant.SeverityWarning {
				v.Summary.Warnings++
			} else {
				v.Summary.Errors++
			}
		}
		v.Files = append(v.Files, f)
	}
	v.OK = v.Summary.Errors == 0
	return v
}

// Diagnostics are every file's diagnostics, in file order.
func (v Validation) Diagnostics() gitgrant.Diagnostics {
	var out gitgrant.Diagnostics
	for _, f := range v.Files {
		out = append(out, f.Diagnostics...)
	}
	return out
}

// String is the one-line summary: "3 files checked (2 requests): 1 errors,
// 0 warnings".
func (s ValidationSummary) String() string {
	return fmt.Sprintf("%d files checked (%d requests): %d errors, %d warnings", s.Files, s.Requests, s.Errors, s.Warnings)
}

// ValidationText writes the diagnostics for people, then the summary.
func ValidationText(w io.Writer, v Validation) error {
	if err := TextDiagnostics(w, v.Diagnostics()); err != nil {
		return err
	}
	_, err := fmt.Fprintln(w, v.Summary)
	return err
}

// ValidationJobSummary writes the markdown a workflow run's page shows
// ($GITHUB_STEP_SUMMARY): the summary and a table of the diagnostics.
func ValidationJobSummary(w io.Writer, v Validation) error {
	fmt.Fprintf(w, "### gitgrant validate\n\n%s\n\n", v.Summary)
	return MarkdownDiagnostics(w, v.Diagnostics())
}

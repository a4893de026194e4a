package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/render"
	"github.com/gitgrant/gitgrant/schema"
)

func runValidate(ctx context.Context, args []string, e *env) error {
	fs := newFlags("validate", "[--repo DIR] [--output text|json|github] [--pr [N] | PATH...]", `
Check request files and gitgrant.yaml: YAML syntax, the JSON Schemas, and the
static policy (declared providers and roles, folder = provider, durations
within the role and policy maximum, ticket pattern, known identities,
break-glass membership). Every problem is reported with file:line:column;
one bad file never hides another's problems.

Without PATH, validates gitgrant.yaml and every file under requests/. With
PATHs (relative to --repo), validates those files, judged by gitgrant.yaml.

With --pr N (or bare --pr in a pull_request workflow, which reads the
number from GITHUB_EVENT_PATH), validates only the files pull request N
changes, as they are at its head, judged by gitgrant.yaml at its BASE
commit: changes the pull request makes to gitgrant.yaml never apply to its
own requests. It then creates or updates one comment on the pull request
(the plan if merged, the approvals still missing and from whom, every
problem) and records a check run, or a commit status where check runs are
not permitted. Needs GITHUB_TOKEN (or a GitHub App) and GITHUB_REPOSITORY;
GITHUB_API_URL for GitHub Enterprise Server. --repo is read for commits it
has; the rest comes from GitHub's API.

Exit status: 0 valid, 1 a file is invalid, 2 usage error, 3 the repository
(or GitHub) could not be read.`, e)
	repo := fs.String("repo", ".", "access repository `DIR` (holds gitgrant.yaml and requests/)")
	output := fs.String("output", "", "`format`: text, json or github (default: github when GITHUB_ACTIONS=true, else text)")
	var pr prFlag
	fs.Var(&pr, "pr", "validate pull request `N` against its base and comment on it; bare --pr reads N from GITHUB_EVENT_PATH")
	paths, err := parseFlags(fs, joinPRNumber(args))
	if err != nil {
		return err
	}
	format, err := render.ParseFormat(*output, e.getenv("GITHUB_ACTIONS") == "true")
	if err != nil {
		return usageError{err.Error()}
	}
	if pr.set {
		if len(paths) > 0 {
			return usagef("validate --pr checks the files the pull request changes; do not name PATHs")
		}
		return runValidatePR(ctx, e, *repo, pr, format)
	}

	root, paths, err := localRepo(*repo, paths)
	if err != nil {
		return err
	}
	*repo = root
	var config *schema.File
	var requests []schema.File
	if len(paths) == 0 {
		config, requests, err = schema.ReadTree(*repo)
	} else {
		config, requests, err = schema.ReadFiles(*repo, paths)
	}
	if err != nil {
		return err
	}
	// Files in the working tree are committed, or about to be: one whose
	// window ended is a warning here (the reconciler cleans it up) and an
	// error only in the pull request that adds it (validate --pr).
	rep := schema.Validate(config, requests, schema.Options{Now: e.now(), Committed: true})
	if err := writeValidation(e, format, rep); err != nil {
		return &gitgrant.SystemError{System: "output", Op: "write", Err: err}
	}
	if errs, _ := rep.Counts(); errs > 0 {
		return errInvalid
	}
	return nil
}

// validationJSON is the documented shape of `validate --output json`
// (docs/formats.md). Fields are only added within a version.
type validationJSON struct {
	Version int               `json:"version"`
	OK      bool              `json:"ok"`
	Summary validationSummary `json:"summary"`
	Files   []fileJSON        `json:"files"`
}

type validationSummary struct {
	Files    int `json:"files"`
	Requests int `json:"requests"`
	Errors   int `json:"errors"`
	Warnings int `json:"warnings"`
}

type fileJSON struct {
	Path        string                `json:"path"`
	Kind        string                `json:"kind"`
	OK          bool                  `json:"ok"`
	Request     *gitgrant.Request     `json:"request,omitempty"`
	Diagnostics []gitgrant.Diagnostic `json:"diagnostics"`
}

func writeValidation(e *env, format render.Format, rep *schema.Report) error {
	errs, warnings := rep.Counts()
	summary := validationSummary{Files: len(rep.Files), Errors: errs, Warnings: warnings}
	for _, f := range rep.Files {
		if f.Kind == "request" {
			summary.Requests++
		}
	}
	switch format {
	case render.JSON:
		out := validationJSON{Version: render.JSONVersion, OK: errs == 0, Summary: summary, Files: []fileJSON{}}
		for _, f := range rep.Files {
			ds := f.Diagnostics
			if ds == nil {
				ds = gitgrant.Diagnostics{}
			}
			out.Files = append(out.Files, fileJSON{Path: f.Path, Kind: f.Kind, OK: !ds.HasErrors(), Request: f.Request, Diagnostics: ds})
		}
		return render.WriteJSON(e.stdout, out)
	case render.GitHub:
		if err := render.GitHubAnnotations(e.stdout, rep.Diagnostics()); err != nil {
			return err
		}
		if err := writeJobSummary(e, rep.Diagnostics(), summary); err != nil {
			return err
		}
	default:
		if err := render.TextDiagnostics(e.stdout, rep.Diagnostics()); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintf(e.stdout, "%d files checked (%d requests): %d errors, %d warnings\n", summary.Files, summary.Requests, errs, warnings)
	return err
}

// writeJobSummary appends a markdown table to $GITHUB_STEP_SUMMARY, which
// GitHub shows on the workflow run's page.
func writeJobSummary(e *env, ds gitgrant.Diagnostics, s validationSummary) error {
	path := e.getenv("GITHUB_STEP_SUMMARY")
	if path == "" {
		return nil
	}
	return appendFile(path, func(w io.Writer) error {
		fmt.Fprintf(w, "### gitgrant validate\n\n%d files checked (%d requests): %d errors, %d warnings\n\n", s.Files, s.Requests, s.Errors, s.Warnings)
		return render.MarkdownDiagnostics(w, ds)
	})
}

// appendFile appends what write produces to the file at path.
func appendFile(path string, write func(io.Writer) error) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

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

// validatedFiles are a report's files as render shows them.
func validatedFiles(rep *schema.Report) []render.ValidatedFile {
	out := make([]render.ValidatedFile, 0, len(rep.Files))
	for _, f := range rep.Files {
		out = append(out, render.ValidatedFile{Path: f.Path, Kind: f.Kind, Request: f.Request, Diagnostics: f.Diagnostics})
	}
	return out
}

func writeValidation(e *env, format render.Format, rep *schema.Report) error {
	v := render.NewValidation(validatedFiles(rep))
	switch format {
	case render.JSON:
		return render.WriteJSON(e.stdout, v)
	case render.GitHub:
		if err := render.GitHubAnnotations(e.stdout, v.Diagnostics()); err != nil {
			return err
		}
		if path := e.getenv("GITHUB_STEP_SUMMARY"); path != "" {
			if err := appendFile(path, func(w io.Writer) error { return render.ValidationJobSummary(w, v) }); err != nil {
				return err
			}
		}
		_, err := fmt.Fprintln(e.stdout, v.Summary)
		return err
	}
	return render.ValidationText(e.stdout, v)
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

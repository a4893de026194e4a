package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/gitrepo"
	"github.com/gitgrant/gitgrant/internal/render"
)

func runPlan(ctx context.Context, args []string, e *env) error {
	fs := newFlags("plan", "[--repo DIR|URL] [--branch main] [--output text|json|github]", `
Dry run: show what reconcile would do, without changing anything. Reads
gitgrant.yaml and requests/ from the main branch (not the work tree), asks
every provider for the members of its managed roles, and prints each
request's status and window and the exact actions: revocations first, each
with its reason.

Approvals are verified through GitHub exactly as reconcile verifies them
(GITHUB_TOKEN or a GitHub App; GITHUB_REPOSITORY, or a github.com origin).
Without GitHub credentials no request can be verified, so the plan, like
reconcile, grants nothing: every request that is not expired or rejected is
"unverified", with the reason, and only revocations are planned.

Exit status: 0 the plan was computed, 1 gitgrant.yaml is invalid, 3 the
repository or a provider could not be read (the plan is still printed for
every provider that could).`, e)
	repoFlag := fs.String("repo", ".", "access repository: a local `DIR` or a remote URL")
	branch := fs.String("branch", gitrepo.DefaultBranch, "main `branch` the requests are read from")
	output := fs.String("output", "", "`format`: text, json or github")
	ghBudget := fs.Duration("github-budget", 2*time.Minute, "longest wait on GitHub per part of the plan (verification); past it the plan says what is unverified, as reconcile would")
	if err := parseFlagsOnly(fs, args); err != nil {
		return err
	}
	format, err := render.ParseFormat(*output, e.getenv("GITHUB_ACTIONS") == "true")
	if err != nil {
		return usageError{err.Error()}
	}
	eng, err := newEngine(ctx, e, engineOptions{Source: *repoFlag, Branch: *branch})
	if err != nil {
		return err
	}
	eng.GitHubBudget = *ghBudget      // a slow GitHub never holds the plan
	pass, err := eng.Plan(ctx, false) // offline planning would show grants reconcile never makes
	if err != nil {
		return err
	}
	defer pass.Close()
	if err := writePlan(e, format, pass.Plan); err != nil {
		return &gitgrant.SystemError{System: "output", Op: "write", Err: err}
	}
	if err := policyNotice(e, pass); err != nil {
		return err
	}
	return problems(e, pass.Problems)
}

// problems reports the systems a pass could not read; the pass went on
// without them, and the command exits 3.
func problems(e *env, errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	for _, err := range errs {
		fmt.Fprintf(e.stderr, "gitgrant: %v\n", err)
	}
	return &gitgrant.SystemError{System: "gitgrant", Op: "pass", Err: fmt.Errorf("%d system(s) could not be read; what depends on them was left out (fail closed)", len(errs))}
}

func writePlan(e *env, format render.Format, plan gitgrant.Plan) error {
	switch format {
	case render.JSON:
		return render.WriteJSON(e.stdout, render.PlanJSON{Version: render.JSONVersion, Plan: plan})
	case render.GitHub:
		if path := e.getenv("GITHUB_STEP_SUMMARY"); path != "" {
			if err := appendFile(path, func(w io.Writer) error {
				fmt.Fprintln(w, "### gitgrant plan")
				fmt.Fprintln(w)
				return render.PlanMarkdown(w, plan, 20)
			}); err != nil {
				return err
			}
		}
	}
	return render.PlanText(e.stdout, plan)
}

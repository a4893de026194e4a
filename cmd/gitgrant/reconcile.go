package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"time"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/engine"
	"github.com/gitgrant/gitgrant/internal/gitrepo"
	"github.com/gitgrant/gitgrant/internal/render"
	"github.com/gitgrant/gitgrant/reconciler"
)

func runReconcile(ctx context.Context, args []string, e *env) error {
	fs := newFlags("reconcile", "[--repo DIR|URL] [--branch main] [--force] [--no-cleanup] [--output text|json|github]", `
One full pass, for a workflow on push and on a schedule: verify approvals
through GitHub, grant what active requests ask for, revoke what expired or
nobody asked for, record grant-time notes under refs/notes/gitgrant, remove
expired request files in a cleanup commit (or pull request, by
cleanup.mode), and tell each request's pull request what happened.

Without GitHub credentials nothing new is granted (approvals cannot be
verified), while revocations still happen. A provider that cannot be reached
is skipped and the others go ahead. A plan that would revoke an unusual share
of access that has not expired is refused unless --force.

Environment: GITHUB_TOKEN or GITGRANT_GITHUB_APP_ID,
GITGRANT_GITHUB_APP_INSTALLATION_ID, GITGRANT_GITHUB_APP_PRIVATE_KEY_FILE;
GITHUB_REPOSITORY; GITHUB_API_URL for GitHub Enterprise Server; the
providers' *_env secrets.

--output json prints one JSON document on stdout once the pass is done: the
plan, as 'gitgrant plan --output json' prints it, and "result" (applied,
failed, failures, notes, cleanup_commit, removed, cleanup_pull_request,
held); the action log stays on stderr (docs/formats.md).

Exit status: 0 done, 1 gitgrant.yaml invalid or the brake refused the plan,
3 a system could not be read or an action failed (the rest was applied).`, e)
	repoFlag := fs.String("repo", ".", "access repository: a local `DIR` (with an origin remote to push to) or a remote URL")
	branch := fs.String("branch", gitrepo.DefaultBranch, "main `branch`")
	force := fs.Bool("force", false, "apply even when the removal brake refuses the plan")
	noCleanup := fs.Bool("no-cleanup", false, "do not write notes or cleanup commits (grants and revocations only)")
	fs.Bool("once", true, "one pass and exit (always; 'gitgrant serve' runs continuously)")
	output := fs.String("output", "", "`format` of the plan printed: text, json or github")
	logFormat := fs.String("log-format", "text", "`format` of the action log on stderr: text or json")
	ghBudget := fs.Duration("github-budget", 2*time.Minute, "longest wait on GitHub per part of the pass (verification, comments); past it grants pause and revocations go ahead")
	committer := fs.String("committer", "", "cleanup commit identity `\"Name <email>\"` (default gitgrant <gitgrant@users.noreply.github.com>)")
	if err := parseFlagsOnly(fs, args); err != nil {
		return err
	}
	format, err := render.ParseFormat(*output, e.getenv("GITHUB_ACTIONS") == "true")
	if err != nil {
		return usageError{err.Error()}
	}
	logger, err := newLogger(e, *logFormat)
	if err != nil {
		return err
	}
	commitOpts := gitrepo.CommitOptions{Clock: e.clock()}
	if *committer != "" {
		c, err := parseCommitter(*committer)
		if err != nil {
			return err
		}
		commitOpts.Committer = c
	}

	eng, err := newEngine(ctx, e, engineOptions{Source: *repoFlag, Branch: *branch, Logger: logger})
	if err != nil {
		return err
	}
	eng.GitHubBudget = *ghBudget
	if eng.Verifier == nil {
		logger.Warn("no GitHub credentials: approvals cannot be verified, so nothing new is granted; revocations go ahead")
	}
	pass, err := eng.Plan(ctx, false)
	if err != nil {
		return err
	}
	defer pass.Close()
	if format != render.JSON { // JSON is one document, written once the pass is done
		if err := writePlan(e, format, pass.Plan); err != nil {
			return &gitgrant.SystemError{System: "output", Op: "write", Err: err}
		}
	}
	out, err := eng.Apply(ctx, pass, engine.ApplyOptions{Force: *force, Cleanup: !*noCleanup, Commit: commitOpts})
	braked := errors.Is(err, reconciler.ErrBrake)
	res := resultOf(pass, out)
	if format == render.JSON {
		if werr := render.WriteJSON(e.stdout, reconcileJSON{PlanJSON: render.PlanJSON{Version: render.JSONVersion, Plan: pass.Plan}, Result: res}); werr != nil {
			return &gitgrant.SystemError{System: "output", Op: "write", Err: werr}
		}
	} else {
		writeResultText(e.stdout, res)
	}
	if format == render.GitHub {
		if werr := writeResultGitHub(e, renderResult(pass, out, err)); werr != nil {
			return &gitgrant.SystemError{System: "output", Op: "write", Err: werr}
		}
	}
	if perr := policyNotice(e, pass); perr != nil {
		return perr
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "gitgrant: %v\n", err)
		if braked && out.Result.Err() == nil {
			// Only the brake: review the held revocations, then --force.
			return errInvalid
		}
		return &gitgrant.SystemError{System: "gitgrant", Op: "reconcile", Err: errors.New("some actions or the cleanup failed; the next pass retries them")}
	}
	return problems(e, pass.Problems)
}

// parseCommitter reads "Name <email>".
func parseCommitter(s string) (gitrepo.Committer, error) {
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name == "" {
		return gitrepo.Committer{}, usagef("--committer: write \"Name <email>\"")
	}
	return gitrepo.Committer{Name: a.Name, Email: a.Address}, nil
}

// reconcileJSON is `reconcile --output json`: the plan, as `plan --output
// json` prints it, and what applying it did.
type reconcileJSON struct {
	render.PlanJSON
	Result reconcileResult `json:"result"`
}

type reconcileResult struct {
	// Applied and Failed count grants and revocations (not reports).
	Applied int `json:"applied"`
	Failed  int `json:"failed"`
	// Failures say what failed, one line per action.
	Failures []string `json:"failures,omitempty"`
	// Notes are the ledger and grant-time records written.
	Notes              int      `json:"notes"`
	CleanupCommit      string   `json:"cleanup_commit,omitempty"`
	Removed            []string `json:"removed,omitempty"`
	CleanupPullRequest int      `json:"cleanup_pull_request,omitempty"`
	// Held counts the revocations the removal brake held back.
	Held int `json:"held"`
}

func resultOf(pass *engine.Pass, out engine.Outcome) reconcileResult {
	res := reconcileResult{Notes: out.Notes, Removed: out.Cleanup.Removed, CleanupPullRequest: out.CleanupPR, Held: len(pass.Plan.Held)}
	for _, o := range out.Result.Outcomes {
		switch {
		case o.Action.Op == gitgrant.OpReport:
		case o.Err != nil:
			res.Failed++
			res.Failures = append(res.Failures, fmt.Sprintf("%s %s/%s %s: %v", o.Action.Op, o.Action.Provider, o.Action.Role, o.Action.Principal, o.Err))
		default:
			res.Applied++
		}
	}
	if !out.Cleanup.Commit.IsZero() {
		res.CleanupCommit = out.Cleanup.Commit.String()
	}
	return res
}

// renderResult is what the pass did, for the job summary: every action
// with its outcome, what the brake held, the cleanup, and the failures that
// belong to no one action (the cleanup push, comments, systems not read).
func renderResult(pass *engine.Pass, out engine.Outcome, applyErr error) render.Result {
	res := render.Result{Held: pass.Plan.Held, Notes: out.Notes, Removed: out.Cleanup.Removed, CleanupPR: out.CleanupPR}
	if !out.Cleanup.Commit.IsZero() {
		res.CleanupCommit = out.Cleanup.Commit.String()
	}
	for _, o := range out.Result.Outcomes {
		a := render.Applied{Action: o.Action}
		if o.Err != nil {
			a.Err = o.Err.Error()
		}
		res.Actions = append(res.Actions, a)
	}
	actionsErr := ""
	if err := out.Result.Err(); err != nil {
		actionsErr = err.Error()
	}
	var parts []error
	if joined, ok := applyErr.(interface{ Unwrap() []error }); ok {
		parts = joined.Unwrap()
	} else if applyErr != nil {
		parts = []error{applyErr}
	}
	for _, err := range append(parts, pass.Problems...) {
		if err == nil || errors.Is(err, reconciler.ErrBrake) || err.Error() == actionsErr {
			continue // shown as held, or row by row
		}
		res.Errors = append(res.Errors, err.Error())
	}
	return res
}

// writeResultGitHub appends the result to the job summary and prints an
// ::error annotation for each failure.
func writeResultGitHub(e *env, res render.Result) error {
	if path := e.getenv("GITHUB_STEP_SUMMARY"); path != "" {
		if err := appendFile(path, func(w io.Writer) error {
			fmt.Fprintln(w)
			return render.ResultMarkdown(w, res, 20)
		}); err != nil {
			return err
		}
	}
	return render.ResultAnnotations(e.stdout, res)
}

func writeResultText(w io.Writer, res reconcileResult) {
	fmt.Fprintf(w, "\napplied %d action(s), %d failed; %d note(s)", res.Applied, res.Failed, res.Notes)
	if res.CleanupCommit != "" {
		fmt.Fprintf(w, "; cleanup commit %s removed %d file(s)", res.CleanupCommit[:12], len(res.Removed))
	}
	if res.CleanupPullRequest != 0 {
		fmt.Fprintf(w, " (pull request #%d)", res.CleanupPullRequest)
	}
	fmt.Fprintln(w)
	if res.Held > 0 {
		fmt.Fprintf(w, "held back by the removal brake: %d revocation(s); everything else was applied\n", res.Held)
	}
}

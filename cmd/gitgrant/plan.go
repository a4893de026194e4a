package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/gitrepo"
	"github.com/gitgrant/gitgrant/internal/render"
	"github.com/gitgrant/gitgrant/providers"
	"github.com/gitgrant/gitgrant/providers/all"
	"github.com/gitgrant/gitgrant/reconciler"
	"github.com/gitgrant/gitgrant/schema"
)

func runPlan(ctx context.Context, args []string, e *env) error {
	fs := newFlags("plan", "[--repo DIR|URL] [--branch main] [--output text|json|github]", `
Dry run: show what reconcile would do, without changing anything. Reads
gitgrant.yaml and requests/ from the main branch (not the work tree), asks
every provider for the members of its managed roles, and prints each
request's status and window and the exact actions: revocations first, each
with its reason.

Approvals are not verified yet in this dry run: requests for roles that need
no approval are planned from the commit time git reports, and requests that
need approval are marked unverified (they grant nothing).

Exit status: 0 the plan was computed, 1 gitgrant.yaml is invalid, 3 the
repository or a provider could not be read (the plan is still printed for
every provider that could).`, e)
	repoFlag := fs.String("repo", ".", "access repository: a local `DIR` or a remote URL")
	branch := fs.String("branch", gitrepo.DefaultBranch, "main `branch` the requests are read from")
	output := fs.String("output", "", "`format`: text, json or github")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	format, err := render.ParseFormat(*output, e.getenv("GITHUB_ACTIONS") == "true")
	if err != nil {
		return usageError{err.Error()}
	}
	now := e.clock()

	repo, err := gitrepo.Open(ctx, gitrepo.Options{Source: *repoFlag, Branch: *branch, Token: e.getenv("GITHUB_TOKEN")})
	if err != nil {
		return err
	}
	snap, err := repo.ReadRevision("")
	if err != nil {
		return err
	}
	rep := schema.Validate(snap.Config, snap.Requests, schema.Options{Now: now})
	if rep.Config == nil {
		// Rule 9: without a trustworthy config there is no desired state,
		// and an empty one would revoke everything.
		render.TextDiagnostics(e.stderr, rep.Files[0].Diagnostics)
		return errInvalid
	}
	cfg := rep.Config
	provenance, err := repo.Provenances(ctx)
	if err != nil {
		return err
	}

	var sources []reconciler.Source
	var invalid []gitgrant.Entry
	for _, f := range rep.Files[1:] {
		if f.Request == nil {
			invalid = append(invalid, gitgrant.Entry{Path: f.Path, Status: gitgrant.StatusRejected, Reasons: diagnosticTexts(f.Diagnostics), Grants: []gitgrant.DesiredGrant{}})
			continue
		}
		sources = append(sources, reconciler.Source{Request: f.Request, CommittedAt: provenance[f.Path].MergedAt})
	}
	observed, listErrs := observe(ctx, cfg, e)
	entries := append(reconciler.Evaluate(cfg, sources, now, reconciler.Options{Offline: true}), invalid...)
	sort.Slice(entries, func(i, j int) bool { return entries[i].Path < entries[j].Path })
	plan := reconciler.Diff(cfg, entries, observed, now)

	if err := writePlan(e, format, plan); err != nil {
		return &gitgrant.SystemError{System: "output", Op: "write", Err: err}
	}
	if len(listErrs) > 0 {
		for _, err := range listErrs {
			fmt.Fprintf(e.stderr, "gitgrant: %v\n", err)
		}
		return &gitgrant.SystemError{System: "providers", Op: "list members", Err: fmt.Errorf("%d provider(s) could not be read; their roles were left out of the plan", len(listErrs))}
	}
	return nil
}

// observe lists the members of every managed role. A provider that cannot
// be opened or listed is left out of Observed (Diff then only revokes what
// has certainly expired there) and reported.
func observe(ctx context.Context, cfg *gitgrant.Config, e *env) (reconciler.Observed, []error) {
	deps := providers.DefaultDeps()
	deps.Getenv = e.getenv
	registry := all.Registry()
	observed := reconciler.Observed{}
	var errs []error
	for _, name := range sortedNames(cfg.Providers) {
		pc := cfg.Providers[name]
		p, err := registry.Open(ctx, pc, deps)
		if err != nil {
			errs = append(errs, err) // factories name the provider
			continue
		}
		for _, role := range sortedNames(pc.Roles) {
			ms, err := p.Members(ctx, role)
			if err != nil {
				errs = append(errs, fmt.Errorf("provider %s, role %s: %w", name, role, err))
				continue
			}
			observed[reconciler.RoleKey{Provider: name, Role: role}] = ms
		}
		p.Close()
	}
	return observed, errs
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

func diagnosticTexts(ds gitgrant.Diagnostics) []string {
	out := make([]string, 0, len(ds))
	for _, d := range ds {
		if d.Severity != gitgrant.SeverityWarning {
			out = append(out, strings.TrimPrefix(d.String(), d.File+":"))
		}
	}
	return out
}

func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

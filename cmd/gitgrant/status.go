package main

import (
	"context"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/gitrepo"
	"github.com/gitgrant/gitgrant/internal/render"
)

func runStatus(ctx context.Context, args []string, e *env) error {
	fs := newFlags("status", "[--repo DIR|URL] [--branch main] [--output text|json]", `
Active and upcoming grants with the time left, from the requests on the main
branch. Nothing is written and no provider is asked: this is what gitgrant
intends, not what the target systems hold (see 'gitgrant plan' for that).

With GitHub credentials approvals are verified as reconcile would; without
them requests for roles that need approval show as unverified and are only
counted.`, e)
	repoFlag := fs.String("repo", ".", "access repository: a local `DIR` or a remote URL")
	branch := fs.String("branch", gitrepo.DefaultBranch, "main `branch`")
	output := fs.String("output", "text", "`format`: text or json")
	if err := parseFlagsOnly(fs, args); err != nil {
		return err
	}
	if err := checkOutput("status", *output, "text", "json"); err != nil {
		return err
	}
	eng, err := newEngine(ctx, e, engineOptions{Source: *repoFlag, Branch: *branch})
	if err != nil {
		return err
	}
	pass, err := eng.Desired(ctx, true)
	if err != nil {
		return err
	}
	doc := render.StatusOf(pass.Plan, pass.At)
	if *output == "json" {
		if err := render.WriteJSON(e.stdout, doc); err != nil {
			return &gitgrant.SystemError{System: "output", Op: "write", Err: err}
		}
	} else if err := render.StatusText(e.stdout, doc); err != nil {
		return &gitgrant.SystemError{System: "output", Op: "write", Err: err}
	}
	if err := policyNotice(e, pass); err != nil {
		return err
	}
	return problems(e, pass.Problems)
}

package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/engine"
	"github.com/gitgrant/gitgrant/internal/gitrepo"
	"github.com/gitgrant/gitgrant/internal/render"
	"github.com/gitgrant/gitgrant/internal/trust"
)

func runTrust(ctx context.Context, args []string, e *env) error {
	fs := newFlags("trust", "[--repo DIR|URL] [--branch main] [--root first] [--output text|json]", `
Show which version of the policy (gitgrant.yaml and CODEOWNERS) is in force,
and why each change on main since is not: a change takes effect only once it
reached main through a pull request its code owners approved, judged by the
policy in force at that pull request's base (docs/trust.md).

The first policy of a repository cannot be verified that way; it is trusted
once, explicitly: --root first records (in refs/notes/gitgrant, pushed) that
the first commit of main with a policy file is the trust root. To adopt an
existing repository at a later, reviewed commit instead, set
GITGRANT_TRUST_ROOT=<commit> for every gitgrant that reconciles it.

Policy changes are verified through GitHub when credentials are set
(GITHUB_TOKEN or a GitHub App, and GITHUB_REPOSITORY); without them only the
root and restorations of trusted content are trusted.

Exit status: 0 a verified policy is in force and every change is verified,
1 a change on main is not verified or there is no trust root, 2 usage error,
3 the repository or GitHub could not be read.`, e)
	repoFlag := fs.String("repo", ".", "access repository: a local `DIR` or a remote URL")
	branch := fs.String("branch", gitrepo.DefaultBranch, "main `branch`")
	root := fs.String("root", "", "record the trust root: `first` (the first policy commit of main)")
	output := fs.String("output", "text", "`format`: text or json")
	if err := parseFlagsOnly(fs, args); err != nil {
		return err
	}
	if err := checkOutput("trust", *output, "text", "json"); err != nil {
		return err
	}
	if *root != "" && *root != engine.TrustFirst {
		return usagef("trust: --root %q: only \"first\" is recorded in git; to trust a later commit, set GITGRANT_TRUST_ROOT=%s for every gitgrant that reconciles (docs/trust.md)", *root, *root)
	}
	eng, err := newEngine(ctx, e, engineOptions{Source: *repoFlag, Branch: *branch})
	if err != nil {
		return err
	}
	if *root == engine.TrustFirst {
		commit, err := eng.RecordFirstRoot(ctx, gitrepo.CommitOptions{Clock: e.clock()})
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stderr, "gitgrant: trust root recorded: the policy of %s (the first policy commit of main)\n", commit)
		eng.TrustRoot = engine.TrustFirst
	}
	rep, err := eng.Trust(ctx)
	if err != nil && !isNoRoot(err) {
		return err
	}
	doc := trustOf(rep, err, eng.TrustRoot)
	if *output == "json" {
		if err := render.WriteJSON(e.stdout, doc); err != nil {
			return &gitgrant.SystemError{System: "output", Op: "write", Err: err}
		}
	} else {
		render.TrustText(e.stdout, doc)
	}
	if doc.Error != "" || len(doc.Unverified) > 0 {
		return errInvalid
	}
	return nil
}

func isNoRoot(err error) bool { return errors.Is(err, trust.ErrNoRoot) }

// trustOf is the trust report as `gitgrant trust` prints it.
func trustOf(rep trust.Report, err error, root string) render.Trust {
	doc := render.Trust{Version: render.JSONVersion, Root: root, PolicyInForce: &gitgrant.PolicyInForce{}}
	if err != nil {
		doc.Error = err.Error()
		return doc
	}
	pol := rep.Policy
	doc.Commit, doc.How, doc.Problems = pol.Commit, pol.How, pol.Problems
	if pol.ConfigCommit != pol.Commit {
		doc.ConfigCommit = pol.ConfigCommit
	}
	for _, u := range rep.Unverified {
		doc.Unverified = append(doc.Unverified, gitgrant.UnverifiedPolicy{Commit: u.Commit, Files: u.Files, Reasons: u.Reasons})
	}
	return doc
}

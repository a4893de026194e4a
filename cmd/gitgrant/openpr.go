package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/gitgrant/gitgrant/internal/gitrepo"
	"github.com/gitgrant/gitgrant/internal/render"
)

// proposal is a request file on its way to a pull request.
type proposal struct {
	Rel, Branch          string
	Data                 []byte
	Requester            string
	Title, Body, Message string
	// New: the file must not exist on main yet.
	New bool
	// Replaces: main must hold exactly this content at Rel (an
	// extension starts from it).
	Replaces []byte
}

// openPullRequest pushes p on a new branch on top of the remote's main
// branch and opens its pull request, printing the URL. It checks first
// that the pull request would be the requester's: gitgrant refuses a
// request whose pull request someone else opened (rule 3), so pushing one
// would only leave a branch behind.
func openPullRequest(ctx context.Context, repo, branch string, p proposal, e *env) error {
	if gitrepo.OriginURL(repo) == "" {
		return usagef("request --open-pr: %s has no origin remote to push the branch to", repo)
	}
	acc, err := resolveAccess(e, repo, true, nil)
	if err != nil {
		return err
	}
	if acc.Client == nil {
		return usagef("request --open-pr: no GitHub credentials: set GITHUB_TOKEN to your own token (such as GITHUB_TOKEN=$(gh auth token)), so that the pull request is yours")
	}
	who, err := acc.Client.Identity(ctx)
	if err != nil {
		return err
	}
	if !strings.EqualFold(who, p.Requester) && !allowsOnBehalf(repo) {
		return usagef("request --open-pr: the GitHub credentials are @%s's, but the requester is @%s: gitgrant only grants a request whose pull request its requester opened; use the requester's own token", who, p.Requester)
	}
	gopts := acc.Git
	gopts.Source, gopts.Branch = repo, branch
	r, err := gitrepo.Open(ctx, gopts)
	if err != nil {
		return err
	}
	author := gitrepo.Committer{Name: gitConfig(repo, "user.name"), Email: gitConfig(repo, "user.email")}
	if author.Name == "" || author.Email == "" {
		// GitHub links this address to the login, so that approvals can
		// tell the requester's commit from an approver's.
		author = gitrepo.Committer{Name: who, Email: who + "@users.noreply.github.com"}
	}
	commit, err := r.Propose(ctx, gitrepo.Proposal{Branch: p.Branch, Path: p.Rel, Data: p.Data, Message: p.Message, Author: author, New: p.New, Replaces: p.Replaces},
		gitrepo.CommitOptions{Clock: e.clock()})
	if err != nil {
		return err
	}
	n, url, err := acc.Client.CreatePullRequest(ctx, p.Branch, branch, p.Title, p.Body)
	if err != nil {
		return fmt.Errorf("the branch %s is pushed (commit %s), but the pull request could not be opened: %w", p.Branch, commit.String()[:12], err)
	}
	fmt.Fprintf(e.stdout, "opened pull request #%d for %s: %s\n", n, p.Rel, url)
	return nil
}

// allowsOnBehalf reads policy.allow_on_behalf from the work tree's
// gitgrant.yaml; the verified policy decides in the end.
func allowsOnBehalf(repo string) bool {
	cfg, _ := workConfig(repo)
	return cfg != nil && cfg.Policy.AllowOnBehalf
}

// requestBody is the description of a new request's pull request.
func requestBody(rf requestFile, rel string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Access request %s for %s.\n\n", render.CodeSpan(rel), render.CodeSpan(rf.Requester))
	fmt.Fprintf(&b, "- Reason: %s\n", render.MarkdownText(rf.Reason))
	if rf.Ticket != "" {
		fmt.Fprintf(&b, "- Ticket: %s\n", render.MarkdownText(rf.Ticket))
	}
	for _, g := range rf.Grants {
		fmt.Fprintf(&b, "- Grant: %s\n", render.CodeSpan(g.Name()))
	}
	if rf.Duration != "" {
		fmt.Fprintf(&b, "- For %s from the merge\n", render.CodeSpan(rf.Duration))
	} else {
		fmt.Fprintf(&b, "- Until %s\n", render.CodeSpan(rf.Expires))
	}
	b.WriteString("\nOpened with `gitgrant request --open-pr`. The provider's code owners approve it; gitgrant grants the access once it merges.\n")
	return b.String()
}

// extensionBody is the description of an extension's pull request.
func extensionBody(x *extension) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Extends %s for %s until %s.\n\n", render.CodeSpan(x.Rel), render.CodeSpan(x.Request.Requester), x.Expires.Format(time.RFC3339))
	fmt.Fprintf(&b, "- Reason: %s\n", render.MarkdownText(x.Request.Reason))
	for _, g := range x.Request.Grants {
		fmt.Fprintf(&b, "- Grant: %s\n", render.CodeSpan(g.Name()))
	}
	b.WriteString("\nOpened with `gitgrant request --extend --open-pr`. The window starts again when this pull request merges, within the role's maximum; until then the current window holds.\n")
	return b.String()
}

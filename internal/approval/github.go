package approval

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"strings"

	"github.com/google/go-github/v60/github"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/ghapi"
)

// FollowUpLabel marks the issues that ask for review of emergency access.
const FollowUpLabel = "gitgrant-emergency"

// API adapts a go-github client for one repository to GitHub.
type API struct {
	GH          *github.Client
	Owner, Repo string
	// Self tells the login gitgrant acts as (ghapi.Client.Identity): only
	// follow-up issues it wrote are its own.
	Self func(context.Context) (string, error)
}

var _ GitHub = (*API)(nil)

// NewGitHub adapts a ghapi client.
func NewGitHub(c *ghapi.Client) *API {
	return &API{GH: c.GH, Owner: c.Owner, Repo: c.Repo, Self: c.Identity}
}

// New is a Verifier for the client's repository. files may be nil (base
// commits are then read through the contents API); cache may be nil (no
// steady state: every pass asks GitHub again).
func New(c *ghapi.Client, files FileReader, cache Cache) *Verifier {
	return &Verifier{GitHub: NewGitHub(c), Files: files, Cache: cache, Org: c.Owner, RepoURL: c.RepoURL()}
}

func sysErr(op string, resp *github.Response, err error) error {
	retry := true
	if resp != nil && resp.StatusCode < 500 && resp.StatusCode != http.StatusTooManyRequests {
		retry = false
	}
	var rl *ghapi.RateLimitedError
	if errors.As(err, &rl) {
		retry = true
	}
	return &gitgrant.SystemError{System: "github", Op: op, Err: err, Retryable: retry}
}

func notFound(resp *github.Response) bool {
	return resp != nil && resp.StatusCode == http.StatusNotFound
}

// DefaultBranch implements GitHub.
func (a *API) DefaultBranch(ctx context.Context) (string, error) {
	r, resp, err := a.GH.Repositories.Get(ctx, a.Owner, a.Repo)
	if err != nil {
		return "", sysErr("get repository "+a.Owner+"/"+a.Repo, resp, err)
	}
	if r.GetDefaultBranch() == "" {
		return "", sysErr("get repository", resp, errors.New("no default branch in the answer"))
	}
	return r.GetDefaultBranch(), nil
}

// PullRequestsWithCommit implements GitHub (all pages).
func (a *API) PullRequestsWithCommit(ctx context.Context, sha string) ([]gitgrant.PullRequest, error) {
	var out []gitgrant.PullRequest
	opts := &github.ListOptions{PerPage: 100}
	for {
		prs, resp, err := a.GH.PullRequests.ListPullRequestsWithCommit(ctx, a.Owner, a.Repo, sha, opts)
		if err != nil {
			return nil, sysErr("list pull requests of commit "+sha, resp, err)
		}
		for _, p := range prs {
			out = append(out, gitgrant.PullRequest{
				Number: p.GetNumber(), Author: p.GetUser().GetLogin(),
				Merged: p.MergedAt != nil, MergedAt: p.GetMergedAt().Time,
				MergeCommitSHA: p.GetMergeCommitSHA(), HeadSHA: p.GetHead().GetSHA(),
				BaseSHA: p.GetBase().GetSHA(), BaseRef: p.GetBase().GetRef(),
			})
		}
		if resp.NextPage == 0 {
			return out, nil
		}
		opts.Page = resp.NextPage
	}
}

// PullRequest implements GitHub.
func (a *API) PullRequest(ctx context.Context, n int) (gitgrant.PullRequest, error) {
	p, resp, err := a.GH.PullRequests.Get(ctx, a.Owner, a.Repo, n)
	if err != nil {
		return gitgrant.PullRequest{}, sysErr(fmt.Sprintf("get pull request #%d", n), resp, err)
	}
	return gitgrant.PullRequest{
		Number: p.GetNumber(), Author: p.GetUser().GetLogin(),
		Merged: p.GetMerged() || p.MergedAt != nil, MergedAt: p.GetMergedAt().Time,
		MergeCommitSHA: p.GetMergeCommitSHA(), HeadSHA: p.GetHead().GetSHA(),
		BaseSHA: p.GetBase().GetSHA(), BaseRef: p.GetBase().GetRef(),
	}, nil
}

func commitOf(c *github.RepositoryCommit) gitgrant.Commit {
	out := gitgrant.Commit{SHA: c.GetSHA(), Author: c.GetAuthor().GetLogin(), Committer: c.GetCommitter().GetLogin(),
		Date: c.GetCommit().GetCommitter().GetDate().Time}
	for _, p := range c.Parents {
		out.Parents = append(out.Parents, p.GetSHA())
	}
	return out
}

// PullRequestCommits implements GitHub (all pages).
func (a *API) PullRequestCommits(ctx context.Context, n int) ([]gitgrant.Commit, error) {
	var out []gitgrant.Commit
	opts := &github.ListOptions{PerPage: 100}
	for {
		cs, resp, err := a.GH.PullRequests.ListCommits(ctx, a.Owner, a.Repo, n, opts)
		if err != nil {
			return nil, sysErr(fmt.Sprintf("list commits of pull request #%d", n), resp, err)
		}
		for _, c := range cs {
			out = append(out, commitOf(c))
		}
		if resp.NextPage == 0 {
			return out, nil
		}
		opts.Page = resp.NextPage
	}
}

// Reviews implements GitHub (all pages).
func (a *API) Reviews(ctx context.Context, n int) ([]gitgrant.Review, error) {
	var out []gitgrant.Review
	opts := &github.ListOptions{PerPage: 100}
	for {
		rs, resp, err := a.GH.PullRequests.ListReviews(ctx, a.Owner, a.Repo, n, opts)
		if err != nil {
			return nil, sysErr(fmt.Sprintf("list reviews of pull request #%d", n), resp, err)
		}
		for _, r := range rs {
			out = append(out, gitgrant.Review{ID: r.GetID(), Reviewer: r.GetUser().GetLogin(), State: r.GetState(),
				CommitID: r.GetCommitID(), SubmittedAt: r.GetSubmittedAt().Time})
		}
		if resp.NextPage == 0 {
			return out, nil
		}
		opts.Page = resp.NextPage
	}
}

// Commit implements GitHub.
func (a *API) Commit(ctx context.Context, sha string) (gitgrant.Commit, error) {
	c, resp, err := a.GH.Repositories.GetCommit(ctx, a.Owner, a.Repo, sha, nil)
	if err != nil {
		return gitgrant.Commit{}, sysErr("get commit "+sha, resp, err)
	}
	return commitOf(c), nil
}

// IsTeamMember implements GitHub: an active membership; a pending one is
// no membership. GitHub answers 404 both for "not a member" and for a
// token that may not read the team (the Actions GITHUB_TOKEN), so a 404
// is "not a member" only once the team itself can be read; otherwise, and
// on a 403, the answer is a *gitgrant.TeamAccessError.
func (a *API) IsTeamMember(ctx context.Context, org, slug, login string) (bool, error) {
	unreadable := func(resp *github.Response) error {
		return sysErr(fmt.Sprintf("members of team %s/%s", org, slug), resp, &gitgrant.TeamAccessError{Org: org, Slug: slug, Login: login, Status: resp.StatusCode})
	}
	m, resp, err := a.GH.Teams.GetTeamMembershipBySlug(ctx, org, slug, login)
	switch {
	case denied(resp, err):
		return false, unreadable(resp)
	case notFound(resp):
		_, resp, err := a.GH.Teams.GetTeamBySlug(ctx, org, slug)
		if denied(resp, err) || notFound(resp) {
			return false, unreadable(resp)
		}
		if err != nil {
			return false, sysErr(fmt.Sprintf("team %s/%s", org, slug), resp, err)
		}
		return false, nil
	case err != nil:
		return false, sysErr(fmt.Sprintf("membership of %s in team %s/%s", login, org, slug), resp, err)
	}
	return m.GetState() == "active", nil
}

// denied is a 403 that is not a rate limit.
func denied(resp *github.Response, err error) bool {
	var rl *ghapi.RateLimitedError
	var primary *github.RateLimitError
	var secondary *github.AbuseRateLimitError
	if errors.As(err, &rl) || errors.As(err, &primary) || errors.As(err, &secondary) {
		return false
	}
	return resp != nil && resp.StatusCode == http.StatusForbidden
}

// ReadFile implements FileReader through the contents API.
func (a *API) ReadFile(ctx context.Context, rev, path string) ([]byte, error) {
	f, _, resp, err := a.GH.Repositories.GetContents(ctx, a.Owner, a.Repo, path, &github.RepositoryContentGetOptions{Ref: rev})
	if notFound(resp) {
		return nil, fmt.Errorf("%s at %s: %w", path, rev, fs.ErrNotExist)
	}
	if err != nil {
		return nil, sysErr(fmt.Sprintf("read %s at %s", path, rev), resp, err)
	}
	if f == nil || f.GetType() != "file" {
		return nil, fmt.Errorf("%s at %s is not a file: %w", path, rev, fs.ErrNotExist)
	}
	s, err := f.GetContent()
	if err != nil {
		return nil, sysErr(fmt.Sprintf("decode %s at %s", path, rev), resp, err)
	}
	return []byte(s), nil
}

// FollowUp implements GitHub: it looks for the marker among the issues
// with FollowUpLabel (open or closed) that gitgrant's own identity wrote
// before creating one, so that a lost cache never duplicates the issue
// and nobody else's issue, open or closed, stands in for it.
func (a *API) FollowUp(ctx context.Context, marker, title, body string) (int, error) {
	if a.Self == nil {
		return 0, errors.New("approval: no identity to tell gitgrant's own follow-up issues from others' (API.Self)")
	}
	self, err := a.Self(ctx)
	if err != nil {
		return 0, err
	}
	opts := &github.IssueListByRepoOptions{State: "all", Labels: []string{FollowUpLabel}, ListOptions: github.ListOptions{PerPage: 100}}
	for {
		is, resp, err := a.GH.Issues.ListByRepo(ctx, a.Owner, a.Repo, opts)
		if err != nil {
			return 0, sysErr("list follow-up issues", resp, err)
		}
		for _, i := range is {
			if authoredBy(i.GetUser(), self) && strings.Contains(i.GetBody(), marker) {
				return i.GetNumber(), nil
			}
		}
		if resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	labels := []string{FollowUpLabel}
	is, resp, err := a.GH.Issues.Create(ctx, a.Owner, a.Repo, &github.IssueRequest{Title: &title, Body: &body, Labels: &labels})
	if err != nil {
		return 0, sysErr("open follow-up issue", resp, err)
	}
	return is.GetNumber(), nil
}

// authoredBy reports whether u is login; a "[bot]" login, which no person
// can register, must also be a bot account.
func authoredBy(u *github.User, login string) bool {
	if u == nil || !strings.EqualFold(u.GetLogin(), login) {
		return false
	}
	return !strings.HasSuffix(login, "[bot]") || u.GetType() == "Bot"
}

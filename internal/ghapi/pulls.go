package ghapi

import (
	"context"
	"fmt"

	"github.com/google/go-github/v60/github"

	"github.com/gitgrant/gitgrant"
)

// PullRequestsWithCommit lists the pull requests GitHub associates with a
// commit (all pages): the one it was merged by, and open ones that
// contain it.
func (c *Client) PullRequestsWithCommit(ctx context.Context, sha string) ([]gitgrant.PullRequest, error) {
	return allItems("list pull requests of commit "+sha, func(page int) ([]*github.PullRequest, *github.Response, error) {
		return c.gh.PullRequests.ListPullRequestsWithCommit(ctx, c.Owner, c.Repo, sha, listPage(page))
	}, pullRequestOf)
}

// PullRequest reads one pull request.
func (c *Client) PullRequest(ctx context.Context, number int) (gitgrant.PullRequest, error) {
	p, resp, err := c.gh.PullRequests.Get(ctx, c.Owner, c.Repo, number)
	if err != nil {
		return gitgrant.PullRequest{}, fail(fmt.Sprintf("get pull request #%d", number), resp, err)
	}
	return pullRequestOf(p), nil
}

// pullRequestOf reads a pull request as the list and the get endpoints
// give it: the list's have no "merged" field, only merged_at.
func pullRequestOf(p *github.PullRequest) gitgrant.PullRequest {
	return gitgrant.PullRequest{
		Number: p.GetNumber(), Author: p.GetUser().GetLogin(),
		Merged: p.GetMerged() || p.MergedAt != nil, MergedAt: p.GetMergedAt().Time,
		MergeCommitSHA: p.GetMergeCommitSHA(), HeadSHA: p.GetHead().GetSHA(),
		BaseSHA: p.GetBase().GetSHA(), BaseRef: p.GetBase().GetRef(),
	}
}

// PullRequestCommits lists a pull request's commits (all pages; GitHub
// lists at most 250).
func (c *Client) PullRequestCommits(ctx context.Context, number int) ([]gitgrant.Commit, error) {
	return allItems(fmt.Sprintf("list commits of pull request #%d", number), func(page int) ([]*github.RepositoryCommit, *github.Response, error) {
		return c.gh.PullRequests.ListCommits(ctx, c.Owner, c.Repo, number, listPage(page))
	}, commitOf)
}

// Commit reads one commit.
func (c *Client) Commit(ctx context.Context, sha string) (gitgrant.Commit, error) {
	rc, resp, err := c.gh.Repositories.GetCommit(ctx, c.Owner, c.Repo, sha, nil)
	if err != nil {
		return gitgrant.Commit{}, fail("get commit "+sha, resp, err)
	}
	return commitOf(rc), nil
}

func commitOf(rc *github.RepositoryCommit) gitgrant.Commit {
	out := gitgrant.Commit{SHA: rc.GetSHA(), Author: rc.GetAuthor().GetLogin(), Committer: rc.GetCommitter().GetLogin(),
		Date: rc.GetCommit().GetCommitter().GetDate().Time}
	for _, p := range rc.Parents {
		out.Parents = append(out.Parents, p.GetSHA())
	}
	return out
}

// Reviews lists a pull request's reviews (all pages).
func (c *Client) Reviews(ctx context.Context, number int) ([]gitgrant.Review, error) {
	return allItems(fmt.Sprintf("list reviews of pull request #%d", number), func(page int) ([]*github.PullRequestReview, *github.Response, error) {
		return c.gh.PullRequests.ListReviews(ctx, c.Owner, c.Repo, number, listPage(page))
	}, reviewOf)
}

// PullRequestFiles lists the files a pull request changes (all pages;
// GitHub lists at most 3000).
func (c *Client) PullRequestFiles(ctx context.Context, number int) ([]gitgrant.PullRequestFile, error) {
	return allItems(fmt.Sprintf("list files of pull request #%d", number), func(page int) ([]*github.CommitFile, *github.Response, error) {
		return c.gh.PullRequests.ListFiles(ctx, c.Owner, c.Repo, number, listPage(page))
	}, fileOf)
}

func reviewOf(r *github.PullRequestReview) gitgrant.Review {
	return gitgrant.Review{ID: r.GetID(), Reviewer: r.GetUser().GetLogin(), State: r.GetState(),
		CommitID: r.GetCommitID(), SubmittedAt: r.GetSubmittedAt().Time}
}

func fileOf(f *github.CommitFile) gitgrant.PullRequestFile {
	return gitgrant.PullRequestFile{Path: f.GetFilename(), Status: f.GetStatus(), Previous: f.GetPreviousFilename()}
}

// CreatePullRequest opens a pull request from head (a branch already
// pushed) into base and returns its number and web address. Unlike
// EnsurePullRequest it never takes over an open one: a person's request
// is theirs to open once.
func (c *Client) CreatePullRequest(ctx context.Context, head, base, title, body string) (number int, url string, err error) {
	body = LimitComment(body)
	p, resp, err := c.gh.PullRequests.Create(ctx, c.Owner, c.Repo, &github.NewPullRequest{Title: &title, Head: &head, Base: &base, Body: &body})
	if err != nil {
		return 0, "", fail("open pull request for "+head, resp, err)
	}
	return p.GetNumber(), p.GetHTMLURL(), nil
}

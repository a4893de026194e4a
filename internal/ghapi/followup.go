package ghapi

import (
	"context"
	"strings"

	"github.com/google/go-github/v60/github"
)

// FollowUpLabel marks the issues that ask for review of emergency access.
const FollowUpLabel = "gitgrant-emergency"

// FollowUp returns the number of the issue, open or closed, whose body
// holds marker, creating it when there is none. It looks only among the
// issues with FollowUpLabel that gitgrant's own identity wrote, so that a
// lost cache never duplicates the issue and nobody else's issue stands in
// for it.
func (c *Client) FollowUp(ctx context.Context, marker, title, body string) (int, error) {
	self, err := c.Identity(ctx)
	if err != nil {
		return 0, err
	}
	found := 0
	err = eachItem("list follow-up issues", func(page int) ([]*github.Issue, *github.Response, error) {
		return c.gh.Issues.ListByRepo(ctx, c.Owner, c.Repo, &github.IssueListByRepoOptions{
			State: "all", Labels: []string{FollowUpLabel}, ListOptions: *listPage(page)})
	}, func(i *github.Issue) bool {
		if authoredBy(i.GetUser(), self) && strings.Contains(i.GetBody(), marker) {
			found = i.GetNumber()
		}
		return found != 0
	})
	if err != nil || found != 0 {
		return found, err
	}
	labels := []string{FollowUpLabel}
	is, resp, err := c.gh.Issues.Create(ctx, c.Owner, c.Repo, &github.IssueRequest{Title: &title, Body: &body, Labels: &labels})
	if err != nil {
		return 0, fail("open follow-up issue", resp, err)
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

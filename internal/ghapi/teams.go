package ghapi

import (
	"context"
	"fmt"

	"github.com/google/go-github/v60/github"

	"github.com/gitgrant/gitgrant"
)

// IsTeamMember reports an active membership of org/slug; a pending one is
// no membership. GitHub answers 404 both for "not a member" and for a
// token that may not read the team (the Actions GITHUB_TOKEN), so a 404
// is "not a member" only once the team itself can be read; otherwise, and
// on a 403, the answer is a *gitgrant.TeamAccessError.
func (c *Client) IsTeamMember(ctx context.Context, org, slug, login string) (bool, error) {
	unreadable := func(resp *github.Response) error {
		return fail(fmt.Sprintf("members of team %s/%s", org, slug), resp,
			&gitgrant.TeamAccessError{Org: org, Slug: slug, Login: login, Status: resp.StatusCode})
	}
	m, resp, err := c.gh.Teams.GetTeamMembershipBySlug(ctx, org, slug, login)
	switch refusedAs(resp, err) {
	case ErrForbidden:
		return false, unreadable(resp)
	case ErrNotFound:
		_, resp, err := c.gh.Teams.GetTeamBySlug(ctx, org, slug)
		if refusedAs(resp, err) != nil {
			return false, unreadable(resp)
		}
		if err != nil {
			return false, fail(fmt.Sprintf("team %s/%s", org, slug), resp, err)
		}
		return false, nil
	}
	if err != nil {
		return false, fail(fmt.Sprintf("membership of %s in team %s/%s", login, org, slug), resp, err)
	}
	return m.GetState() == "active", nil
}

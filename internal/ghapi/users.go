package ghapi

import (
	"context"
	"fmt"

	"github.com/google/go-github/v60/github"

	"github.com/gitgrant/gitgrant"
)

// UserSSHKeys lists the public SSH keys of a GitHub user, as
// authorized_keys lines ("ssh-ed25519 AAAA..."), from GET
// /users/{login}/keys: anyone may read them. A login GitHub does not know
// is an error wrapping ErrNotFound.
func (c *Client) UserSSHKeys(ctx context.Context, login string) ([]string, error) {
	return allItems(fmt.Sprintf("list the public SSH keys of %s", login), func(page int) ([]*github.Key, *github.Response, error) {
		return c.gh.Users.ListKeys(ctx, login, listPage(page))
	}, func(k *github.Key) string { return k.GetKey() })
}

// Comments lists the comments of an issue or pull request, oldest first.
func (c *Client) Comments(ctx context.Context, number int) ([]gitgrant.Comment, error) {
	return allItems(fmt.Sprintf("list comments of #%d", number), func(page int) ([]*github.IssueComment, *github.Response, error) {
		return c.gh.Issues.ListComments(ctx, c.Owner, c.Repo, number, &github.IssueListCommentsOptions{ListOptions: *listPage(page)})
	}, func(cm *github.IssueComment) gitgrant.Comment {
		return gitgrant.Comment{ID: cm.GetID(), Author: cm.GetUser().GetLogin(), AuthorIsBot: cm.GetUser().GetType() == "Bot",
			Body: cm.GetBody(), URL: cm.GetHTMLURL(), CreatedAt: cm.GetCreatedAt().Time}
	})
}

package ghapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/google/go-github/v60/github"
)

// MaxCommentBytes is a little under GitHub's 65536-character limit on a
// comment or check run summary.
const MaxCommentBytes = 65000

// PullRequestEvent is what a pull_request workflow's GITHUB_EVENT_PATH
// file says about the pull request.
type PullRequestEvent struct {
	Number  int
	BaseSHA string
	BaseRef string
	HeadSHA string
	Author  string
}

// ReadPullRequestEvent decodes the event payload of a pull_request or
// pull_request_target workflow run.
func ReadPullRequestEvent(data []byte) (PullRequestEvent, error) {
	var e github.PullRequestEvent
	if err := json.Unmarshal(data, &e); err != nil {
		return PullRequestEvent{}, fmt.Errorf("GITHUB_EVENT_PATH: not a JSON event: %w", err)
	}
	pr := e.GetPullRequest()
	if pr == nil || pr.GetNumber() == 0 {
		return PullRequestEvent{}, errors.New("GITHUB_EVENT_PATH: not a pull_request event (no pull_request.number)")
	}
	return PullRequestEvent{
		Number: pr.GetNumber(), BaseSHA: pr.GetBase().GetSHA(), BaseRef: pr.GetBase().GetRef(),
		HeadSHA: pr.GetHead().GetSHA(), Author: pr.GetUser().GetLogin(),
	}, nil
}

// Fold wraps long content in a <details> block so that a comment stays
// short until someone opens it.
func Fold(summary, body string) string {
	return "<details><summary>" + summary + "</summary>\n\n" + body + "\n\n</details>\n"
}

// LimitComment cuts body to MaxCommentBytes on a rune boundary, saying so.
func LimitComment(body string) string {
	if len(body) <= MaxCommentBytes {
		return body
	}
	const note = "\n\n… (cut: the full output is in the workflow's job summary)\n"
	cut := MaxCommentBytes - len(note)
	for cut > 0 && !utf8.RuneStart(body[cut]) {
		cut--
	}
	return body[:cut] + note
}

// UpsertComment keeps exactly one comment of gitgrant's on an issue or
// pull request, found by marker (an HTML comment such as
// "<!-- gitgrant:plan -->"): it edits the newest comment that starts with
// the marker, or creates one. A marker comment gitgrant may not edit
// (someone else's) is ignored and a new one is created.
func (c *Client) UpsertComment(ctx context.Context, number int, marker, body string) (id int64, created bool, err error) {
	if !strings.HasPrefix(body, marker) {
		body = marker + "\n" + body
	}
	body = LimitComment(body)
	var found []*github.IssueComment
	err = eachItem(fmt.Sprintf("list comments of #%d", number), func(page int) ([]*github.IssueComment, *github.Response, error) {
		return c.gh.Issues.ListComments(ctx, c.Owner, c.Repo, number, &github.IssueListCommentsOptions{ListOptions: *listPage(page)})
	}, func(cm *github.IssueComment) bool {
		if strings.HasPrefix(cm.GetBody(), marker) {
			found = append(found, cm)
		}
		return false
	})
	if err != nil {
		return 0, false, err
	}
	for i := len(found) - 1; i >= 0; i-- {
		if found[i].GetBody() == body {
			return found[i].GetID(), false, nil // unchanged: no write
		}
		_, resp, err := c.gh.Issues.EditComment(ctx, c.Owner, c.Repo, found[i].GetID(), &github.IssueComment{Body: &body})
		if err == nil {
			return found[i].GetID(), false, nil
		}
		if resp == nil || (resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusNotFound) {
			return 0, false, fail(fmt.Sprintf("edit comment on #%d", number), resp, err)
		}
	}
	cm, resp, err := c.gh.Issues.CreateComment(ctx, c.Owner, c.Repo, number, &github.IssueComment{Body: &body})
	if err != nil {
		return 0, false, fail(fmt.Sprintf("comment on #%d", number), resp, err)
	}
	return cm.GetID(), true, nil
}

// Comment adds a plain comment, such as "granted until …" after the
// reconciler acted.
func (c *Client) Comment(ctx context.Context, number int, body string) error {
	body = LimitComment(body)
	_, resp, err := c.gh.Issues.CreateComment(ctx, c.Owner, c.Repo, number, &github.IssueComment{Body: &body})
	if err != nil {
		return fail(fmt.Sprintf("comment on #%d", number), resp, err)
	}
	return nil
}

// Conclusion of a check: "success", "failure", "neutral" or
// "action_required".
type Conclusion string

// CheckRun records a completed check run on a commit. It needs the Checks
// permission, which the Actions GITHUB_TOKEN of a pull request from a fork
// does not have; SetStatus is the fallback.
func (c *Client) CheckRun(ctx context.Context, headSHA, name string, conclusion Conclusion, title, summary string) (int64, error) {
	summary = LimitComment(summary)
	concl := string(conclusion)
	run, resp, err := c.gh.Checks.CreateCheckRun(ctx, c.Owner, c.Repo, github.CreateCheckRunOptions{
		Name: name, HeadSHA: headSHA, Status: github.String("completed"), Conclusion: &concl,
		Output: &github.CheckRunOutput{Title: &title, Summary: &summary},
	})
	if err != nil {
		return 0, fail("create check run "+name, resp, err)
	}
	return run.GetID(), nil
}

// SetStatus sets a commit status ("success", "failure", "pending",
// "error"); the description is cut to GitHub's 140 characters.
func (c *Client) SetStatus(ctx context.Context, sha, state, statusContext, description string) error {
	if len(description) > 140 {
		description = description[:137] + "..."
	}
	_, resp, err := c.gh.Repositories.CreateStatus(ctx, c.Owner, c.Repo, sha, &github.RepoStatus{
		State: &state, Context: &statusContext, Description: &description,
	})
	if err != nil {
		return fail("set status "+statusContext, resp, err)
	}
	return nil
}

// EnsurePullRequest opens a pull request from head (a branch the git side
// has pushed) into base, or updates the title and body of the open one
// that already exists for head: there is never more than one.
func (c *Client) EnsurePullRequest(ctx context.Context, head, base, title, body string) (number int, created bool, err error) {
	body = LimitComment(body)
	prs, resp, err := c.gh.PullRequests.List(ctx, c.Owner, c.Repo, &github.PullRequestListOptions{
		State: "open", Head: c.Owner + ":" + head, Base: base, ListOptions: github.ListOptions{PerPage: 10},
	})
	if err != nil {
		return 0, false, fail("find pull request for "+head, resp, err)
	}
	for _, p := range prs {
		if p.GetHead().GetRef() != head {
			continue
		}
		if p.GetTitle() == title && p.GetBody() == body {
			return p.GetNumber(), false, nil
		}
		_, resp, err := c.gh.PullRequests.Edit(ctx, c.Owner, c.Repo, p.GetNumber(), &github.PullRequest{Title: &title, Body: &body})
		if err != nil {
			return 0, false, fail(fmt.Sprintf("update pull request #%d", p.GetNumber()), resp, err)
		}
		return p.GetNumber(), false, nil
	}
	p, resp, err := c.gh.PullRequests.Create(ctx, c.Owner, c.Repo, &github.NewPullRequest{Title: &title, Head: &head, Base: &base, Body: &body})
	if err != nil {
		return 0, false, fail("open pull request for "+head, resp, err)
	}
	return p.GetNumber(), true, nil
}

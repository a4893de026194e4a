package gitgrant

import (
	"fmt"
	"net/http"
	"time"
)

// PullRequest is what gitgrant needs to know about a pull request to
// verify its approvals and to report on it.
type PullRequest struct {
	Number         int
	Author         string
	Merged         bool
	MergedAt       time.Time
	MergeCommitSHA string
	HeadSHA        string
	BaseSHA        string
	BaseRef        string
}

// PullRequestFile is one file in a pull request's diff.
type PullRequestFile struct {
	Path   string
	Status string // added, modified, removed, renamed, ...
	// Previous is a renamed file's old path.
	Previous string
}

// Commit is a commit as GitHub attributes it: Author and Committer are
// GitHub logins, empty when the email is linked to no account.
type Commit struct {
	SHA       string
	Author    string
	Committer string
	Parents   []string
	// Date is the committer date: author-controlled, so it is only ever
	// used to shorten a window, never to lengthen one.
	Date time.Time
}

// Review is one pull request review.
type Review struct {
	ID          int64
	Reviewer    string
	State       string // one of the Review* states
	CommitID    string
	SubmittedAt time.Time
}

// Comment is a comment on an issue or pull request.
type Comment struct {
	ID     int64
	Author string
	// AuthorIsBot: GitHub says the author is a bot account (a GitHub
	// App, or github-actions), which no person can sign in as.
	AuthorIsBot bool
	Body        string
	URL         string
	CreatedAt   time.Time
}

// Review states as GitHub reports them.
const (
	ReviewApproved         = "APPROVED"
	ReviewChangesRequested = "CHANGES_REQUESTED"
	ReviewCommented        = "COMMENTED"
	ReviewDismissed        = "DISMISSED"
)

// TeamAccessError says GitHub would not tell whether Login is in a team:
// the token may not read the organisation's teams (or, on a 404, the team
// does not exist). It is never "not a member": an approval that depends
// on it is undecided, not missing. Its text names people and teams
// without "@", so that a pull request comment quoting it pings nobody.
type TeamAccessError struct {
	Org, Slug, Login string
	Status           int // 403, or 404 for the team itself
}

func (e *TeamAccessError) Error() string {
	fix := "Fix: use a GitHub App with the organization permission Members: read, or a token with the read:org scope (the Actions GITHUB_TOKEN never has it)"
	if e.Status == http.StatusNotFound {
		return fmt.Sprintf("the token cannot see the team (GitHub answered 404 for it and for %s's membership): it may not read team membership, or the team does not exist, "+
			"so approvals through this team cannot be checked. %s; if the team does not exist, correct CODEOWNERS or the approvers in %s", e.Login, fix, ConfigPath)
	}
	return fmt.Sprintf("GitHub refused to say whether %s is a member (%d): the token may not read team membership, so approvals through this team cannot be checked. %s",
		e.Login, e.Status, fix)
}

package gitgrant

import "time"

// Approver is one code owner whose review counts for a request.
type Approver struct {
	Login       string    `json:"login"`
	ReviewID    int64     `json:"review_id"`
	SubmittedAt time.Time `json:"submitted_at"`
	// Via names the CODEOWNERS entry that made the reviewer an owner: the
	// login itself or the @org/team they were resolved through.
	Via string `json:"via,omitempty"`
}

// Evidence is what gitgrant verified about how the current content of one
// request file reached the main branch: the pull request, who approved it,
// and every reason it does not count. The reconciler grants only on
// Approved evidence; the audit trail records it.
type Evidence struct {
	Path string `json:"path"`
	// Blob is the git blob hash of the request file the evidence is for; a
	// change to the file invalidates the evidence.
	Blob        string    `json:"blob"`
	PullRequest int       `json:"pull_request,omitempty"`
	Author      string    `json:"author,omitempty"`
	MergedAt    time.Time `json:"merged_at,omitzero"`
	MergeCommit string    `json:"merge_commit,omitempty"`
	BaseCommit  string    `json:"base_commit,omitempty"`
	HeadCommit  string    `json:"head_commit,omitempty"`
	// MergedOnto is the main-branch commit the pull request landed on,
	// decided from GitHub's merge commit and git's parents; the policy in
	// force there judged the request too (rule 1: the stricter wins).
	MergedOnto string     `json:"merged_onto,omitempty"`
	Approvers  []Approver `json:"approvers,omitempty"`
	// Emergency is set when the request was granted under break-glass
	// rules, without approval; it must be reviewed after the fact.
	Emergency bool `json:"emergency,omitempty"`
	// FollowUpIssue is the issue that asks for review after the fact of an
	// emergency grant; verification leaves it 0 (it opens nothing), the
	// reconciler sets it when it applies the grant.
	FollowUpIssue int `json:"follow_up_issue,omitempty"`
	// Approved is true when every rule passed. Reasons lists every rule
	// that failed, for the requester and the audit trail; with Emergency,
	// it lists what the break-glass bypassed.
	Approved bool     `json:"approved"`
	Reasons  []string `json:"reasons,omitempty"`
	// CheckedAt is when the evidence was gathered.
	CheckedAt time.Time `json:"checked_at,omitzero"`
}

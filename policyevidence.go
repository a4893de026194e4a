package gitgrant

import "time"

// PolicyEvidence is what gitgrant verified about how a change to the
// policy files (PolicyFiles) reached the main branch: the merged pull
// request, who approved each file, and every reason it does not count.
// A policy change takes effect only when Verified (rule 13).
type PolicyEvidence struct {
	// Commit is the main-branch commit that changed the policy files: the
	// commit judged.
	Commit      string    `json:"commit"`
	PullRequest int       `json:"pull_request,omitempty"`
	Author      string    `json:"author,omitempty"`
	MergedAt    time.Time `json:"merged_at,omitzero"`
	BaseCommit  string    `json:"base_commit,omitempty"`
	HeadCommit  string    `json:"head_commit,omitempty"`
	// MergedOnto is the main-branch commit the pull request landed on; the
	// policy in force there judged the change too.
	MergedOnto string `json:"merged_onto,omitempty"`
	// Files are the policy files the commit changed, with the approvals
	// that counted for each.
	Files []PolicyFileEvidence `json:"files"`
	// Verified is true when every rule passed; Reasons lists every rule
	// that failed, each saying what to do.
	Verified  bool      `json:"verified"`
	Reasons   []string  `json:"reasons,omitempty"`
	CheckedAt time.Time `json:"checked_at,omitzero"`
}

// PolicyFileEvidence is one changed policy file.
type PolicyFileEvidence struct {
	Path string `json:"path"`
	// Blob is the file's blob at the commit judged; empty when the commit
	// removes the file.
	Blob      string     `json:"blob,omitempty"`
	Approvers []Approver `json:"approvers,omitempty"`
}

// Package report owns `gitgrant report`: measures of just-in-time access
// (time to access, privilege reduction, usage, refused attempts, approval
// patterns, emergencies) computed from git alone, the audit trail
// (internal/audit) and gitgrant's records under refs/notes/gitgrant, and
// their text, JSON, CSV and self-contained HTML renderings. docs/report.md
// defines every field.
package report

import (
	"time"
)

// Version is the version of the report's JSON; fields are only added
// within a version.
const Version = 1

// Report is what `gitgrant report --output json` prints.
type Report struct {
	Version     int       `json:"version"`
	Head        string    `json:"head"`
	GeneratedAt time.Time `json:"generated_at"`
	// Since and Until bound the period measured: [Since, Until).
	Since    time.Time `json:"since"`
	Until    time.Time `json:"until"`
	Provider string    `json:"provider,omitempty"`
	Role     string    `json:"role,omitempty"`
	Sources  Sources   `json:"sources"`

	TimeToAccess []Latency      `json:"time_to_access"`
	Privilege    []Privilege    `json:"privilege"`
	Usage        []Usage        `json:"usage"`
	Refusals     Refusals       `json:"refusals"`
	Approvals    []ApprovalStat `json:"approvals"`
	Emergencies  []Emergency    `json:"emergencies"`
}

// Sources says what the figures could be computed from.
type Sources struct {
	// LedgerSince is the first ledger record: from then on, what was held
	// is what gitgrant recorded granting and revoking; zero when none.
	LedgerSince time.Time `json:"ledger_since,omitzero"`
	// Policy is where standing members come from: "trusted" (the policy
	// states gitgrant recorded as verified), "head" (gitgrant.yaml at the
	// head of main, no verified record: unverified) or "none".
	Policy string `json:"policy"`
	// PullRequestOpened is always "unknown": when a pull request was
	// opened is not in git; "written" (the request commit's author time)
	// stands in for it.
	PullRequestOpened string `json:"pull_request_opened"`
}

// Stat summarises durations: how many, the median and the 90th
// percentile, in seconds (null when there are none).
type Stat struct {
	Count int      `json:"count"`
	P50   *float64 `json:"p50_seconds"`
	P90   *float64 `json:"p90_seconds"`
}

// Latency is the time to access of one role ("" provider and role: all).
// Each stage counts only the requests where both ends are recorded.
type Latency struct {
	Provider string `json:"provider"`
	Role     string `json:"role"`
	Granted  int    `json:"granted"`
	// WrittenToApproved runs from the request commit's author time to the
	// last counted approval gitgrant recorded.
	WrittenToApproved Stat `json:"written_to_approved"`
	ApprovedToMerged  Stat `json:"approved_to_merged"`
	// MergedToGranted counts grants whose time gitgrant recorded (a note,
	// the ledger or a cleanup trailer), from the later of the merge and
	// the request's scheduled start.
	MergedToGranted  Stat `json:"merged_to_granted"`
	WrittenToGranted Stat `json:"written_to_granted"`
}

// Privilege compares, for one managed role, the hours held just in time
// with the hours its standing members could hold it in the period.
type Privilege struct {
	Provider      string          `json:"provider"`
	Role          string          `json:"role"`
	JITHours      float64         `json:"jit_hours"`
	JITGrants     int             `json:"jit_grants"`
	JITPeople     int             `json:"jit_people"`
	StandingHours float64         `json:"standing_hours"`
	Standing      []StandingPoint `json:"standing"`
	// JITShare is JITHours / (JITHours + StandingHours); null when both
	// are zero.
	JITShare *float64 `json:"jit_share"`
}

// StandingPoint is the number of standing members from At on.
type StandingPoint struct {
	At      time.Time `json:"at"`
	Members int       `json:"members"`
	Commit  string    `json:"commit,omitempty"`
}

// Usage is the share of one role's grants that were used, where the
// provider can tell (docs/report.md, "Usage").
type Usage struct {
	Provider string `json:"provider"`
	Role     string `json:"role"`
	Grants   int    `json:"grants"`
	Used     int    `json:"used"`
	NotSeen  int    `json:"not_seen"`
	Unknown  int    `json:"unknown"`
	// Rate is Used / (Used + NotSeen); null when no grant was observed.
	Rate *float64 `json:"rate"`
}

// Refusal kinds.
const (
	RefusedUnreviewed  = "unreviewed"   // reached main without a pull request or a grant note
	RefusedInvalid     = "invalid"      // did not decode on main
	RefusedAfterMerge  = "refused"      // merged, and gitgrant told the pull request why it grants nothing
	RefusedNotGranted  = "not-granted"  // merged and removed again without ever being granted
	RefusedCommitTime  = "refused-time" // a commit date gitgrant refused to trust (rule 6)
	RefusedDriftRemove = "drift"        // access found outside gitgrant and removed (drift-removed records)
)

// Refusals are the attempts that granted nothing.
type Refusals struct {
	Counts map[string]int `json:"counts"`
	Items  []Refused      `json:"items"`
}

// Refused is one attempt that granted nothing.
type Refused struct {
	Time        time.Time `json:"time"`
	Kind        string    `json:"kind"`
	Request     string    `json:"request,omitempty"`
	Requester   string    `json:"requester,omitempty"`
	Grants      []string  `json:"grants,omitempty"`
	PullRequest int       `json:"pull_request,omitempty"`
	Commit      string    `json:"commit,omitempty"`
	Detail      string    `json:"detail,omitempty"`
}

// ApprovalStat is one role's approvals in one month ("2026-11") of
// merge time.
type ApprovalStat struct {
	Provider string `json:"provider"`
	Role     string `json:"role"`
	Month    string `json:"month"`
	Merged   int    `json:"merged"`
	Granted  int    `json:"granted"`
	Refused  int    `json:"refused"`
	// Rate is Granted / Merged; null when nothing merged.
	Rate *float64 `json:"rate"`
	// Time runs from the request commit's author time to the merge.
	Time Stat `json:"time"`
	// RateChange and P50Change compare with the role's previous month
	// that had merges; null for the first.
	RateChange *float64 `json:"rate_change"`
	P50Change  *float64 `json:"p50_change_seconds"`
}

// Follow-up states of an emergency.
const (
	ReviewedBefore  = "reviewed-before"   // it came through an approved pull request
	FollowUpOpened  = "follow-up-opened"  // gitgrant opened the follow-up issue; its review is on GitHub
	FollowUpMissing = "follow-up-missing" // no follow-up recorded
)

// Emergency is one break-glass request.
type Emergency struct {
	Time        time.Time `json:"time"`
	Request     string    `json:"request"`
	Requester   string    `json:"requester"`
	Grants      []string  `json:"grants"`
	PullRequest int       `json:"pull_request,omitempty"`
	Commit      string    `json:"commit"`
	Granted     bool      `json:"granted"`
	// FollowUp is ReviewedBefore, FollowUpOpened or FollowUpMissing.
	// Whether a follow-up issue was reviewed is on GitHub, not in git.
	FollowUp   string   `json:"follow_up"`
	ApprovedBy []string `json:"approved_by,omitempty"`
}

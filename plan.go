package gitgrant

import (
	"fmt"
	"strings"
	"time"
)

// Status is where a request stands at a moment in time.
type Status string

const (
	// StatusPending: approved, but its window has not started.
	StatusPending Status = "pending"
	// StatusActive: approved and inside its window; its grants must exist.
	StatusActive Status = "active"
	// StatusExpired: its window has ended; its grants must be gone and the
	// file is due for cleanup.
	StatusExpired Status = "expired"
	// StatusRejected: it does not qualify (invalid, unapproved, or its
	// approval cannot be verified); it grants nothing.
	StatusRejected Status = "rejected"
	// StatusUnverified: its approval could not be checked (no GitHub
	// credentials, or GitHub unreachable). It grants nothing new (rule 7:
	// grants pause). What gitgrant granted for the same content while it
	// was verified is kept until the window recorded in the ledger ends;
	// nothing else is (rule 15).
	StatusUnverified Status = "unverified"
)

// Window is when a grant is in force: [Start, End).
type Window struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// Contains reports whether t falls inside the window.
func (w Window) Contains(t time.Time) bool { return !t.Before(w.Start) && t.Before(w.End) }

// DesiredGrant is one grant of one request, resolved to a principal and
// clamped to its role's maximum.
type DesiredGrant struct {
	Provider  string `json:"provider"`
	Role      string `json:"role"`
	Principal string `json:"principal"`
	Window    Window `json:"window"`
	// Clamped is set when the requested window was cut to the maximum.
	Clamped bool `json:"clamped,omitempty"`
}

// Entry is one request file as the reconciler sees it: what it asks for,
// when, whether it counts, and why not.
type Entry struct {
	Path      string         `json:"path"`
	Requester string         `json:"requester"`
	Subject   string         `json:"subject,omitempty"`
	Emergency bool           `json:"emergency,omitempty"`
	Status    Status         `json:"status"`
	Reasons   []string       `json:"reasons,omitempty"`
	Grants    []DesiredGrant `json:"grants"`
	Approvers []string       `json:"approvers,omitempty"`
	Evidence  *Evidence      `json:"-"`
	// ByPolicy is set on a rejected entry whose own approval is not the
	// problem but the policy is: an identity, principal, role or target it
	// needs is missing, or differs between the policies it must hold
	// under. What it backed is revoked as a policy change (CausePolicy).
	ByPolicy bool `json:"-"`
	// Blob and Commit identify the file's content on main and the commit
	// that brought it, to match it with the ledger.
	Blob   string `json:"-"`
	Commit string `json:"-"`
}

// Beneficiary is the login the entry's grants are for: the subject when
// it asks on someone's behalf, else the requester.
func (e Entry) Beneficiary() string {
	if e.Subject != "" {
		return e.Subject
	}
	return e.Requester
}

// Op is what an action does.
type Op string

const (
	OpRevoke Op = "revoke"
	OpGrant  Op = "grant"
	// OpReport: a member no request explains, on a role whose drift mode
	// is report. Nothing changes; the finding is surfaced.
	OpReport Op = "report"
)

// Past is the op as a past participle, for messages: "granted".
func (o Op) Past() string {
	switch o {
	case OpGrant:
		return "granted"
	case OpRevoke:
		return "revoked"
	}
	return string(o) + "ed"
}

// Action is one change to one membership.
type Action struct {
	Op        Op        `json:"op"`
	Provider  string    `json:"provider"`
	Role      string    `json:"role"`
	Principal string    `json:"principal"`
	Expires   time.Time `json:"expires,omitzero"`
	// Expired is set on revocations of access whose window has ended
	// (Cause is CauseExpired).
	Expired bool `json:"expired,omitempty"`
	// Cause says why a revocation is planned; the brake holds back only
	// drift and policy causes.
	Cause   Cause  `json:"cause,omitempty"`
	Reason  string `json:"reason"`
	Request string `json:"request,omitempty"`
	// Holding is the ledger line a grant records before it is made (the
	// record comes first, so a crash never loses what was granted), or
	// the ledger line a revocation ends. Nil for drift.
	Holding *Holding `json:"-"`
}

// Plan is the result of comparing desired with observed access: the
// actions to take, in the order to take them (revocations first), and when
// the next change is due so a scheduler can wake up then.
type Plan struct {
	At      time.Time `json:"at"`
	Entries []Entry   `json:"requests"`
	Actions []Action  `json:"actions"`
	// NextChange is the earliest future start or end of any window; zero
	// when nothing is scheduled.
	NextChange time.Time `json:"next_change,omitzero"`
	// Unobserved lists the roles ("provider/role") whose members could not
	// be listed; the plan holds only certain expiry revocations for them.
	Unobserved []string `json:"unobserved,omitempty"`
	// ObservedMembers counts the members of every role that was listed,
	// the base against which the removal brake measures a plan.
	ObservedMembers int `json:"observed_members"`
	// ObservedByRole counts them per "provider/role", for the brake that
	// is scoped to one role.
	ObservedByRole map[string]int `json:"-"`
	// Record are ledger lines to write without any provider call: a
	// membership that exists and is desired, newly backed by another
	// request or with a later end.
	Record []Holding `json:"-"`
	// Policy is the verified policy the plan was made under (rule 13).
	Policy *PolicyInForce `json:"policy,omitempty"`
	// Held are actions the removal brake held back (drift and policy
	// revocations of a role whose share was unusual); everything else in
	// Actions goes ahead.
	Held []Action `json:"held,omitempty"`
}

// PolicyInForce says which verified policy (gitgrant.yaml and CODEOWNERS)
// a plan was made under, and what on main is not in force and why.
type PolicyInForce struct {
	// Commit is the newest verified policy change at or before main's head.
	Commit string `json:"commit,omitempty"`
	// How it was verified: "trust root", "pull request #12", ...
	How string `json:"how,omitempty"`
	// ConfigCommit is where the gitgrant.yaml in force comes from, when an
	// invalid newer verified one made gitgrant keep an older one.
	ConfigCommit string `json:"config_commit,omitempty"`
	// Unverified are policy changes on main that are not in force, newest
	// first.
	Unverified []UnverifiedPolicy `json:"unverified,omitempty"`
	// Problems say why the newest verified gitgrant.yaml is not used.
	Problems []string `json:"problems,omitempty"`
	// Error is set when no verified, valid policy exists: nothing is
	// granted, and only access whose recorded window ended is revoked.
	Error string `json:"error,omitempty"`
}

// UnverifiedPolicy is a policy change gitgrant does not apply.
type UnverifiedPolicy struct {
	Commit  string   `json:"commit"`
	Files   []string `json:"files"`
	Reasons []string `json:"reasons"`
}

// Loud is one line when anything about the policy needs a person's
// attention, "" otherwise.
func (p *PolicyInForce) Loud() string {
	if p == nil {
		return ""
	}
	var parts []string
	if p.Error != "" {
		parts = append(parts, p.Error)
	}
	if len(p.Unverified) > 0 {
		u := p.Unverified[0]
		parts = append(parts, fmt.Sprintf("the policy change of %s (%s) is not verified, so the verified policy of %s stays in force: %s",
			shortSHA(u.Commit), strings.Join(u.Files, ", "), shortSHA(p.Commit), strings.Join(u.Reasons, "; ")))
		if n := len(p.Unverified) - 1; n > 0 {
			parts = append(parts, fmt.Sprintf("%d earlier unverified policy change(s)", n))
		}
	}
	parts = append(parts, p.Problems...)
	return strings.Join(parts, "; ")
}

func shortSHA(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

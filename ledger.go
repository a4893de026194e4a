package gitgrant

import (
	"sort"
	"time"
)

// PolicyFiles are the files besides requests that shape a grant: the
// configuration and the three places GitHub reads CODEOWNERS from. A change
// to any of them takes effect only once it is verified like a request
// (rule 13); until then gitgrant keeps the last verified version.
var PolicyFiles = []string{ConfigPath, ".github/CODEOWNERS", "CODEOWNERS", "docs/CODEOWNERS"}

// IsPolicyFile reports whether path is one of PolicyFiles.
func IsPolicyFile(path string) bool {
	for _, p := range PolicyFiles {
		if p == path {
			return true
		}
	}
	return false
}

// MemberKey names one membership: a principal holding a role.
type MemberKey struct {
	Provider  string `json:"provider"`
	Role      string `json:"role"`
	Principal string `json:"principal"`
}

func (k MemberKey) String() string { return k.Provider + "/" + k.Role + " " + k.Principal }

// Holding is one line of the ledger: a membership gitgrant granted and has
// not revoked since (rule 14). It carries what it takes to revoke the
// membership after its role, target or provider left the configuration,
// and what it takes to know which request backs it.
type Holding struct {
	MemberKey
	// Target is the role's name in the target system when it was granted.
	Target string `json:"target,omitempty"`
	// End is the end of the latest window gitgrant granted it for.
	End time.Time `json:"end"`
	// Request, Blob and Commit name the request file content that backs
	// the membership most recently, and the main commit that brought it.
	Request string `json:"request"`
	Blob    string `json:"blob,omitempty"`
	Commit  string `json:"commit,omitempty"`
	// Policy is the main commit of the verified policy the grant was made
	// under: the provider's settings there open it again to revoke.
	Policy string `json:"policy,omitempty"`
	// GrantedAt is when gitgrant first granted it (or recorded it as
	// granted: the record is written before the grant call).
	GrantedAt time.Time `json:"granted_at"`
	Emergency bool      `json:"emergency,omitempty"`
	// Owner is, for an ephemeral account (Principal is then the account's
	// login), the principal of the person it was created for.
	Owner string `json:"owner,omitempty"`
}

// Ledger is every membership gitgrant holds responsibility for, by key.
type Ledger map[MemberKey]Holding

// Sorted returns the holdings in key order.
func (l Ledger) Sorted() []Holding {
	out := make([]Holding, 0, len(l))
	for _, h := range l {
		out = append(out, h)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].MemberKey, out[j].MemberKey
		if a.Provider != b.Provider {
			return a.Provider < b.Provider
		}
		if a.Role != b.Role {
			return a.Role < b.Role
		}
		return a.Principal < b.Principal
	})
	return out
}

// Cause says why a membership is revoked. The removal brake holds back
// only drift and policy revocations; the others are routine or asked for
// and always go ahead (rule 15).
type Cause string

const (
	// CauseExpired: the window gitgrant granted ended.
	CauseExpired Cause = "expired"
	// CauseWithdrawn: the request file left the main branch or changed
	// (an early "I'm done" revocation, or an edit).
	CauseWithdrawn Cause = "withdrawn"
	// CauseRejected: the request file on main does not qualify (invalid,
	// unapproved, refused).
	CauseRejected Cause = "rejected"
	// CausePolicy: the verified policy no longer grants it (a role,
	// target, identity or provider changed or left the configuration).
	CausePolicy Cause = "policy"
	// CauseDrift: gitgrant never granted it and nothing explains it.
	CauseDrift Cause = "drift"
)

// Braked reports whether the removal brake may hold back a revocation of
// this cause.
func (c Cause) Braked() bool { return c == CauseDrift || c == CausePolicy }

package audit

import (
	"sort"
	"time"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/gitrepo"
)

// Kind names what happened; docs/audit.md defines each.
type Kind string

const (
	Requested  Kind = "requested"   // the request file was written (author time of the change)
	Approved   Kind = "approved"    // its pull request merged (or a note records approvals)
	Unreviewed Kind = "unreviewed"  // it reached main without a pull request or a grant note: no access
	NotGranted Kind = "not-granted" // merged while gitgrant kept its ledger, which records no grant of it
	Granted    Kind = "granted"     // access began (note, else inferred from merge time and starts)
	Extended   Kind = "extended"    // a later change moved the expiry later
	Shortened  Kind = "shortened"   // a later change moved the expiry earlier
	Changed    Kind = "changed"     // a later change that moved no expiry, or of a request not granted
	Renamed    Kind = "renamed"
	Invalid    Kind = "invalid" // the file on main did not decode: it grants nothing
	Revoked    Kind = "revoked" // access ended before its expiry (file removed, revert, or gitgrant)
	Expired    Kind = "expired"
	CleanedUp  Kind = "cleaned-up" // gitgrant's cleanup commit removed the file
	Removed    Kind = "removed"    // a person removed the file after it had expired
)

var kindOrder = map[Kind]int{Requested: 0, Approved: 1, Unreviewed: 1, Granted: 2, NotGranted: 2, Invalid: 2, Extended: 3, Shortened: 3, Changed: 3, Renamed: 3, Revoked: 4, Expired: 4, CleanedUp: 5, Removed: 5}

// Source says what an event's facts come from.
const (
	FromCommit   = "commit"   // the commit that changed the file
	FromTrailer  = "trailer"  // a cleanup commit's trailers
	FromNote     = "note"     // refs/notes/gitgrant
	FromLedger   = "ledger"   // gitgrant's ledger lines in refs/notes/gitgrant
	FromInferred = "inferred" // computed from the request and the merge time
)

// Event is one line of the trail. Its JSON is part of `audit --output json`.
type Event struct {
	Time        time.Time           `json:"time"`
	Event       Kind                `json:"event"`
	Request     string              `json:"request"`
	Requester   string              `json:"requester"`
	Beneficiary string              `json:"beneficiary"`
	Grants      []gitgrant.GrantRef `json:"grants"`
	Commit      string              `json:"commit"`
	PullRequest int                 `json:"pull_request,omitempty"`
	// Actor is who made it happen: the author, the approvers, gitgrant.
	Actor      string    `json:"actor,omitempty"`
	ApprovedBy []string  `json:"approved_by,omitempty"`
	Until      time.Time `json:"until,omitzero"`
	Source     string    `json:"source"`
	Detail     string    `json:"detail,omitempty"`
}

// Holding is one role held by one person for one span of time.
type Holding struct {
	Requester   string `json:"requester"`
	Beneficiary string `json:"beneficiary"`
	// Principal is the name the provider knows the beneficiary by, when
	// the ledger recorded it.
	Principal string    `json:"principal,omitempty"`
	Provider  string    `json:"provider"`
	Role      string    `json:"role"`
	From      time.Time `json:"from"`
	// Until is when it ended or ends; for a ledger holding not ended yet,
	// the end of the window it was granted for (it is held until gitgrant
	// records its revocation).
	Until       time.Time `json:"until"`
	Ended       Kind      `json:"ended,omitempty"` // revoked or expired; empty while it lasts
	Request     string    `json:"request"`
	Commit      string    `json:"commit"`
	PullRequest int       `json:"pull_request,omitempty"`
	ApprovedBy  []string  `json:"approved_by,omitempty"`
	Source      string    `json:"source"`
}

// Trail is the whole audit trail of a main branch.
type Trail struct {
	Head     string    `json:"head"`
	Events   []Event   `json:"events"`
	Holdings []Holding `json:"holdings"`
}

// build joins the commit history with the notes, judged at now. When the
// ledger has lines (nil: none), the holdings are the ledger's joined with
// those the history gives without the ledger's records.
func build(h *history, notes map[gitrepo.Hash][]gitrepo.NoteRecord, ledger *ledgerHistory, now time.Time) *Trail {
	t := lifetimes(h, notes, now, ledger, nil)
	if ledger != nil && !ledger.epoch.IsZero() {
		var owners []int
		windowed := lifetimes(h, withoutLedger(notes), now, nil, &owners)
		t.Holdings = ledger.merge(windowed.Holdings, owners, h)
	}
	sort.SliceStable(t.Events, func(i, j int) bool {
		a, b := t.Events[i], t.Events[j]
		if !a.Time.Equal(b.Time) {
			return a.Time.Before(b.Time)
		}
		if kindOrder[a.Event] != kindOrder[b.Event] {
			return kindOrder[a.Event] < kindOrder[b.Event]
		}
		return a.Request < b.Request
	})
	sort.SliceStable(t.Holdings, func(i, j int) bool { return t.Holdings[i].From.Before(t.Holdings[j].From) })
	return t
}

// lifetimes builds every lifetime's events and holdings; owners, when not
// nil, receives the lifetime of each holding. With a ledger (not nil, with
// lines), a version merged from its first line on is granted only if a
// note says so: nothing is inferred.
func lifetimes(h *history, notes map[gitrepo.Hash][]gitrepo.NoteRecord, now time.Time, ledger *ledgerHistory, owners *[]int) *Trail {
	// Size the events up front: a long history has hundreds of thousands.
	n := 0
	for _, l := range h.Lifetimes {
		n += 2*len(l.Versions) + len(l.Renames) + 4
	}
	t := &Trail{Head: h.Head, Events: make([]Event, 0, n), Holdings: []Holding{}}
	for i, l := range h.Lifetimes {
		lb := &lifetimeBuilder{t: t, l: l, notes: notes, now: now, first: l.Versions[0]}
		if ledger != nil {
			lb.epoch, lb.refused = ledger.epoch, ledger.refused
		}
		lb.run()
		for owners != nil && len(*owners) < len(t.Holdings) {
			*owners = append(*owners, i)
		}
	}
	return t
}

func noteFor(notes map[gitrepo.Hash][]gitrepo.NoteRecord, commit, path, event string) *gitrepo.NoteRecord {
	var found *gitrepo.NoteRecord
	for _, rec := range notes[gitrepo.ParseHash(commit)] {
		if rec.Request == path && rec.Event == event {
			found = &rec // the last record wins: later ones correct earlier ones
		}
	}
	return found
}

// window is when a version of a request grants access.
func window(v Version, start time.Time) (time.Time, time.Time) {
	if v.Starts.After(start) {
		start = v.Starts
	}
	if !v.Expires.IsZero() {
		return start, v.Expires
	}
	return start, start.Add(time.Duration(v.Duration))
}

package audit

import (
	"sort"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/gitrepo"
)

// Kind names what happened; docs/audit.md defines each.
type Kind string

const (
	Requested  Kind = "requested"  // the request file was written (author time of the change)
	Approved   Kind = "approved"   // its pull request merged (or a note records approvals)
	Unreviewed Kind = "unreviewed" // it reached main without a pull request or a grant note: no access
	Granted    Kind = "granted"    // access began (note, else inferred from merge time and starts)
	Extended   Kind = "extended"   // a later change moved the expiry later
	Shortened  Kind = "shortened"  // a later change moved the expiry earlier
	Changed    Kind = "changed"    // a later change that moved no expiry, or of a request not granted
	Renamed    Kind = "renamed"
	Invalid    Kind = "invalid" // the file on main did not decode: it grants nothing
	Revoked    Kind = "revoked" // access ended before its expiry (file removed, revert, or gitgrant)
	Expired    Kind = "expired"
	CleanedUp  Kind = "cleaned-up" // gitgrant's cleanup commit removed the file
	Removed    Kind = "removed"    // a person removed the file after it had expired
)

var kindOrder = map[Kind]int{Requested: 0, Approved: 1, Unreviewed: 1, Granted: 2, Invalid: 2, Extended: 3, Shortened: 3, Changed: 3, Renamed: 3, Revoked: 4, Expired: 4, CleanedUp: 5, Removed: 5}

// Source says what an event's facts come from.
const (
	FromCommit   = "commit"   // the commit that changed the file
	FromTrailer  = "trailer"  // a cleanup commit's trailers
	FromNote     = "note"     // refs/notes/gitgrant
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
	Requester   string    `json:"requester"`
	Beneficiary string    `json:"beneficiary"`
	Provider    string    `json:"provider"`
	Role        string    `json:"role"`
	From        time.Time `json:"from"`
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

// build joins the commit history with the notes, judged at now.
func build(h *history, notes map[plumbing.Hash][]gitrepo.NoteRecord, now time.Time) *Trail {
	t := &Trail{Head: h.Head, Events: []Event{}, Holdings: []Holding{}}
	for _, l := range h.Lifetimes {
		t.lifetime(l, notes, now)
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

func noteFor(notes map[plumbing.Hash][]gitrepo.NoteRecord, commit, path, event string) *gitrepo.NoteRecord {
	var found *gitrepo.NoteRecord
	for _, rec := range notes[plumbing.NewHash(commit)] {
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

func (t *Trail) lifetime(l *Lifetime, notes map[plumbing.Hash][]gitrepo.NoteRecord, now time.Time) {
	first := l.Versions[0]
	event := func(k Kind, at time.Time, v Version, c CommitRef, source string) *Event {
		e := Event{Time: at, Event: k, Request: v.Path, Requester: v.Requester, Beneficiary: v.Requester, Grants: v.Grants,
			Commit: c.Hash, PullRequest: c.PullRequest, Source: source}
		if v.Subject != "" {
			e.Beneficiary = v.Subject
		}
		if e.PullRequest == 0 {
			e.PullRequest = first.Commit.PullRequest
		}
		t.Events = append(t.Events, e)
		return &t.Events[len(t.Events)-1]
	}

	event(Requested, first.Commit.AuthorTime, first, first.Commit, FromCommit).Actor = first.Commit.Author

	// gitgrant notes the grant on the commit that made the request what it
	// was when granted: the first version, or a later one (a rebase merge's
	// last commit).
	var granted *gitrepo.NoteRecord
	grantedIdx := -1
	for i, v := range l.Versions {
		if n := noteFor(notes, v.Commit.Hash, v.Path, "granted"); n != nil {
			granted, grantedIdx = n, i
			break
		}
	}
	var approvedBy []string
	if granted != nil {
		approvedBy = granted.ApprovedBy
	}
	grantCommit := first.Commit
	if grantedIdx > 0 {
		grantCommit = l.Versions[grantedIdx].Commit
	}
	switch {
	case first.Invalid != "" && granted == nil:
		event(Invalid, first.Commit.Time, first, first.Commit, FromCommit).Detail = first.Invalid
	case first.Commit.PullRequest > 0:
		e := event(Approved, first.Commit.Time, first, first.Commit, FromCommit)
		e.ApprovedBy, e.Actor, e.Detail = approvedBy, strings.Join(approvedBy, ","), string(first.Commit.Kind)
	case granted != nil:
		v := l.Versions[grantedIdx]
		e := event(Approved, v.Commit.Time, v, v.Commit, FromNote)
		e.ApprovedBy, e.Actor, e.PullRequest = approvedBy, strings.Join(approvedBy, ","), granted.PullRequest
		e.Detail = string(v.Commit.Kind)
	default:
		e := event(Unreviewed, first.Commit.Time, first, first.Commit, FromCommit)
		e.Actor, e.Detail = first.Commit.Author, "reached main without a pull request in its message and without a grant note: grants nothing"
	}

	// Walk versions: each one is in force from its commit to the next.
	removedAt := time.Time{}
	if l.Removed != nil {
		removedAt = l.Removed.Commit.Time
	}
	var start, end time.Time
	haveGrant := false
	var holdings []Holding
	for i, v := range l.Versions {
		validTo := removedAt
		if i+1 < len(l.Versions) {
			validTo = l.Versions[i+1].Commit.Time
		}
		if v.Invalid != "" {
			if i > 0 {
				event(Invalid, v.Commit.Time, v, v.Commit, FromCommit).Detail = v.Invalid
			}
			continue
		}
		if i > 0 && (!haveGrant || i == grantedIdx) {
			event(Changed, v.Commit.Time, v, v.Commit, FromCommit).Actor = v.Commit.Author
		}
		source := FromInferred
		switch {
		case i == grantedIdx:
			start, end, source = granted.GrantedAt, granted.ExpiresAt, FromNote
		case !haveGrant && (grantedIdx > i || first.Commit.PullRequest == 0 && !v.Emergency && grantedIdx < 0):
			continue // not granted (yet): unreviewed
		case !haveGrant:
			start, end = window(v, v.Commit.Time)
		default:
			ext := noteFor(notes, v.Commit.Hash, v.Path, "extended")
			_, newEnd := window(v, start)
			if ext != nil {
				newEnd, source = ext.ExpiresAt, FromNote
			}
			kind := Extended
			switch {
			case newEnd.Before(end):
				kind = Shortened
			case newEnd.Equal(end):
				kind = Changed
			}
			e := event(kind, v.Commit.Time, v, v.Commit, source)
			e.Until, e.Actor = newEnd, v.Commit.Author
			end = newEnd
		}
		if !haveGrant {
			e := event(Granted, start, v, grantCommit, source)
			e.Until, e.ApprovedBy = end, approvedBy
			haveGrant = true
		}
		from, to := start, end
		if i > 0 && v.Commit.Time.After(from) {
			from = v.Commit.Time
		}
		if !validTo.IsZero() && validTo.Before(to) {
			to = validTo
		}
		if !to.After(from) {
			continue
		}
	grants:
		for _, g := range v.Grants {
			benef := v.Requester
			if v.Subject != "" {
				benef = v.Subject
			}
			for k := range holdings { // the same grant going on under a new version
				if hd := &holdings[k]; hd.Provider == g.Provider && hd.Role == g.Role && hd.Beneficiary == benef && hd.Until.Equal(from) {
					hd.Until, hd.Request = to, v.Path
					continue grants
				}
			}
			holdings = append(holdings, Holding{Requester: v.Requester, Beneficiary: benef, Provider: g.Provider, Role: g.Role,
				From: from, Until: to, Request: v.Path, Commit: grantCommit.Hash, PullRequest: grantCommit.PullRequest, ApprovedBy: approvedBy, Source: source})
		}
	}
	last := l.Versions[len(l.Versions)-1]
	for _, rn := range l.Renames {
		v := last
		v.Path = rn.To
		event(Renamed, rn.Commit.Time, v, rn.Commit, FromCommit).Detail = rn.From + " -> " + rn.To
	}
	if len(l.Renames) > 0 {
		last.Path = l.current()
	}

	// How it ended.
	ended := Kind("")
	endedAt := time.Time{}
	revokedNote := noteFor(notes, grantCommit.Hash, l.Versions[max(grantedIdx, 0)].Path, "revoked")
	switch {
	case l.Removed != nil && l.Removed.Trailer != nil:
		tr := l.Removed.Trailer
		if !tr.ExpiredAt.IsZero() {
			ended, endedAt = Expired, tr.ExpiredAt
		} else {
			ended, endedAt = Revoked, tr.RevokedAt
		}
		if haveGrant && !endedAt.IsZero() {
			event(ended, endedAt, last, l.Removed.Commit, FromTrailer).Actor = "gitgrant"
		}
		e := event(CleanedUp, l.Removed.Commit.Time, last, l.Removed.Commit, FromTrailer)
		e.Actor = l.Removed.Commit.Committer
	case l.Removed != nil:
		c := l.Removed.Commit
		if haveGrant && c.Time.Before(end) {
			ended, endedAt = Revoked, c.Time
			e := event(Revoked, c.Time, last, c, FromCommit)
			e.Actor, e.Detail = c.Author, "request file removed before its expiry"
		} else {
			if haveGrant {
				ended, endedAt = Expired, end
				event(Expired, end, last, grantCommit, FromInferred)
			}
			event(Removed, c.Time, last, c, FromCommit).Actor = c.Author
		}
	case revokedNote != nil && haveGrant:
		ended, endedAt = Revoked, revokedNote.RevokedAt
		event(Revoked, endedAt, last, grantCommit, FromNote).Actor = "gitgrant"
	case haveGrant && !end.After(now):
		ended, endedAt = Expired, end
		event(Expired, end, last, grantCommit, FromInferred).Detail = "still on main: awaiting cleanup"
	}
	for _, hd := range holdings {
		if !endedAt.IsZero() && endedAt.Before(hd.Until) {
			hd.Until = endedAt
		}
		if !hd.Until.After(hd.From) {
			continue
		}
		if ended != "" && !hd.Until.Before(endedAt) {
			hd.Ended = ended
		} else if !hd.Until.After(now) {
			hd.Ended = Expired
		}
		t.Holdings = append(t.Holdings, hd)
	}
}

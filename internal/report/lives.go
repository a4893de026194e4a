package report

import (
	"strings"
	"time"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/audit"
	"github.com/gitgrant/gitgrant/internal/gitrepo"
)

// life is what the report needs of one request file's lifetime, read
// from the audit trail's events and the grant note.
type life struct {
	path        string
	requester   string
	grants      []gitgrant.GrantRef
	written     time.Time // the request commit's author time
	merged      time.Time // when it reached main through a pull request (or a grant note says it was approved)
	pullRequest int
	commit      string
	viaPR       bool
	unreviewed  *audit.Event
	invalid     *audit.Event
	granted     time.Time
	grantSource string
	approvedBy  []string
	approvedAt  time.Time // the last counted approval's submission, when recorded
	emergency   bool
	marker      bool // the grant note names a follow-up issue's marker
	ended       bool // the file left main, or the access ended
	refused     bool // gitgrant told the pull request why it grants nothing
}

// recorded reports whether the grant's time is gitgrant's own record.
func (l *life) recorded() bool {
	return !l.granted.IsZero() && l.grantSource != audit.FromInferred
}

func (l *life) matches(provider, role string) bool {
	if provider == "" && role == "" {
		return true
	}
	for _, g := range l.grants {
		if (provider == "" || g.Provider == provider) && (role == "" || g.Role == role) {
			return true
		}
	}
	return false
}

// lives groups the trail's events by lifetime: a requested event starts
// one, a rename carries it to the new path.
//
// From the ledger's first record (epoch) on, gitgrant records every grant:
// a grant the trail only infers from a later merge did not happen.
func lives(t *audit.Trail, notes map[gitrepo.Hash][]gitrepo.NoteRecord, epoch time.Time) []*life {
	var out []*life
	current := map[string]*life{}
	for i := range t.Events {
		e := &t.Events[i]
		if e.Event == audit.Requested {
			l := &life{path: e.Request, requester: e.Requester, grants: e.Grants, written: e.Time, pullRequest: e.PullRequest, commit: e.Commit}
			current[e.Request] = l
			out = append(out, l)
			continue
		}
		l := current[e.Request]
		if e.Event == audit.Renamed {
			if from, _, ok := strings.Cut(e.Detail, " -> "); ok && current[from] != nil {
				l = current[from]
				current[e.Request] = l
			}
		}
		if l == nil {
			continue
		}
		switch e.Event {
		case audit.Approved:
			// A grant note without a pull request approves a break-glass push.
			l.merged, l.viaPR, l.approvedBy = e.Time, e.PullRequest > 0 || e.Source == audit.FromCommit, e.ApprovedBy
			if e.PullRequest != 0 {
				l.pullRequest = e.PullRequest
			}
		case audit.Unreviewed:
			l.unreviewed = e
			l.merged = e.Time
			l.emergency = l.emergency || strings.HasPrefix(e.Detail, "emergency")
		case audit.Invalid:
			if l.invalid == nil {
				l.invalid = e
			}
		case audit.Granted:
			if e.Source == audit.FromInferred && !epoch.IsZero() && !l.merged.Before(epoch) {
				continue
			}
			if l.granted.IsZero() {
				l.granted, l.grantSource = e.Time, e.Source
				if len(e.ApprovedBy) > 0 {
					l.approvedBy = e.ApprovedBy
				}
				l.fromNote(notes[gitrepo.ParseHash(e.Commit)])
			}
		case audit.Revoked, audit.Expired, audit.CleanedUp, audit.Removed:
			l.ended = true
		}
	}
	return out
}

// fromNote reads the grant note's evidence: approval times, emergency,
// the follow-up marker.
func (l *life) fromNote(recs []gitrepo.NoteRecord) {
	for _, rec := range recs {
		if rec.Event != gitrepo.EventGranted || rec.Request != l.path {
			continue
		}
		l.emergency = l.emergency || rec.Emergency
		l.marker = l.marker || rec.Marker != ""
		for _, a := range rec.Approvals {
			if a.SubmittedAt.After(l.approvedAt) {
				l.approvedAt = a.SubmittedAt
			}
		}
		for _, h := range rec.Holdings {
			l.emergency = l.emergency || h.Emergency
		}
	}
}

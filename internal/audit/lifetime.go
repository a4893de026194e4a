package audit

import (
	"strings"
	"time"

	"github.com/gitgrant/gitgrant/internal/gitrepo"
)

// lifetimeBuilder turns one request file's lifetime into events and
// holdings, joining what the commits say with the grant notes.
type lifetimeBuilder struct {
	t     *Trail
	l     *Lifetime
	notes map[gitrepo.Hash][]gitrepo.NoteRecord
	now   time.Time
	first Version
	// epoch is the ledger's first line (zero: no ledger); refused the
	// request contents gitgrant refused (ledgerHistory.refused).
	epoch   time.Time
	refused map[string]bool

	// The grant note, on the version that was granted (grantedIdx), if any.
	granted     *gitrepo.NoteRecord
	grantedIdx  int
	grantCommit CommitRef
	approvedBy  []string

	haveGrant  bool
	start, end time.Time
	holdings   []Holding
}

func (b *lifetimeBuilder) run() {
	b.event(Requested, b.first.Commit.AuthorTime, b.first, b.first.Commit, FromCommit).Actor = b.first.Commit.Author
	b.findGrantNote()
	b.approval()
	b.versions()
	last := b.l.Versions[len(b.l.Versions)-1]
	for _, rn := range b.l.Renames {
		v := last
		v.Path = rn.To
		b.event(Renamed, rn.Commit.Time, v, rn.Commit, FromCommit).Detail = rn.From + " -> " + rn.To
	}
	last.Path = b.l.current()
	ended, endedAt := b.ending(last)
	b.finishHoldings(ended, endedAt)
}

// event appends an event; the pointer is valid until the next append.
func (b *lifetimeBuilder) event(k Kind, at time.Time, v Version, c CommitRef, source string) *Event {
	e := Event{Time: at, Event: k, Request: v.Path, Requester: v.Requester, Beneficiary: v.Requester, Grants: v.Grants,
		Commit: c.Hash, PullRequest: c.PullRequest, Source: source}
	if v.Subject != "" {
		e.Beneficiary = v.Subject
	}
	if e.PullRequest == 0 {
		e.PullRequest = b.first.Commit.PullRequest
	}
	b.t.Events = append(b.t.Events, e)
	return &b.t.Events[len(b.t.Events)-1]
}

// findGrantNote finds the note gitgrant wrote on the commit that made the
// request what it was when granted: the first version, or a later one (a
// rebase merge's last commit).
func (b *lifetimeBuilder) findGrantNote() {
	b.grantedIdx = -1
	b.grantCommit = b.first.Commit
	for i, v := range b.l.Versions {
		if n := noteFor(b.notes, v.Commit.Hash, v.Path, "granted"); n != nil {
			b.granted, b.grantedIdx, b.approvedBy = n, i, n.ApprovedBy
			b.grantCommit = v.Commit
			return
		}
	}
	// Without a note, a cleanup commit's trailers still say who approved.
	if rm := b.l.Removed; rm != nil && rm.Trailer != nil {
		b.approvedBy = rm.Trailer.ApprovedBy
	}
}

func (b *lifetimeBuilder) approval() {
	first := b.first
	switch {
	case first.Invalid != "" && b.granted == nil:
		b.event(Invalid, first.Commit.Time, first, first.Commit, FromCommit).Detail = first.Invalid
	case first.Commit.PullRequest > 0:
		e := b.event(Approved, first.Commit.Time, first, first.Commit, FromCommit)
		e.ApprovedBy, e.Actor, e.Detail = b.approvedBy, strings.Join(b.approvedBy, ","), string(first.Commit.Kind)
	case b.granted != nil:
		v := b.l.Versions[b.grantedIdx]
		e := b.event(Approved, v.Commit.Time, v, v.Commit, FromNote)
		e.ApprovedBy, e.Actor, e.PullRequest = b.approvedBy, strings.Join(b.approvedBy, ","), b.granted.PullRequest
		e.Detail = string(v.Commit.Kind)
	case first.Emergency:
		e := b.event(Unreviewed, first.Commit.Time, first, first.Commit, FromCommit)
		e.Actor, e.Detail = first.Commit.Author, "emergency (break-glass) request without a pull request: access at once, reviewed after the fact"
	default:
		e := b.event(Unreviewed, first.Commit.Time, first, first.Commit, FromCommit)
		e.Actor, e.Detail = first.Commit.Author, "reached main without a pull request in its message and without a grant note: grants nothing"
	}
}

// versions walks the versions, each in force from its commit to the next,
// recording the grant, extensions and the spans held.
func (b *lifetimeBuilder) versions() {
	var removedAt time.Time
	if b.l.Removed != nil {
		removedAt = b.l.Removed.Commit.Time
	}
	for i, v := range b.l.Versions {
		validTo := removedAt
		if i+1 < len(b.l.Versions) {
			validTo = b.l.Versions[i+1].Commit.Time
		}
		if v.Invalid != "" {
			if i > 0 {
				b.event(Invalid, v.Commit.Time, v, v.Commit, FromCommit).Detail = v.Invalid
			}
			continue
		}
		if i > 0 && (!b.haveGrant || i == b.grantedIdx) {
			b.event(Changed, v.Commit.Time, v, v.Commit, FromCommit).Actor = v.Commit.Author
		}
		source, granted := b.window(i, v)
		if !granted {
			continue
		}
		from, to := b.start, b.end
		if i > 0 && v.Commit.Time.After(from) {
			from = v.Commit.Time
		}
		if !validTo.IsZero() && validTo.Before(to) {
			to = validTo
		}
		if to.After(from) {
			b.hold(v, from, to, source)
		}
	}
}

// window updates the grant's window for version i and reports whether
// the version grants access and where its window comes from.
func (b *lifetimeBuilder) window(i int, v Version) (string, bool) {
	source := FromInferred
	switch {
	case i == b.grantedIdx:
		b.start, b.end, source = b.granted.GrantedAt, b.granted.ExpiresAt, FromNote
	case !b.haveGrant && (b.grantedIdx > i || b.first.Commit.PullRequest == 0 && !v.Emergency && b.grantedIdx < 0):
		return "", false // not granted (yet): unreviewed
	case !b.haveGrant && !b.epoch.IsZero() && !v.Commit.Time.Before(b.epoch):
		// gitgrant kept its ledger when this version reached main and
		// wrote no grant note for it: it was not granted, whatever its
		// pull request says.
		e := b.event(NotGranted, v.Commit.Time, v, v.Commit, FromLedger)
		e.Detail = "the ledger records no grant of it: not (yet) verified or approved, or the grant failed"
		if b.refused[gitrepo.SeenFileKey(v.Path, v.Blob)] {
			e.Detail = "gitgrant refused it and told its pull request why; the ledger records no grant"
		}
		return "", false
	case !b.haveGrant:
		b.start, b.end = window(v, v.Commit.Time)
		if rm := b.l.Removed; rm != nil && rm.Trailer != nil && !rm.Trailer.GrantedAt.IsZero() {
			b.start, source = rm.Trailer.GrantedAt, FromTrailer // the time gitgrant actually granted
		}
	default:
		_, newEnd := window(v, b.start)
		// gitgrant notes a later version it granted again on that version's
		// commit, as "extended" or "granted".
		ext := noteFor(b.notes, v.Commit.Hash, v.Path, "extended")
		if ext == nil {
			ext = noteFor(b.notes, v.Commit.Hash, v.Path, "granted")
		}
		if ext != nil && !ext.ExpiresAt.IsZero() {
			newEnd, source = ext.ExpiresAt, FromNote
		}
		kind := Extended
		switch {
		case newEnd.Before(b.end):
			kind = Shortened
		case newEnd.Equal(b.end):
			kind = Changed
		}
		e := b.event(kind, v.Commit.Time, v, v.Commit, source)
		e.Until, e.Actor = newEnd, v.Commit.Author
		b.end = newEnd
	}
	if !b.haveGrant {
		e := b.event(Granted, b.start, v, b.grantCommit, source)
		e.Until, e.ApprovedBy = b.end, b.approvedBy
		b.haveGrant = true
	}
	return source, true
}

// hold records the span [from, to) of every grant of v, continuing a span
// that an earlier version of the same grant ended where this one starts.
func (b *lifetimeBuilder) hold(v Version, from, to time.Time, source string) {
	benef := v.Requester
	if v.Subject != "" {
		benef = v.Subject
	}
grants:
	for _, g := range v.Grants {
		for k := range b.holdings {
			if hd := &b.holdings[k]; hd.Provider == g.Provider && hd.Role == g.Role && hd.Beneficiary == benef && hd.Until.Equal(from) {
				hd.Until, hd.Request = to, v.Path
				continue grants
			}
		}
		b.holdings = append(b.holdings, Holding{Requester: v.Requester, Beneficiary: benef, Provider: g.Provider, Role: g.Role,
			From: from, Until: to, Request: v.Path, Commit: b.grantCommit.Hash, PullRequest: b.grantCommit.PullRequest, ApprovedBy: b.approvedBy, Source: source})
	}
}

// ending records how the lifetime ended, if it did: cleaned up by
// gitgrant (trailers), removed by a person, revoked (note), or expired
// while still on main.
func (b *lifetimeBuilder) ending(last Version) (Kind, time.Time) {
	// A revocation is noted on the commit the request was at when revoked:
	// any of its versions.
	var revokedNote *gitrepo.NoteRecord
	for _, v := range b.l.Versions {
		if n := noteFor(b.notes, v.Commit.Hash, v.Path, "revoked"); n != nil {
			revokedNote = n
		}
	}
	switch rm := b.l.Removed; {
	case rm != nil && rm.Trailer != nil:
		ended, endedAt := Expired, rm.Trailer.ExpiredAt
		if endedAt.IsZero() {
			ended, endedAt = Revoked, rm.Trailer.RevokedAt
		}
		if b.haveGrant && !endedAt.IsZero() {
			b.event(ended, endedAt, last, rm.Commit, FromTrailer).Actor = "gitgrant"
		}
		b.event(CleanedUp, rm.Commit.Time, last, rm.Commit, FromTrailer).Actor = rm.Commit.Committer
		return ended, endedAt
	case rm != nil && b.haveGrant && rm.Commit.Time.Before(b.end):
		e := b.event(Revoked, rm.Commit.Time, last, rm.Commit, FromCommit)
		e.Actor, e.Detail = rm.Commit.Author, "request file removed before its expiry"
		return Revoked, rm.Commit.Time
	case rm != nil:
		if b.haveGrant {
			b.event(Expired, b.end, last, b.grantCommit, FromInferred)
		}
		b.event(Removed, rm.Commit.Time, last, rm.Commit, FromCommit).Actor = rm.Commit.Author
		if b.haveGrant {
			return Expired, b.end
		}
	case revokedNote != nil && b.haveGrant:
		b.event(Revoked, revokedNote.RevokedAt, last, b.grantCommit, FromNote).Actor = "gitgrant"
		return Revoked, revokedNote.RevokedAt
	case b.haveGrant && !b.end.After(b.now):
		b.event(Expired, b.end, last, b.grantCommit, FromInferred).Detail = "still on main: awaiting cleanup"
		return Expired, b.end
	}
	return "", time.Time{}
}

func (b *lifetimeBuilder) finishHoldings(ended Kind, endedAt time.Time) {
	for _, hd := range b.holdings {
		if !endedAt.IsZero() && endedAt.Before(hd.Until) {
			hd.Until = endedAt
		}
		if !hd.Until.After(hd.From) {
			continue
		}
		if ended != "" && !hd.Until.Before(endedAt) {
			hd.Ended = ended
		} else if !hd.Until.After(b.now) {
			hd.Ended = Expired
		}
		b.t.Holdings = append(b.t.Holdings, hd)
	}
}

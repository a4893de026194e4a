package gitrepo

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sort"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/gitgrant/gitgrant"
)

// Records are every record under refs/notes/gitgrant, the local ref and the
// remote's last fetched one merged as a union of lines, in replay order:
// by RecordedAt; at equal times revoked records first, then by the line's
// text. A Records is read-only and safe to share.
//
// Revoked records go first at equal times because of what each mistake
// costs: a ledger line kept one pass too long costs one idempotent revoke,
// a line lost orphans a membership (rule 14).
type Records struct {
	local, remote plumbing.Hash // the refs as read
	notes         []Note
	byCommit      map[plumbing.Hash][]NoteRecord
}

// Records reads the notes, or returns the last answer when neither notes
// ref moved since.
func (r *Repo) Records(ctx context.Context) (*Records, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	local, err := r.refHash(NotesRef)
	if err != nil {
		return nil, err
	}
	remote, err := r.refHash(remoteNotesRef)
	if err != nil {
		return nil, err
	}
	r.notesMu.Lock()
	cached := r.records
	r.notesMu.Unlock()
	if cached != nil && cached.local == local && cached.remote == remote {
		return cached, nil
	}
	merged := map[plumbing.Hash]map[string]*NoteRecord{}
	blobs := map[plumbing.Hash]bool{}
	for _, name := range []plumbing.ReferenceName{NotesRef, remoteNotesRef} {
		files, err := r.noteFiles(name)
		if err != nil {
			return nil, err
		}
		for h, f := range files {
			blobs[f.blob] = true
			if merged[h] == nil {
				merged[h] = map[string]*NoteRecord{}
			}
			for i, l := range f.lines {
				merged[h][l] = f.recs[i]
			}
		}
	}
	rs := newRecords(merged)
	rs.local, rs.remote = local, remote
	r.notesMu.Lock()
	r.records = rs
	for b := range r.noteBlobs { // forget blobs no ref holds any more
		if !blobs[b] {
			delete(r.noteBlobs, b)
		}
	}
	r.notesMu.Unlock()
	return rs, nil
}

// newRecords puts the records of every annotated commit's note (by line;
// nil for a line that is no record) in replay order. The records are
// shared with the Repo's cache and never changed.
func newRecords(merged map[plumbing.Hash]map[string]*NoteRecord) *Records {
	rs := &Records{byCommit: make(map[plumbing.Hash][]NoteRecord, len(merged))}
	type line struct {
		text string
		note Note
	}
	var all []line
	for h, ls := range merged {
		texts := make([]string, 0, len(ls))
		for l, rec := range ls {
			if rec != nil {
				texts = append(texts, l)
			}
		}
		sort.Strings(texts)
		for _, l := range texts {
			rec := *ls[l]
			rs.byCommit[h] = append(rs.byCommit[h], rec)
			all = append(all, line{l, Note{Commit: h, Record: rec}})
		}
	}
	sort.Slice(all, func(i, j int) bool {
		a, b := all[i].note, all[j].note
		if !a.Record.RecordedAt.Equal(b.Record.RecordedAt) {
			return a.Record.RecordedAt.Before(b.Record.RecordedAt)
		}
		if ra, rb := a.Record.Event == EventRevoked, b.Record.Event == EventRevoked; ra != rb {
			return ra
		}
		if all[i].text != all[j].text {
			return all[i].text < all[j].text
		}
		return a.Commit.String() < b.Commit.String()
	})
	rs.notes = make([]Note, len(all))
	for i, l := range all {
		rs.notes[i] = l.note
	}
	return rs
}

func (r *Repo) refHash(name plumbing.ReferenceName) (plumbing.Hash, error) {
	ref, err := r.git.Reference(name, true)
	if errors.Is(err, plumbing.ErrReferenceNotFound) {
		return plumbing.ZeroHash, nil
	}
	if err != nil {
		return plumbing.ZeroHash, r.fail("read "+name.String(), err, false)
	}
	return ref.Hash(), nil
}

// All returns the records in replay order.
func (rs *Records) All() []Note { return slices.Clone(rs.notes) }

// ByCommit returns the records by annotated commit, each commit's in the
// order of their lines.
func (rs *Records) ByCommit() map[plumbing.Hash][]NoteRecord {
	out := make(map[plumbing.Hash][]NoteRecord, len(rs.byCommit))
	for h, recs := range rs.byCommit {
		out[h] = slices.Clone(recs)
	}
	return out
}

// LedgerStep is one change a replay makes to the ledger.
type LedgerStep struct {
	// At is the record's RecordedAt for a line added or updated, the
	// revocation's time for a line ended.
	At  time.Time
	Key gitgrant.MemberKey
	// Holding is the line after the step, nil when the step ended it;
	// Previous the line before, nil when the step added it.
	Holding, Previous *gitgrant.Holding
	// Record is the record that made the step.
	Record *NoteRecord
}

// Ledger replays the records into the ledger (Replay without a callback).
func (rs *Records) Ledger() gitgrant.Ledger { return rs.Replay(nil) }

// Replay replays the records in order into the ledger, calling fn (when
// not nil) for every change:
//   - a holding of a granted or extended record adds its line or replaces
//     the line of the same member key; GrantedAt stays the earliest while
//     the line lasts, and is the record's time when the holding has none;
//   - a member key in Ended of a revoked record ends its line, unless the
//     revocation's time (RevokedAt, else RecordedAt) is before the time of
//     the record that wrote the line: that grant came after the revocation.
//
// Records written before the ledger existed carry no holdings: the ledger
// starts empty for that history.
func (rs *Records) Replay(fn func(LedgerStep)) gitgrant.Ledger {
	led := gitgrant.Ledger{}
	since := map[gitgrant.MemberKey]time.Time{}
	for i := range rs.notes {
		rec := &rs.notes[i].Record
		switch rec.Event {
		case EventGranted, EventExtended:
			for _, h := range rec.Holdings {
				if !validKey(h.MemberKey) {
					continue
				}
				prev, held := led[h.MemberKey]
				if held && (h.GrantedAt.IsZero() || prev.GrantedAt.Before(h.GrantedAt)) {
					h.GrantedAt = prev.GrantedAt
				}
				if h.GrantedAt.IsZero() {
					h.GrantedAt = rec.RecordedAt
				}
				led[h.MemberKey], since[h.MemberKey] = h, rec.RecordedAt
				if fn != nil {
					step := LedgerStep{At: rec.RecordedAt, Key: h.MemberKey, Holding: &h, Record: rec}
					if held {
						step.Previous = &prev
					}
					fn(step)
				}
			}
		case EventRevoked:
			at := rec.RevokedAt
			if at.IsZero() {
				at = rec.RecordedAt
			}
			for _, k := range rec.Ended {
				prev, held := led[k]
				if !held || at.Before(since[k]) {
					continue
				}
				delete(led, k)
				delete(since, k)
				if fn != nil {
					fn(LedgerStep{At: at, Key: k, Previous: &prev, Record: rec})
				}
			}
		}
	}
	return led
}

func validKey(k gitgrant.MemberKey) bool {
	return k.Provider != "" && k.Role != "" && k.Principal != ""
}

// FirstSeen returns, for every key seen records name (Sighting.Key), the
// earliest time any record gives it: the minimum, so that a record added
// later, forged or not, never moves a first sighting later.
func (rs *Records) FirstSeen() map[string]time.Time {
	out := map[string]time.Time{}
	for _, n := range rs.notes {
		rec := n.Record
		if rec.Event != EventSeen {
			continue
		}
		at := rec.RecordedAt
		if !rec.SeenAt.IsZero() && rec.SeenAt.Before(at) {
			at = rec.SeenAt
		}
		for _, s := range rec.Seen {
			k := s.Key()
			if k == "" {
				continue
			}
			if cur, ok := out[k]; !ok || at.Before(cur) {
				out[k] = at
			}
		}
	}
	return out
}

// Notices returns what notified records told, as request@blob#notice
// keys (NoticeKey).
func (rs *Records) Notices() map[string]bool {
	out := map[string]bool{}
	for _, n := range rs.notes {
		if n.Record.Event == EventNotified && n.Record.Notice != "" {
			out[NoticeKey(n.Record.Request, n.Record.Blob, n.Record.Notice)] = true
		}
	}
	return out
}

// NoticeKey names one notice about one request content.
func NoticeKey(request, blob, notice string) string { return request + "@" + blob + "#" + notice }

// Refused returns the keys any seen record refused.
func (rs *Records) Refused() map[string]bool {
	out := map[string]bool{}
	for _, n := range rs.notes {
		if n.Record.Event != EventSeen {
			continue
		}
		for _, s := range n.Record.Seen {
			if s.Refused && s.Key() != "" {
				out[s.Key()] = true
			}
		}
	}
	return out
}

// PolicyTrusts returns what every policy-trusted record trusts, in replay
// order, each with its RecordedAt. Several records may name one commit
// (every writer records what it verified); all are returned.
func (rs *Records) PolicyTrusts() []PolicyTrust {
	var out []PolicyTrust
	for _, n := range rs.notes {
		p := n.Record.Policy
		if n.Record.Event != EventPolicyTrusted || p == nil || p.Commit == "" {
			continue
		}
		t := *p
		t.State = maps.Clone(p.State)
		t.Approvers = slices.Clone(p.Approvers)
		t.RecordedAt = n.Record.RecordedAt
		out = append(out, t)
	}
	return out
}

// Ledger replays every record into the ledger (Records.Replay).
func (r *Repo) Ledger(ctx context.Context) (gitgrant.Ledger, error) {
	rs, err := r.Records(ctx)
	if err != nil {
		return nil, err
	}
	return rs.Ledger(), nil
}

// FirstSeen returns the first-seen time of every key (Records.FirstSeen).
func (r *Repo) FirstSeen(ctx context.Context) (map[string]time.Time, error) {
	rs, err := r.Records(ctx)
	if err != nil {
		return nil, err
	}
	return rs.FirstSeen(), nil
}

// PolicyTrusts returns the recorded trusted policy states
// (Records.PolicyTrusts).
func (r *Repo) PolicyTrusts(ctx context.Context) ([]PolicyTrust, error) {
	rs, err := r.Records(ctx)
	if err != nil {
		return nil, err
	}
	return rs.PolicyTrusts(), nil
}

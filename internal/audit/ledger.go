package audit

import (
	"strings"
	"time"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/gitrepo"
)

// ledgerSpan is one membership as the ledger holds it: from the record
// that added it to the revocation that ended it (zero while it lasts).
// Like a windowed holding it goes on when another request backs it, and
// names the latest.
type ledgerSpan struct {
	holding     gitgrant.Holding   // the line as last written
	record      gitrepo.NoteRecord // the record that wrote it
	from, until time.Time
	ended       Kind
	backs       []backing // every request content that backed it, in order
}

type backing struct {
	request, blob string
	since         time.Time
}

// ledgerHistory is the ledger's whole history. epoch is the first ledger
// line's record: before it, gitgrant kept no ledger and the trail falls back
// to windows from commits, notes and trailers.
type ledgerHistory struct {
	epoch time.Time
	spans []ledgerSpan
	// refused holds "path@blob" (gitrepo.SeenFileKey) of every request
	// content gitgrant told its pull request it refused.
	refused map[string]bool
}

// readLedger replays the records (gitrepo.Records.Replay: the one place
// that decides what the ledger holds) into spans.
func readLedger(recs *gitrepo.Records) *ledgerHistory {
	lh := &ledgerHistory{refused: map[string]bool{}}
	for k := range recs.Notices() { // request@blob#notice
		if i := strings.LastIndexByte(k, '#'); i >= 0 && strings.HasPrefix(k[i+1:], "refused:") {
			lh.refused[k[:i]] = true
		}
	}
	open := map[gitgrant.MemberKey]int{}
	recs.Replay(func(s gitrepo.LedgerStep) {
		if lh.epoch.IsZero() {
			lh.epoch = s.At
		}
		i, held := open[s.Key]
		if s.Holding == nil {
			sp := &lh.spans[i]
			sp.until, sp.ended = s.At, Revoked
			if !s.At.Before(sp.holding.End) {
				sp.ended = Expired
			}
			delete(open, s.Key)
			return
		}
		if !held {
			i = len(lh.spans)
			open[s.Key] = i
			lh.spans = append(lh.spans, ledgerSpan{from: s.Holding.GrantedAt})
		}
		sp := &lh.spans[i]
		sp.holding, sp.record = *s.Holding, *s.Record
		if n := len(sp.backs); n == 0 || sp.backs[n-1].request != s.Holding.Request || sp.backs[n-1].blob != s.Holding.Blob {
			since := s.At
			if n == 0 {
				since = sp.from
			}
			sp.backs = append(sp.backs, backing{s.Holding.Request, s.Holding.Blob, since})
		}
	})
	return lh
}

// withoutLedger returns the notes but for the records that carry ledger
// lines: what the trail answers from when there is no ledger.
func withoutLedger(notes map[gitrepo.Hash][]gitrepo.NoteRecord) map[gitrepo.Hash][]gitrepo.NoteRecord {
	out := make(map[gitrepo.Hash][]gitrepo.NoteRecord, len(notes))
	for h, recs := range notes {
		for _, rec := range recs {
			if len(rec.Holdings) == 0 && len(rec.Ended) == 0 {
				out[h] = append(out[h], rec)
			}
		}
	}
	return out
}

// grantOf names one grant of one lifetime.
type grantOf struct {
	life           int
	provider, role string
}

// merge joins the ledger with the holdings the lifetimes' windows give
// (owners[i] is the lifetime of windowed[i]). From the epoch on, gitgrant
// records every grant, so only the ledger says what was held: a window
// that began then or later is dropped. A window that began before is kept
// up to the grant's first ledger line, if any (access granted before the
// ledger existed and recorded in it later).
func (lh *ledgerHistory) merge(windowed []Holding, owners []int, h *history) []Holding {
	lives := newLifetimeFinder(h)
	first := map[grantOf]time.Time{}
	out := make([]Holding, 0, len(windowed)+len(lh.spans))
	for _, sp := range lh.spans {
		life := -1
		for _, b := range sp.backs {
			life = lives.match(b.request, b.blob, b.since)
			g := grantOf{life, sp.holding.Provider, sp.holding.Role}
			if f, ok := first[g]; life >= 0 && (!ok || b.since.Before(f)) {
				first[g] = b.since
			}
		}
		out = append(out, lh.holding(sp, h, life))
	}
	for i, hd := range windowed {
		if !hd.From.Before(lh.epoch) {
			continue
		}
		if f, ok := first[grantOf{owners[i], hd.Provider, hd.Role}]; ok && f.Before(hd.Until) {
			hd.Until, hd.Ended = f, "" // the ledger goes on from here
		}
		if hd.Until.After(hd.From) {
			out = append(out, hd)
		}
	}
	return out
}

func (lh *ledgerHistory) holding(sp ledgerSpan, h *history, life int) Holding {
	rec := sp.record
	hd := Holding{Requester: rec.Requester, Beneficiary: rec.Requester, Principal: sp.holding.Principal, Provider: sp.holding.Provider, Role: sp.holding.Role,
		From: sp.from, Until: sp.until, Ended: sp.ended, Request: sp.holding.Request, Commit: sp.holding.Commit, PullRequest: rec.PullRequest,
		ApprovedBy: rec.ApprovedBy, Source: FromLedger}
	if hd.Until.IsZero() {
		// Not ended: held until a revocation is recorded (Trail.At), and
		// meant to end at the end of its window.
		hd.Until = sp.holding.End
	}
	if life >= 0 {
		l := h.Lifetimes[life]
		v := l.Versions[0]
		for _, x := range l.Versions {
			if x.Blob == sp.holding.Blob {
				v = x
			}
		}
		hd.Requester, hd.Beneficiary = v.Requester, v.Requester
		if v.Subject != "" {
			hd.Beneficiary = v.Subject
		}
		if hd.PullRequest == 0 {
			hd.PullRequest = l.Versions[0].Commit.PullRequest
		}
	}
	if hd.Beneficiary == "" {
		hd.Beneficiary = hd.Principal
	}
	return hd
}

// lifetimeFinder finds the lifetime a ledger line's request belongs to by path
// (any of its names) and blob (any of its versions).
type lifetimeFinder struct {
	byFile map[string][]int // "path@blob" and "path" -> lifetimes, oldest first
	h      *history
}

func newLifetimeFinder(h *history) lifetimeFinder {
	idx := lifetimeFinder{byFile: map[string][]int{}, h: h}
	for i, l := range h.Lifetimes {
		paths := map[string]bool{}
		for _, v := range l.Versions {
			paths[v.Path] = true
		}
		for _, rn := range l.Renames {
			paths[rn.To] = true
		}
		seen := map[string]bool{}
		for p := range paths {
			keys := []string{p}
			for _, v := range l.Versions {
				keys = append(keys, gitrepo.SeenFileKey(p, v.Blob))
			}
			for _, k := range keys {
				if !seen[k] {
					seen[k] = true
					idx.byFile[k] = append(idx.byFile[k], i)
				}
			}
		}
	}
	return idx
}

// match returns the lifetime of path (with blob, when known) that had
// begun at from, the latest such; -1 when none.
func (idx lifetimeFinder) match(path, blob string, from time.Time) int {
	key := path
	if blob != "" {
		key = gitrepo.SeenFileKey(path, blob)
	}
	found := -1
	for _, i := range idx.byFile[key] {
		if found < 0 || !idx.h.Lifetimes[i].Versions[0].Commit.Time.After(from) {
			found = i
		}
	}
	return found
}

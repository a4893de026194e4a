package serve

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/gitgrant/gitgrant/internal/gitrepo"
)

// followUpLull is the gap before the next expiry that the full pass after
// fast-path revocations waits for: under load it takes seconds, and
// expiries should not queue behind it.
const followUpLull = 10 * time.Second

// notesWriter writes the fast path's ledger records on a goroutine of
// its own, so that the next expiry's revocations never wait on a notes
// push: records that arrive while a write runs go out together in the
// next one. A full pass flushes it before it reads the ledger; a crash
// before a write leaves ledger lines whose members are gone, which the
// next full pass revokes again (idempotently) and records.
type notesWriter struct {
	mu      sync.Mutex
	cond    *sync.Cond
	pending []gitrepo.Note
	writing bool
	err     error
}

// add queues records and starts a write unless one runs.
func (w *notesWriter) add(ctx context.Context, recs []gitrepo.Note, write func(context.Context, []gitrepo.Note) error) {
	if len(recs) == 0 {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pending = append(w.pending, recs...)
	if w.writing {
		return
	}
	w.writing = true
	go func() {
		for {
			w.mu.Lock()
			batch := w.pending
			w.pending = nil
			if len(batch) == 0 {
				w.writing = false
				w.signal()
				w.mu.Unlock()
				return
			}
			w.mu.Unlock()
			err := write(ctx, batch)
			w.mu.Lock()
			w.err = errors.Join(w.err, err)
			w.mu.Unlock()
		}
	}()
}

// signal wakes flush; w.mu is held.
func (w *notesWriter) signal() {
	if w.cond != nil {
		w.cond.Broadcast()
	}
}

// flush waits for every queued record to be written and returns (and
// clears) the errors of the writes since the last flush.
func (w *notesWriter) flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cond == nil {
		w.cond = sync.NewCond(&w.mu)
	}
	for w.writing {
		w.cond.Wait()
	}
	err := w.err
	w.err = nil
	return err
}

// failed returns a write error since the last flush, without waiting.
func (w *notesWriter) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// flushNotes waits for the fast path's records; one that could not be
// written is said, and the next full pass (of any replica) revokes its
// membership again and records it.
func (s *Server) flushNotes() {
	if err := s.notes.flush(); err != nil {
		s.log.Warn("recording the fast path's revocations failed; the next full pass repairs the ledger", "err", err)
	}
}

// expire is the scheduler's fast path for a due change: when only ends
// of windows the last clean full pass computed are due, it revokes them
// (engine.Expire) and returns the next change; otherwise, or on any
// error, it declines and a full pass runs. It checks leadership as pass
// does. Cleanup, comments and drift are left to the full pass that
// follows at the first lull in expiries.
func (s *Server) expire(ctx context.Context) (time.Time, bool) {
	if leading, _ := s.Leading(); !leading || s.fast == nil {
		return time.Time{}, false
	}
	now := s.opts.Clock.Now()
	if !s.fast.Handles(now) || (!s.fastSince.IsZero() && !s.burst(now)) {
		return time.Time{}, false
	}
	if err := s.notes.failed(); err != nil {
		s.Metrics.expirySteps.WithLabelValues("fallback").Inc()
		s.log.Warn("recording the fast path's revocations failed; a full pass follows now", "err", err)
		s.fast = nil
		return time.Time{}, false
	}
	res, err := s.eng.ExpireDeferred(ctx, s.fast)
	end := s.opts.Clock.Now()
	s.notes.add(ctx, res.Records, func(ctx context.Context, recs []gitrepo.Note) error {
		return s.eng.RecordExpired(ctx, recs, s.opts.Apply)
	})
	s.Metrics.observeResult(res.Plan, res.Result, end)
	applied, failed := counts(res.Result)
	if err != nil {
		s.Metrics.expirySteps.WithLabelValues("fallback").Inc()
		s.log.Warn("expiry fast path failed; a full pass follows now", "revoked", applied, "failed", failed, "err", err)
		s.fast = nil
		return time.Time{}, false
	}
	s.Metrics.expirySteps.WithLabelValues("ok").Inc()
	if applied > 0 {
		s.log.Info("expired access revoked (fast path)", "took", end.Sub(now), "revoked", applied)
		if s.fastSince.IsZero() {
			s.fastSince = now
		}
	}
	if !s.fastSince.IsZero() && !s.burst(end) {
		return end, true // a lull: the full pass follows at once
	}
	return s.fast.Next(), true
}

// burst reports whether expiries keep coming: the next is due within
// followUpLull, and the full pass that follows the fast path has not
// waited its longest yet.
func (s *Server) burst(now time.Time) bool {
	next := s.fast.Next()
	return !next.IsZero() && next.Sub(now) <= followUpLull && now.Sub(s.fastSince) < s.opts.ExpiryFollowUp
}

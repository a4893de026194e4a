package audit

import (
	"context"
	"encoding/gob"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/gitgrant/gitgrant/internal/gitrepo"
)

// Options tune Build.
type Options struct {
	// Now judges what has expired; zero means time.Now().
	Now time.Time
	// IndexDir keeps the incremental index; empty means no index.
	IndexDir string
	Logger   *slog.Logger
}

// indexVersion changes whenever history's encoding or meaning does, so
// that an old index is rebuilt rather than misread. 2: files under
// requests/ that are no requests (README.md, .gitkeep) are left out.
const indexVersion = 2

type indexFile struct {
	Version int
	Branch  string
	History *history
}

// Build rebuilds the trail of the repository's main branch.
func Build(ctx context.Context, r *gitrepo.Repo, o Options) (*Trail, error) {
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	head, err := r.MainRef()
	if err != nil {
		return nil, err
	}
	h := loadIndex(o.IndexDir, r.Branch(), log)
	start := time.Now()
	before := h.Head
	h, err = h.update(ctx, r, head)
	if err != nil {
		return nil, err
	}
	log.Debug("audit history read", "from", before, "to", h.Head, "lifetimes", len(h.Lifetimes), "took", time.Since(start))
	if h.Head != before {
		if err := saveIndex(o.IndexDir, r.Branch(), h); err != nil {
			log.Warn("audit index not saved; the next run reads the whole history again", "err", err)
		}
	}
	recs, err := r.Records(ctx)
	if err != nil {
		return nil, err
	}
	return build(h, recs.ByCommit(), readLedger(recs), o.Now), nil
}

// IndexDir is where Build keeps a repository's index: inside its git
// directory, beside git's own caches.
func IndexDir(r *gitrepo.Repo) string {
	if d := r.GitDir(); d != "" {
		return filepath.Join(d, "gitgrant")
	}
	return ""
}

func indexPath(dir, branch string) string {
	return filepath.Join(dir, fmt.Sprintf("audit-%s.v%d.gob", strings.ReplaceAll(branch, "/", "_"), indexVersion))
}

func loadIndex(dir, branch string, log *slog.Logger) *history {
	if dir == "" {
		return newHistory()
	}
	f, err := os.Open(indexPath(dir, branch))
	if err != nil {
		return newHistory()
	}
	defer f.Close()
	var idx indexFile
	if err := gob.NewDecoder(f).Decode(&idx); err != nil || idx.Version != indexVersion || idx.Branch != branch || idx.History == nil {
		log.Warn("audit index unreadable; reading the whole history", "path", f.Name(), "err", err)
		return newHistory()
	}
	idx.History.reindex()
	return idx.History
}

// saveIndex writes atomically: a reader sees the old index or the new one.
func saveIndex(dir, branch string, h *history) error {
	if dir == "" {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "audit-*.tmp")
	if err != nil {
		return err
	}
	err = gob.NewEncoder(tmp).Encode(indexFile{Version: indexVersion, Branch: branch, History: h})
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), indexPath(dir, branch))
	}
	if err != nil {
		os.Remove(tmp.Name())
		return errors.Join(errors.New("writing the audit index"), err)
	}
	return nil
}

// Filter selects events and holdings. Zero fields match everything.
type Filter struct {
	Who      string // requester or beneficiary, case-insensitive (GitHub logins are)
	Provider string
	Role     string
	Since    time.Time // events at or after
	Until    time.Time // events before
}

func (f Filter) person(requester, beneficiary string) bool {
	return f.Who == "" || strings.EqualFold(f.Who, requester) || strings.EqualFold(f.Who, beneficiary)
}

func (f Filter) grant(provider, role string) bool {
	return (f.Provider == "" || f.Provider == provider) && (f.Role == "" || f.Role == role)
}

// Filter returns the events the filter selects, in time order. With no
// filter they are the trail's own: read them, do not change them.
func (t *Trail) Filter(f Filter) []Event {
	if f == (Filter{}) { // the trail's own events, which a long history has many of
		return slices.Clip(t.Events)
	}
	out := []Event{}
	for _, e := range t.Events {
		if !f.person(e.Requester, e.Beneficiary) || (!f.Since.IsZero() && e.Time.Before(f.Since)) || (!f.Until.IsZero() && !e.Time.Before(f.Until)) {
			continue
		}
		match := f.Provider == "" && f.Role == ""
		for _, g := range e.Grants {
			match = match || f.grant(g.Provider, g.Role)
		}
		if match {
			out = append(out, e)
		}
	}
	return out
}

// At answers "who held what at t": the holdings in force at that instant.
// A ledger holding not ended is in force from its start on: gitgrant
// granted it and has not recorded its revocation.
func (t *Trail) At(at time.Time, f Filter) []Holding {
	out := []Holding{}
	for _, h := range t.Holdings {
		lasts := at.Before(h.Until) || h.Source == FromLedger && h.Ended == ""
		if !h.From.After(at) && lasts && f.person(h.Requester, h.Beneficiary) && f.grant(h.Provider, h.Role) {
			out = append(out, h)
		}
	}
	return out
}

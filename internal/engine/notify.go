package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/gitrepo"
	"github.com/gitgrant/gitgrant/internal/render"
)

// notify tells people what they need to know about their requests, once
// each (a notified record remembers it, so a steady state costs no call):
// a reminder before a window ends, with the command to extend it, why a
// merged request grants nothing, and why one cannot be verified when the
// cause will not pass by itself. It returns the records to write.
func (e *Engine) notify(ctx context.Context, p *Pass) ([]gitrepo.Note, error) {
	if e.GitHub == nil {
		return nil, nil
	}
	lead := p.Config.Policy.ReminderLead()
	var notes []gitrepo.Note
	var errs []error
	for _, path := range slices.Sorted(maps.Keys(p.Requests)) {
		r := p.Requests[path]
		pr := r.PullRequest()
		if pr == 0 || r.Provenance.Commit.IsZero() {
			continue
		}
		blob := r.Provenance.Blob.String()
		var notice string
		var body strings.Builder
		switch en := r.Entry; {
		case en.Status == gitgrant.StatusActive && lead > 0:
			var soon []render.AccessChange
			var end time.Time
			for _, g := range en.Grants {
				if g.Window.Contains(p.At) && !g.Window.End.After(p.At.Add(lead)) {
					soon = append(soon, render.AccessChange{Op: gitgrant.OpGrant, Provider: g.Provider, Role: g.Role, Principal: g.Principal, Until: g.Window.End})
					if g.Window.End.After(end) {
						end = g.Window.End
					}
				}
			}
			if len(soon) == 0 {
				continue
			}
			notice = "reminder:" + end.UTC().Format(time.RFC3339)
			render.Reminder(&body, en.Requester, path, soon, p.At, fmt.Sprintf("gitgrant request --extend %s --for %s --open-pr", path, gitgrant.Duration(lead*4)))
		case en.Status == gitgrant.StatusRejected && r.Evidence != nil:
			sum := sha256.Sum256([]byte(strings.Join(en.Reasons, "\n")))
			notice = "refused:" + hex.EncodeToString(sum[:8])
			render.Refused(&body, path, en.Reasons)
		case en.Status == gitgrant.StatusUnverified && lasting(r.VerifyErr):
			msg := r.VerifyErr.Error()
			sum := sha256.Sum256([]byte(msg))
			notice = "unverified:" + hex.EncodeToString(sum[:8])
			render.Unverified(&body, path, msg)
		default:
			continue
		}
		if p.notices[gitrepo.NoticeKey(path, blob, notice)] {
			continue
		}
		if err := e.GitHub.Comment(ctx, pr, body.String()); err != nil {
			errs = append(errs, fmt.Errorf("telling pull request #%d about %s: %w", pr, path, err))
			continue
		}
		notes = append(notes, gitrepo.Note{Commit: r.Provenance.Commit, Record: gitrepo.NoteRecord{Event: gitrepo.EventNotified, Request: path, Blob: blob, Notice: notice}})
	}
	return notes, errors.Join(errs...)
}

// lasting reports whether a verification failed for a reason that the
// next pass will meet again — gitgrant's credentials cannot read a team —
// and is worth telling the pull request. An outage is not: it passes by
// itself, and GitHub is what the comment would go through.
func lasting(err error) bool {
	var denied *gitgrant.TeamAccessError
	return errors.As(err, &denied)
}

// reminderTimes are when reminders fall due after now, so that a
// long-running reconciler wakes up for them.
func reminderTimes(p *Pass) []time.Time {
	if p.Config == nil {
		return nil
	}
	lead := p.Config.Policy.ReminderLead()
	if lead <= 0 {
		return nil
	}
	var out []time.Time
	for _, en := range p.Plan.Entries {
		if en.Status != gitgrant.StatusActive && en.Status != gitgrant.StatusPending {
			continue
		}
		for _, g := range en.Grants {
			if t := g.Window.End.Add(-lead); t.After(p.At) && t.After(g.Window.Start) {
				out = append(out, t)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Before(out[j]) })
	return out
}

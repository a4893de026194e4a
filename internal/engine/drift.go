package engine

import (
	"time"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/gitrepo"
	"github.com/gitgrant/gitgrant/reconciler"
)

// driftRecords records the drift this pass removed (access found in a
// managed role that gitgrant never granted and nothing explains) as one
// drift-removed record on the main commit the pass read, so that the
// removal is in git for `gitgrant report`. It ends no ledger line.
func driftRecords(p *Pass, res reconciler.Result, started time.Time) []gitrepo.Note {
	if p.Snapshot == nil || p.Snapshot.Commit.IsZero() {
		return nil
	}
	var ended []gitgrant.MemberKey
	for _, o := range res.Outcomes {
		a := o.Action
		if o.Err == nil && a.Op == gitgrant.OpRevoke && a.Cause == gitgrant.CauseDrift && a.Holding == nil {
			ended = append(ended, gitgrant.MemberKey{Provider: a.Provider, Role: a.Role, Principal: a.Principal})
		}
	}
	if len(ended) == 0 {
		return nil
	}
	rec := gitrepo.NoteRecord{Event: gitrepo.EventDriftRemoved, Ended: ended, RevokedAt: started, RecordedAt: started}
	return []gitrepo.Note{{Commit: p.Snapshot.Commit, Record: rec}}
}

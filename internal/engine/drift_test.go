package engine_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/gitrepo"
)

// TestDriftRemovalIsRecorded: access granted by hand is revoked as drift
// and the removal is recorded in git (for gitgrant report), without
// touching the ledger.
func TestDriftRemovalIsRecorded(t *testing.T) {
	t.Parallel()
	w := newTrustWorld(t, trustConfig)
	p := roProvider()
	p.Set("ro", map[string]time.Time{"mallory": {}})
	if _, err := w.pass(t, p, t0); err != nil {
		t.Fatalf("apply: %v", err)
	}
	if got := members(t, p); len(got) != 0 {
		t.Fatalf("members %v: the drift was not removed", got)
	}
	repo, err := gitrepo.Open(context.Background(), gitrepo.Options{Source: w.Work})
	if err != nil {
		t.Fatal(err)
	}
	defer repo.Close()
	recs, err := repo.Records(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var got []gitgrant.MemberKey
	for _, n := range recs.All() {
		if n.Record.Event == gitrepo.EventDriftRemoved {
			got = append(got, n.Record.Ended...)
			if !n.Record.RevokedAt.Equal(t0) {
				t.Errorf("removed at %s, want %s", n.Record.RevokedAt, t0)
			}
		}
	}
	if diff := cmp.Diff([]gitgrant.MemberKey{{Provider: "db", Role: "ro", Principal: "mallory"}}, got); diff != "" {
		t.Errorf("drift-removed records (-want +got):\n%s", diff)
	}
	if led := recs.Ledger(); len(led) != 0 {
		t.Errorf("the ledger holds %v after a drift removal", led)
	}
}

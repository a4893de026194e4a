package engine_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gitgrant/gitgrant/internal/engine"
	"github.com/gitgrant/gitgrant/internal/gitrepo"
	"github.com/gitgrant/gitgrant/internal/testing/fakeclock"
)

// Deleting a request file early revokes its access, and the request's
// pull request is told once, although the file (and so the pass's record
// of its pull request) is gone: the ledger's grant record names it.
func TestEarlyRevocationCommentsOnceOnTheRequestsPullRequest(t *testing.T) {
	t.Parallel()
	w := newWorld(t, fmt.Sprintf(config, "  alice: {principals: {db: alice}}"))
	w.merge(7, "alice", "requests/db/alice.yaml", "requester: alice\ngrants: [{provider: db, role: ro}]\nduration: 4h\nreason: Look into INC-1\n", t0.Add(-time.Hour))
	db := roProvider()
	pass := func(at time.Time) {
		t.Helper()
		eng := w.engine(db, at)
		p := mustPlan(t, eng)
		defer p.Close()
		if _, err := eng.Apply(context.Background(), p, engine.ApplyOptions{Cleanup: true, Commit: gitrepo.CommitOptions{Clock: fakeclock.New(at)}}); err != nil {
			t.Fatal(err)
		}
	}
	pass(t0)
	if err := os.Remove(filepath.Join(w.Work, "requests/db/alice.yaml")); err != nil {
		t.Fatal(err)
	}
	w.Commit(t0.Add(10*time.Minute), "alice", "Done with the access", nil)
	pass(t0.Add(15 * time.Minute))
	pass(t0.Add(20 * time.Minute))

	var revoked []string
	for _, c := range w.GH.Comments(w.Repo.Repo) {
		if c.Issue == 7 && strings.Contains(c.Body, "revoked") {
			revoked = append(revoked, c.Body)
		}
	}
	want := "gitgrant: `requests/db/alice.yaml`\n\n- revoked `db/ro` for `alice` at 2026-11-22T12:15:00Z: the request file left main or changed\n"
	if len(revoked) != 1 || revoked[0] != want {
		t.Errorf("revocation comments on #7: %q, want exactly one %q", revoked, want)
	}
	if ms, _ := db.Members(context.Background(), "ro"); len(ms) != 0 {
		t.Errorf("members %v after the file was deleted", ms)
	}
}

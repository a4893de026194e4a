package gitrepo

import (
	"context"
	"testing"
	"time"

	"github.com/gitgrant/gitgrant/internal/testing/fakeclock"

	"github.com/gitgrant/gitgrant/internal/testing/gitserver"
)

// The cleanup branch of cleanup.mode: pull-request is gitgrant's own: a
// later pass with the same removals on the same main leaves it alone; once
// main moves it is rebuilt there (replaced, as nobody else writes it),
// over the smart-HTTP server.
func TestCleanupToBranchAgain(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.landAlice()
	r := w.open(t)
	at := func(d time.Duration) CommitOptions {
		return CommitOptions{Branch: "gitgrant/cleanup", Clock: fakeclock.New(time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC).Add(d))}
	}
	derive := removeAll(removal("requests/orders-db/alice.yaml", "alice"))
	first, err := r.Cleanup(context.Background(), derive, at(0))
	if err != nil {
		t.Fatal(err)
	}
	again, err := r.Cleanup(context.Background(), derive, at(5*time.Minute))
	if err != nil {
		t.Fatalf("second pass: %v", err)
	}
	if again.Commit != first.Commit || len(again.Removed) != 1 {
		t.Errorf("second pass = %+v, want the first commit %s kept", again, first.Commit)
	}
	if got := gitserver.Run(t, w.bare, "rev-parse", "refs/heads/gitgrant/cleanup"); got != first.Commit.String() {
		t.Errorf("branch = %s, want it untouched at %s", got, first.Commit)
	}

	w.SquashPR(2, "bob", "requests/orders-db/bob.yaml", requestYAML("bob", "readonly", "4h"))
	w.Push()
	newMain := w.Git("rev-parse", "HEAD")
	moved, err := r.Cleanup(context.Background(), derive, at(10*time.Minute))
	if err != nil {
		t.Fatalf("after main moved: %v", err)
	}
	if got := gitserver.Run(t, w.bare, "rev-parse", "refs/heads/gitgrant/cleanup"); got != moved.Commit.String() || got == first.Commit.String() {
		t.Errorf("branch = %s, want the rebuilt %s", got, moved.Commit)
	}
	if parent := gitserver.Run(t, w.bare, "rev-parse", "refs/heads/gitgrant/cleanup^"); parent != newMain {
		t.Errorf("rebuilt on %s, want the new main %s", parent, newMain)
	}
	if files := gitserver.Run(t, w.bare, "ls-tree", "-r", "--name-only", "refs/heads/gitgrant/cleanup", "requests/"); files != "requests/orders-db/bob.yaml" {
		t.Errorf("requests on the branch:\n%s", files)
	}
	if got := gitserver.Run(t, w.bare, "rev-parse", "refs/heads/main"); got != newMain {
		t.Errorf("main moved to %s", got)
	}
}

package gitrepo

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/gitgrant/gitgrant/internal/testing/gitserver"
)

const (
	testUser  = "x-access-token"
	testToken = "s3cr3t-t0ken-value"
)

// world is a smart-HTTP server with one bare repository and a developer's
// clone of it (gitserver.Work), driven with the git CLI.
type world struct {
	*gitserver.Work
	t      *testing.T
	server *gitserver.Server
	bare   string
}

func newWorld(t *testing.T) *world {
	t.Helper()
	s, work := gitserver.NewAccess(t, testToken, time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC), map[string]string{
		"gitgrant.yaml":      "version: 1\nproviders:\n  orders-db:\n    type: postgres\n    roles:\n      readonly: {approvals: 1}\n      readwrite: {approvals: 1}\n",
		".github/CODEOWNERS": "/requests/orders-db/ @acme/dba\n",
	})
	return &world{Work: work, t: t, server: s, bare: s.Path("access")}
}

func requestYAML(requester, role, duration string) string {
	return fmt.Sprintf("requester: %s\ngrants:\n  - provider: orders-db\n    role: %s\nduration: %s\nreason: Repair stuck orders after INC-1234\n", requester, role, duration)
}

// landAlice lands alice's request for readonly on orders-db, 4h, by
// squash-merging pull request 1, and pushes it.
func (w *world) landAlice() {
	w.t.Helper()
	w.SquashPR(1, "alice", "requests/orders-db/alice.yaml", requestYAML("alice", "readonly", "4h"))
	w.Push()
}

// landAliceRW lands alice's request for readwrite on orders-db, 4h, by
// merging pull request 4 with a merge commit, pushes it and returns the
// merge commit.
func (w *world) landAliceRW() plumbing.Hash {
	w.t.Helper()
	merge := plumbing.NewHash(w.MergePR(4, "alice", "requests/orders-db/alice.yaml", requestYAML("alice", "readwrite", "4h")))
	w.Push()
	return merge
}

// landAliceAndBob lands alice's and bob's requests for readonly on
// orders-db, 4h, by squash-merging pull requests first and first+1, and
// pushes them.
func (w *world) landAliceAndBob(first int) {
	w.t.Helper()
	w.SquashPR(first, "alice", "requests/orders-db/alice.yaml", requestYAML("alice", "readonly", "4h"))
	w.SquashPR(first+1, "bob", "requests/orders-db/bob.yaml", requestYAML("bob", "readonly", "4h"))
	w.Push()
}

// open opens the server's repository through gitrepo, as a cached clone.
func (w *world) open(t *testing.T) *Repo {
	t.Helper()
	r, err := Open(context.Background(), Options{Source: w.server.URL("access"), Token: testToken, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

package gitrepo

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/gitgrant/gitgrant/internal/testing/gitserver"
)

// TestMainRefFollowsGit: MainRef reads loose refs itself and remembers a
// packed one; whatever git does to the branch (a commit, pack-refs, an
// update of a packed ref, a packed ref replaced), it answers what git
// answers.
func TestMainRefFollowsGit(t *testing.T) {
	t.Parallel()
	gitserver.Git(t)
	dir := filepath.Join(t.TempDir(), "work")
	gitserver.Run(t, "", "init", "-q", "--initial-branch=main", dir)
	commit := func(msg string) {
		gitserver.Run(t, dir, "commit", "-q", "--allow-empty", "-m", msg)
	}
	commit("one")
	r, err := Open(context.Background(), Options{Source: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	check := func(when string) {
		t.Helper()
		for range 2 { // the second answer may come from the cache
			got, err := r.MainRef()
			if err != nil {
				t.Fatalf("%s: %v", when, err)
			}
			if want := gitserver.Run(t, dir, "rev-parse", "main"); got.String() != want {
				t.Errorf("%s: MainRef %s, git says %s", when, got, want)
			}
		}
	}
	check("loose")
	commit("two")
	check("after a commit")
	gitserver.Run(t, dir, "pack-refs", "--all")
	check("packed")
	commit("three")
	check("packed, then a commit (a loose ref again)")
	gitserver.Run(t, dir, "pack-refs", "--all")
	check("packed again")
	gitserver.Run(t, dir, "update-ref", "--no-deref", "refs/heads/main", "HEAD~2")
	gitserver.Run(t, dir, "pack-refs", "--all")
	check("packed ref moved back and packed")
}

package gitrepo

import (
	"context"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/google/go-cmp/cmp"

	"github.com/gitgrant/gitgrant/internal/testing/gitserver"
)

// gitLogChanges is `git log --first-parent --name-status` for requests/,
// oldest first, as "commit status path" lines: the reference the walk is
// checked against.
func gitLogChanges(t *testing.T, dir, rev string) []string {
	t.Helper()
	out := gitserver.Run(t, dir, "log", "--first-parent", "--reverse", "--no-renames", "--name-status", "--format=commit %H", rev, "--", "requests/")
	var lines []string
	commit := ""
	for _, l := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(l, "commit "):
			commit = strings.TrimPrefix(l, "commit ")
		case l != "":
			status, p, _ := strings.Cut(l, "\t")
			lines = append(lines, commit+" "+status+" "+p)
		}
	}
	return lines
}

func walkChanges(t *testing.T, r *Repo) []string {
	t.Helper()
	head, err := r.MainRef()
	if err != nil {
		t.Fatal(err)
	}
	letter := map[ChangeKind]string{Added: "A", Modified: "M", Deleted: "D"}
	var lines []string
	err = r.WalkRequests(context.Background(), head, plumbing.ZeroHash, func(s Step) error {
		for _, c := range s.Changes {
			lines = append(lines, s.Commit.Hash.String()+" "+letter[c.Kind]+" "+c.Path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return lines
}

func TestHistoryAgreesWithGitLog(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	merge := w.MergePR(12, "alice", "requests/orders-db/alice.yaml", requestYAML("alice", "readwrite", "4h"))
	squash := w.SquashPR(13, "bob", "requests/orders-db/bob.yaml", requestYAML("bob", "readonly", "2h"))
	// A rebase merge: two commits replayed onto main, no PR marker.
	w.Write("requests/orders-db/carol.yaml", requestYAML("carol", "readonly", "1h"))
	w.Commit("Request readonly for carol")
	w.Write("requests/orders-db/carol.yaml", requestYAML("carol", "readonly", "2h"))
	rebased := w.Commit("Ask for two hours")
	w.Write("docs.md", "unrelated\n")
	w.Commit("Unrelated change")
	w.Git("revert", "--no-edit", squash) // bob's access revoked by reverting the squash
	revert := w.Git("rev-parse", "HEAD")
	w.Git("mv", "requests/orders-db/alice.yaml", "requests/orders-db/alice-readwrite.yaml")
	renamed := w.Commit("Rename alice's request")
	w.Push()
	r := w.open(t)

	if diff := cmp.Diff(gitLogChanges(t, w.Dir, "main"), walkChanges(t, r)); diff != "" {
		t.Errorf("walk disagrees with git log (-git +gitgrant):\n%s", diff)
	}

	prov, err := r.Provenances(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// Parents are git's, first parent first.
	parents := func(commit string) []plumbing.Hash {
		var hs []plumbing.Hash
		for _, p := range strings.Fields(gitserver.Run(t, w.Dir, "rev-list", "--parents", "-n1", commit))[1:] {
			hs = append(hs, plumbing.NewHash(p))
		}
		return hs
	}
	mergeBase := gitserver.Run(t, w.Dir, "merge-base", merge+"^1", merge+"^2")
	want := map[string]Provenance{
		"requests/orders-db/alice-readwrite.yaml": {Commit: plumbing.NewHash(renamed), Parents: parents(renamed), Kind: Direct, Base: plumbing.NewHash(gitserver.Run(t, w.Dir, "rev-parse", renamed+"^"))},
		"requests/orders-db/carol.yaml":           {Commit: plumbing.NewHash(rebased), Parents: parents(rebased), Kind: Direct, Base: plumbing.NewHash(gitserver.Run(t, w.Dir, "rev-parse", rebased+"^"))},
	}
	got := map[string]Provenance{}
	for p, pv := range prov {
		got[p] = Provenance{Commit: pv.Commit, Parents: pv.Parents, Kind: pv.Kind, PullRequest: pv.PullRequest, Base: pv.Base}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("provenances (-want +got):\n%s", diff)
	}
	if _, ok := prov["requests/orders-db/bob.yaml"]; ok {
		t.Errorf("bob's request survived the revert %s", revert)
	}

	// The commits that added files, judged one by one.
	for _, tt := range []struct {
		commit string
		want   Provenance
	}{
		{merge, Provenance{Commit: plumbing.NewHash(merge), Parents: parents(merge), Kind: MergeCommit, PullRequest: 12, Base: plumbing.NewHash(mergeBase)}},
		{squash, Provenance{Commit: plumbing.NewHash(squash), Parents: parents(squash), Kind: Squash, PullRequest: 13, Base: plumbing.NewHash(gitserver.Run(t, w.Dir, "rev-parse", squash+"^"))}},
	} {
		c, err := r.CommitAt(plumbing.NewHash(tt.commit))
		if err != nil {
			t.Fatal(err)
		}
		pv, err := r.provenanceOf(c)
		if err != nil {
			t.Fatal(err)
		}
		pv.MergedAt, pv.Author = tt.want.MergedAt, tt.want.Author
		if diff := cmp.Diff(tt.want, pv); diff != "" {
			t.Errorf("ProvenanceOf(%s) (-want +got):\n%s", tt.commit[:8], diff)
		}
	}
}

func TestForcePushedHistory(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.SquashPR(1, "alice", "requests/orders-db/a.yaml", requestYAML("alice", "readonly", "1h"))
	w.Push()
	r := w.open(t)
	before, _ := r.MainRef()

	w.Git("reset", "-q", "--hard", "HEAD~1")
	w.SquashPR(2, "bob", "requests/orders-db/b.yaml", requestYAML("bob", "readonly", "1h"))
	w.Git("push", "-q", "--force", "origin", "main")
	if err := r.Fetch(context.Background()); err != nil {
		t.Fatal(err)
	}
	head, _ := r.MainRef()
	err := r.WalkRequests(context.Background(), head, before, func(Step) error { return nil })
	if err != ErrRewritten {
		t.Errorf("walking from a commit force-pushed away: err = %v, want ErrRewritten", err)
	}
	if diff := cmp.Diff(gitLogChanges(t, w.Dir, "main"), walkChanges(t, r)); diff != "" {
		t.Errorf("after force-push (-git +gitgrant):\n%s", diff)
	}
}

func TestPullRequest(t *testing.T) {
	t.Parallel()
	tests := []struct {
		msg  string
		n    int
		kind MergeKind
	}{
		{"Merge pull request #12 from alice/access\n\nbody", 12, MergeCommit},
		{"Grant alice readwrite (#345)", 345, Squash},
		{"Grant alice readwrite (#345)\n\n* commit one", 345, Squash},
		{"Fix (#12) in the middle", 0, Direct},
		{"Merge branch 'main' into feature", 0, Direct},
		{"", 0, Direct},
	}
	for _, tt := range tests {
		n, kind := PullRequest(tt.msg)
		if n != tt.n || kind != tt.kind {
			t.Errorf("PullRequest(%q) = %d, %s; want %d, %s", tt.msg, n, kind, tt.n, tt.kind)
		}
	}
}

// TestLinkedWorkTree reads through a `git worktree add` checkout, where the
// walk runs without a second object-store handle.
func TestLinkedWorkTree(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.MergePR(1, "alice", "requests/orders-db/alice.yaml", requestYAML("alice", "readonly", "1h"))
	w.SquashPR(2, "bob", "requests/orders-db/bob.yaml", requestYAML("bob", "readonly", "1h"))
	linked := t.TempDir() + "/linked"
	w.Git("worktree", "add", "-q", "--detach", linked, "main")
	r, err := Open(context.Background(), Options{Source: linked})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.GitDir() != "" {
		t.Skipf("opened with git dir %s: the sequential path is not exercised", r.GitDir())
	}
	if diff := cmp.Diff(gitLogChanges(t, w.Dir, "main"), walkChanges(t, r)); diff != "" {
		t.Errorf("walk disagrees with git log (-git +gitgrant):\n%s", diff)
	}
}

// TestProvenancesIncremental: a Repo answers a second Provenances from
// what it walked before plus the new commits, and the answer equals a
// fresh walk's, also after a force-push.
func TestProvenancesIncremental(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.MergePR(1, "alice", "requests/orders-db/alice.yaml", requestYAML("alice", "readonly", "1h"))
	w.Push()
	r := w.open(t)
	if _, err := r.Provenances(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, change := range []func(){
		func() {
			w.SquashPR(2, "bob", "requests/orders-db/bob.yaml", requestYAML("bob", "readonly", "1h"))
			w.SquashPR(3, "alice", "requests/orders-db/alice.yaml", requestYAML("alice", "readonly", "2h"))
			w.Push()
		},
		func() {
			w.Git("reset", "-q", "--hard", "HEAD~2")
			w.SquashPR(4, "carol", "requests/orders-db/carol.yaml", requestYAML("carol", "readonly", "1h"))
			w.Git("push", "-q", "--force", "origin", "main")
		},
	} {
		change()
		if err := r.Fetch(context.Background()); err != nil {
			t.Fatal(err)
		}
		got, err := r.Provenances(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		want, err := w.open(t).Provenances(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("incremental provenances differ from a fresh walk (-fresh +incremental):\n%s", diff)
		}
	}
}

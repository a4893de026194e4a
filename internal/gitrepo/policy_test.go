package gitrepo

import (
	"bytes"
	"context"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/google/go-cmp/cmp"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/testing/gitserver"
)

// gitPolicyState is the policy state at rev as git's ls-tree lists it:
// regular files only.
func gitPolicyState(t *testing.T, dir, rev string) map[string]string {
	t.Helper()
	state := emptyPolicyState()
	if rev == "" {
		return state
	}
	out := gitserver.Run(t, dir, append([]string{"ls-tree", "-r", rev, "--"}, gitgrant.PolicyFiles...)...)
	for _, l := range strings.Split(out, "\n") {
		meta, path, ok := strings.Cut(l, "\t")
		f := strings.Fields(meta)
		if ok && len(f) == 3 && f[1] == "blob" && (f[0] == "100644" || f[0] == "100755") {
			state[path] = f[2]
		}
	}
	return state
}

// gitPolicyChanges derives the policy changes of rev's first-parent chain
// from git alone.
func gitPolicyChanges(t *testing.T, dir, rev string) []PolicyChange {
	t.Helper()
	var out []PolicyChange
	for _, c := range strings.Split(gitserver.Run(t, dir, "rev-list", "--first-parent", "--reverse", rev), "\n") {
		fields := strings.Fields(gitserver.Run(t, dir, "rev-list", "--parents", "-n1", c))
		var parents []plumbing.Hash
		first := ""
		for i, p := range fields[1:] {
			if i == 0 {
				first = p
			}
			parents = append(parents, plumbing.NewHash(p))
		}
		state, parent := gitPolicyState(t, dir, c), gitPolicyState(t, dir, first)
		if maps.Equal(state, parent) {
			continue
		}
		at, err := time.Parse(time.RFC3339, gitserver.Run(t, dir, "log", "-1", "--format=%cI", c))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, PolicyChange{Commit: plumbing.NewHash(c), Parents: parents, CommittedAt: at.UTC(), State: state, ParentState: parent})
	}
	return out
}

func policyChanges(t *testing.T, r *Repo) []PolicyChange {
	t.Helper()
	got, err := r.PolicyChanges(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// policyHistory lands every kind of change to a policy file, and changes
// beside them that are none.
func policyHistory(w *world) {
	w.SquashPR(1, "alice", "requests/orders-db/alice.yaml", requestYAML("alice", "readonly", "1h")) // no policy change
	w.Git("checkout", "-q", "-b", "dana/roles", "main")                                             // a merge commit brings a config change
	w.Write("gitgrant.yaml", "version: 1\nproviders:\n  orders-db:\n    type: postgres\n    roles:\n      readonly: {approvals: 2}\n")
	w.Commit("Two approvals for readonly")
	w.Git("checkout", "-q", "main")
	w.Git("merge", "-q", "--no-ff", "-m", "Merge pull request #2 from dana/roles", "dana/roles")
	configChange := w.Git("rev-parse", "HEAD")
	w.Write("docs/guide.md", "how to ask\n") // docs/ changes, docs/CODEOWNERS does not exist
	w.Commit("Document requests")
	w.Write("docs/CODEOWNERS", "* @acme/docs\n")
	w.Commit("Docs owners")
	w.Write(".github/workflows/ci.yml", "on: push\n") // .github/ changes, CODEOWNERS does not
	w.Commit("CI")
	w.Write("CODEOWNERS", "* @acme/root\n")
	w.Commit("Root owners")
	w.Git("revert", "--no-edit", configChange+"^2") // back to the first config
	if err := os.Chmod(filepath.Join(w.Dir, "gitgrant.yaml"), 0o755); err != nil {
		w.t.Fatal(err)
	}
	w.Commit("Executable config: the same blob, no change")
	w.Git("rm", "-q", "CODEOWNERS")
	if err := os.Symlink(".github/CODEOWNERS", filepath.Join(w.Dir, "CODEOWNERS")); err != nil {
		w.t.Fatal(err)
	}
	w.Commit("CODEOWNERS as a symbolic link: no policy")
	w.Git("rm", "-q", ".github/CODEOWNERS")
	w.Commit("No GitHub owners")
}

func TestPolicyChangesAgreeWithGit(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	policyHistory(w)
	w.Push()
	r := w.open(t)
	want := gitPolicyChanges(t, w.Dir, "main")
	if len(want) != 7 {
		t.Fatalf("the oracle found %d policy changes, want 7: the history is not what the test means", len(want))
	}
	if diff := cmp.Diff(want, policyChanges(t, r)); diff != "" {
		t.Errorf("policy changes (-git +gitgrant):\n%s", diff)
	}
	for _, rev := range []string{"main", "main~3", "main~8^2"} { // PolicyState works at any commit, on main or not
		got, err := r.PolicyState(plumbing.NewHash(gitserver.Run(t, w.Dir, "rev-parse", rev)))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(gitPolicyState(t, w.Dir, rev), got); diff != "" {
			t.Errorf("PolicyState(%s) (-git +gitgrant):\n%s", rev, diff)
		}
	}
}

// TestPolicyChangesIncremental: a Repo answers from what it walked before
// plus the new commits, and equals a fresh walk, also after a force-push.
func TestPolicyChangesIncremental(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.Push()
	r := w.open(t)
	policyChanges(t, r)
	for _, change := range []func(){
		func() { policyHistory(w); w.Push() },
		func() {},
		func() {
			w.Git("reset", "-q", "--hard", "HEAD~4")
			w.Write("gitgrant.yaml", "version: 1\n")
			w.Commit("Empty config")
			w.Git("push", "-q", "--force", "origin", "main")
		},
	} {
		change()
		if err := r.Fetch(context.Background()); err != nil {
			t.Fatal(err)
		}
		got := policyChanges(t, r)
		if diff := cmp.Diff(gitPolicyChanges(t, w.Dir, "main"), got); diff != "" {
			t.Errorf("incremental policy changes (-git +gitgrant):\n%s", diff)
		}
		got[0].State[gitgrant.ConfigPath] = "changed by the caller"
		if again := policyChanges(t, r); again[0].State[gitgrant.ConfigPath] == "changed by the caller" {
			t.Errorf("a caller's change reached the Repo's remembered answer")
		}
	}
}

func TestReadBlob(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	big := bytes.Repeat([]byte("# padding\n"), gitgrant.MaxFileSize/10+10)
	w.Write("gitgrant.yaml", string(big))
	w.Commit("A config over the size limit")
	w.Push()
	r := w.open(t)
	for _, tt := range []struct {
		rev  string
		want []byte
	}{
		{"main~1", []byte("version: 1\nproviders:\n  orders-db:\n    type: postgres\n    roles:\n      readonly: {approvals: 1}\n      readwrite: {approvals: 1}\n")},
		{"main", big[:gitgrant.MaxFileSize+1]}, // enough for schema.LoadConfig to say it is too large
	} {
		state, err := r.PolicyState(plumbing.NewHash(gitserver.Run(t, w.Dir, "rev-parse", tt.rev)))
		if err != nil {
			t.Fatal(err)
		}
		got, err := r.ReadBlob(plumbing.NewHash(state[gitgrant.ConfigPath]))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(tt.want, got) {
			t.Errorf("ReadBlob(gitgrant.yaml at %s) = %d bytes, want %d", tt.rev, len(got), len(tt.want))
		}
	}
	if _, err := r.ReadBlob(plumbing.NewHash("0123456789012345678901234567890123456789")); err == nil {
		t.Errorf("ReadBlob of a missing blob succeeded")
	}
}

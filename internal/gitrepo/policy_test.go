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
)

// gitPolicyState is the policy state at rev as git's ls-tree lists it:
// regular files only.
func gitPolicyState(t *testing.T, dir, rev string) map[string]string {
	t.Helper()
	state := emptyPolicyState()
	if rev == "" {
		return state
	}
	out := runIn(t, dir, append([]string{"ls-tree", "-r", rev, "--"}, gitgrant.PolicyFiles...)...)
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
	for _, c := range strings.Split(runIn(t, dir, "rev-list", "--first-parent", "--reverse", rev), "\n") {
		fields := strings.Fields(runIn(t, dir, "rev-list", "--parents", "-n1", c))
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
		at, err := time.Parse(time.RFC3339, runIn(t, dir, "log", "-1", "--format=%cI", c))
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
	w.squashPR(1, "requests/orders-db/alice.yaml", requestYAML("alice", "readonly", "1h")) // no policy change
	w.git("checkout", "-q", "-b", "dana/roles", "main")                                    // a merge commit brings a config change
	w.write("gitgrant.yaml", "version: 1\nproviders:\n  orders-db:\n    type: postgres\n    roles:\n      readonly: {approvals: 2}\n")
	w.commit("Two approvals for readonly")
	w.git("checkout", "-q", "main")
	w.git("merge", "-q", "--no-ff", "-m", "Merge pull request #2 from dana/roles", "dana/roles")
	configChange := w.git("rev-parse", "HEAD")
	w.write("docs/guide.md", "how to ask\n") // docs/ changes, docs/CODEOWNERS does not exist
	w.commit("Document requests")
	w.write("docs/CODEOWNERS", "* @acme/docs\n")
	w.commit("Docs owners")
	w.write(".github/workflows/ci.yml", "on: push\n") // .github/ changes, CODEOWNERS does not
	w.commit("CI")
	w.write("CODEOWNERS", "* @acme/root\n")
	w.commit("Root owners")
	w.git("revert", "--no-edit", configChange+"^2") // back to the first config
	if err := os.Chmod(filepath.Join(w.work, "gitgrant.yaml"), 0o755); err != nil {
		w.t.Fatal(err)
	}
	w.commit("Executable config: the same blob, no change")
	w.git("rm", "-q", "CODEOWNERS")
	if err := os.Symlink(".github/CODEOWNERS", filepath.Join(w.work, "CODEOWNERS")); err != nil {
		w.t.Fatal(err)
	}
	w.commit("CODEOWNERS as a symbolic link: no policy")
	w.git("rm", "-q", ".github/CODEOWNERS")
	w.commit("No GitHub owners")
}

func TestPolicyChangesAgreeWithGit(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	policyHistory(w)
	w.push()
	r := w.open(t)
	want := gitPolicyChanges(t, w.work, "main")
	if len(want) != 7 {
		t.Fatalf("the oracle found %d policy changes, want 7: the history is not what the test means", len(want))
	}
	if diff := cmp.Diff(want, policyChanges(t, r)); diff != "" {
		t.Errorf("policy changes (-git +gitgrant):\n%s", diff)
	}
	for _, rev := range []string{"main", "main~3", "main~8^2"} { // PolicyState works at any commit, on main or not
		got, err := r.PolicyState(plumbing.NewHash(runIn(t, w.work, "rev-parse", rev)))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(gitPolicyState(t, w.work, rev), got); diff != "" {
			t.Errorf("PolicyState(%s) (-git +gitgrant):\n%s", rev, diff)
		}
	}
}

// TestPolicyChangesIncremental: a Repo answers from what it walked before
// plus the new commits, and equals a fresh walk, also after a force-push.
func TestPolicyChangesIncremental(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.push()
	r := w.open(t)
	policyChanges(t, r)
	for _, change := range []func(){
		func() { policyHistory(w); w.push() },
		func() {},
		func() {
			w.git("reset", "-q", "--hard", "HEAD~4")
			w.write("gitgrant.yaml", "version: 1\n")
			w.commit("Empty config")
			w.git("push", "-q", "--force", "origin", "main")
		},
	} {
		change()
		if err := r.Fetch(context.Background()); err != nil {
			t.Fatal(err)
		}
		got := policyChanges(t, r)
		if diff := cmp.Diff(gitPolicyChanges(t, w.work, "main"), got); diff != "" {
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
	w.write("gitgrant.yaml", string(big))
	w.commit("A config over the size limit")
	w.push()
	r := w.open(t)
	for _, tt := range []struct {
		rev  string
		want []byte
	}{
		{"main~1", []byte("version: 1\nproviders:\n  orders-db:\n    type: postgres\n    roles:\n      readonly: {approvals: 1}\n      readwrite: {approvals: 1}\n")},
		{"main", big[:gitgrant.MaxFileSize+1]}, // enough for schema.LoadConfig to say it is too large
	} {
		state, err := r.PolicyState(plumbing.NewHash(runIn(t, w.work, "rev-parse", tt.rev)))
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

package gitrepo

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gitgrant/gitgrant/schema"
)

// TestReadRevisionMatchesWorkTree reads a revision without a work tree and
// checks that schema sees exactly what it sees in a checkout of it.
func TestReadRevisionMatchesWorkTree(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.Write("requests/orders-db/alice-readwrite.yaml", requestYAML("alice", "readwrite", "4h"))
	w.Write("requests/orders-db/huge.yaml", "reason: "+strings.Repeat("x", 70<<10)+"\n")
	w.Write("requests/orders-db/nested/deep.yml", requestYAML("bob", "readonly", "1h"))
	if err := os.Symlink("../../gitgrant.yaml", filepath.Join(w.Dir, "requests/orders-db/link.yaml")); err != nil {
		t.Fatal(err)
	}
	w.Commit("Add requests")
	w.Push()
	r := w.open(t)

	snap, err := r.ReadRevision("")
	if err != nil {
		t.Fatal(err)
	}
	config, requests, err := schema.ReadTree(w.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(config, snap.Config); diff != "" {
		t.Errorf("config (-work tree +revision):\n%s", diff)
	}
	if diff := cmp.Diff(requests, snap.Requests); diff != "" {
		t.Errorf("requests (-work tree +revision):\n%s", diff)
	}
	if snap.CodeOwners == nil || snap.CodeOwners.Path != ".github/CODEOWNERS" {
		t.Errorf("CODEOWNERS = %+v, want .github/CODEOWNERS", snap.CodeOwners)
	}
	wantReport := schema.Validate(config, requests, schema.Options{Now: w.Clock})
	gotReport := schema.Validate(snap.Config, snap.Requests, schema.Options{Now: w.Clock})
	if diff := cmp.Diff(wantReport.Diagnostics(), gotReport.Diagnostics()); diff != "" {
		t.Errorf("diagnostics (-work tree +revision):\n%s", diff)
	}
}

// TestReadRevisionKinds checks git modes: 120000 is a link and 160000 a
// submodule, neither read as YAML; an older revision reads as it was.
func TestReadRevisionKinds(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	first := w.SquashPR(1, "alice", "requests/orders-db/a.yaml", requestYAML("alice", "readonly", "1h"))
	w.Git("update-index", "--add", "--cacheinfo", "160000,"+first+",requests/orders-db/sub")
	w.Git("commit", "-q", "-m", "Add a submodule")
	if err := os.Symlink("a.yaml", filepath.Join(w.Dir, "requests/orders-db/b.yaml")); err != nil {
		t.Fatal(err)
	}
	w.Git("add", "requests/orders-db/b.yaml") // add -A would drop the gitlink, which has no directory
	w.Git("commit", "-q", "-m", "Add a link")
	w.Push()
	r := w.open(t)

	tests := []struct {
		rev  string
		want map[string]schema.FileKind
	}{
		{"", map[string]schema.FileKind{"requests/orders-db/a.yaml": schema.Regular, "requests/orders-db/b.yaml": schema.Symlink, "requests/orders-db/sub": schema.Irregular}},
		{first, map[string]schema.FileKind{"requests/orders-db/a.yaml": schema.Regular}},
		{"origin/main~2", map[string]schema.FileKind{"requests/orders-db/a.yaml": schema.Regular}},
	}
	for _, tt := range tests {
		snap, err := r.ReadRevision(tt.rev)
		if err != nil {
			t.Fatalf("ReadRevision(%q): %v", tt.rev, err)
		}
		got := map[string]schema.FileKind{}
		for _, f := range snap.Requests {
			got[f.Path] = f.Kind
			if f.Kind != schema.Regular && f.Data != nil {
				t.Errorf("%s: a %v was read", f.Path, f.Kind)
			}
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("ReadRevision(%q) kinds (-want +got):\n%s", tt.rev, diff)
		}
	}
	if _, err := r.ReadRevision("no-such-branch"); err == nil {
		t.Error("ReadRevision(no-such-branch) succeeded")
	}
}

func TestOpenLocalWorkTree(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.SquashPR(1, "alice", "requests/orders-db/a.yaml", requestYAML("alice", "readonly", "1h"))
	for _, dir := range []string{w.Dir, filepath.Join(w.Dir, "requests"), filepath.Join(w.Dir, ".git")} {
		r, err := Open(context.Background(), Options{Source: dir})
		if err != nil {
			t.Fatalf("Open(%s): %v", dir, err)
		}
		snap, err := r.ReadRevision("")
		r.Close()
		if err != nil || len(snap.Requests) != 1 {
			t.Errorf("Open(%s): ReadRevision = %v, %v; want one request", dir, snap, err)
		}
	}
}

// TestOpenRemoteCache clones a file:// remote into the cache, then fetches
// into the same cache on the next Open.
func TestOpenRemoteCache(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.SquashPR(1, "alice", "requests/orders-db/a.yaml", requestYAML("alice", "readonly", "1h"))
	w.Push()
	cache := t.TempDir()
	count := func() int {
		t.Helper()
		r, err := Open(context.Background(), Options{Source: "file://" + w.bare, CacheDir: cache})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		snap, err := r.ReadRevision("")
		if err != nil {
			t.Fatal(err)
		}
		return len(snap.Requests)
	}
	if n := count(); n != 1 {
		t.Fatalf("first open: %d requests, want 1", n)
	}
	w.SquashPR(2, "bob", "requests/orders-db/b.yaml", requestYAML("bob", "readonly", "1h"))
	w.Push()
	if n := count(); n != 2 {
		t.Errorf("second open: %d requests, want 2 (fetched)", n)
	}
	entries, _ := os.ReadDir(cache)
	if len(entries) != 1 {
		t.Errorf("cache holds %d clones, want 1", len(entries))
	}
}

// TestTokenNeverStored opens a remote given with a token in its URL: the
// token authenticates, but the cache's config and the printable source
// never hold it.
func TestTokenNeverStored(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	cache := t.TempDir()
	withToken := strings.Replace(w.server.URL("access"), "://", "://"+testUser+":"+testToken+"@", 1)
	r, err := Open(context.Background(), Options{Source: withToken, CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if strings.Contains(r.Source(), testToken) {
		t.Errorf("Source() = %q reveals the token", r.Source())
	}
	config, err := os.ReadFile(filepath.Join(r.Dir(), "config"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(config), testToken) {
		t.Errorf("the cache's git config holds the token:\n%s", config)
	}
}

package gitrepo

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// TestBareRepoSeesPushes: the bare repository and its smart-HTTP server
// keep their storage open between uses, yet each sees what the other
// wrote: a pushed commit (in a new pack) is read by BareRepo, a web edit
// (loose objects and a ref) is advertised, so a push from behind it is
// refused, and it is served to the next clone.
func TestBareRepoSeesPushes(t *testing.T) {
	t.Parallel()
	when := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	dir := t.TempDir()
	b, err := InitBare(dir, "main")
	if err != nil {
		t.Fatal(err)
	}
	first, _, err := b.Commit(nil, nil, map[string]string{"a.txt": "one\n"}, "admin", "admin", "first", when)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.SetBranch("main", first); err != nil {
		t.Fatal(err)
	}
	srv := &SmartHTTP{Dir: dir}
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		srv.Serve(w, r, strings.TrimPrefix(r.URL.Path, "/repo.git/"))
	}))
	t.Cleanup(web.Close)
	url := web.URL + "/repo.git"

	// Both sides open their storage now, before the push.
	if sha, files, err := b.Branch("main"); err != nil || sha != first || len(files) != 1 {
		t.Fatalf("before the push: %s %v %v", sha, files, err)
	}
	work := t.TempDir()
	clone, err := git.PlainClone(work, false, &git.CloneOptions{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	// Two pushes: after the first, BareRepo reads from its pack (and so
	// has listed the packs); the second adds a pack it must find too.
	var pushed string
	var files map[string]string
	for i, name := range []string{"b.txt", "c.txt"} {
		pushed = commitFile(t, clone, work, name, name+"\n", when.Add(time.Duration(i+1)*time.Minute))
		if err := clone.Push(&git.PushOptions{}); err != nil {
			t.Fatalf("push %d: %v", i+1, err)
		}
		if entries, _ := os.ReadDir(filepath.Join(dir, "objects", "pack")); len(entries) < 2*(i+1) {
			t.Fatalf("push %d wrote no pack (%d files): the test no longer covers a new pack", i+1, len(entries))
		}
		var sha string
		sha, files, err = b.Branch("main")
		if err != nil || sha != pushed || files[name] != name+"\n" || files["a.txt"] != "one\n" {
			t.Fatalf("BareRepo after push %d: %s %v %v; want %s with a.txt and %s", i+1, sha, files, err, pushed, name)
		}
	}

	// A web edit on top, then a push from the clone, which has not fetched it.
	edit, _, err := b.Commit([]string{pushed}, files, map[string]string{"web.txt": "three\n"}, "alice", "web-flow", "edit", when.Add(3*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.SetBranch("main", edit); err != nil {
		t.Fatal(err)
	}
	commitFile(t, clone, work, "d.txt", "four\n", when.Add(4*time.Minute))
	// The server advertises the edit, so the push is refused as not a
	// fast-forward, and main stays at the edit.
	if err := clone.Push(&git.PushOptions{}); err == nil {
		t.Fatal("push from behind a web edit: accepted, want it refused")
	}
	again, err := git.PlainClone(t.TempDir(), false, &git.CloneOptions{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	head, err := again.Head()
	if err != nil || head.Hash().String() != edit {
		t.Fatalf("a new clone's head: %v %v, want the web edit %s", head, err, edit)
	}
}

// commitFile writes name in the work tree of r and commits it.
func commitFile(t *testing.T, r *git.Repository, work, name, content string, when time.Time) string {
	t.Helper()
	if err := os.WriteFile(filepath.Join(work, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	wt, err := r.Worktree()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wt.Add(name); err != nil {
		t.Fatal(err)
	}
	sig := &object.Signature{Name: "bob", Email: "bob@example.com", When: when}
	h, err := wt.Commit("add "+name, &git.CommitOptions{Author: sig, Committer: sig})
	if err != nil {
		t.Fatal(err)
	}
	return h.String()
}

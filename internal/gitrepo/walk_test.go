package gitrepo

import (
	"bytes"
	"context"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/google/go-cmp/cmp"

	"github.com/gitgrant/gitgrant/internal/testing/gitserver"
)

// TestWalkFollowsGitOrder checks the walk on the names where git's tree
// order and plain name order part: a folder sorts as if its name ended in
// "/", so "db.yaml" < "db/" < "db0", and a file and a folder may swap
// places under one name.
func TestWalkFollowsGitOrder(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.WriteFiles(map[string]string{
		"requests/db/a.yaml":   requestYAML("alice", "readonly", "1h"),
		"requests/db.yaml":     requestYAML("bob", "readonly", "1h"),
		"requests/db-x/b.yaml": requestYAML("bob", "readonly", "1h"),
		"requests/db0":         "x\n",
		"requests/swap":        "a file first\n",
		"requests/dir/c.yaml":  requestYAML("carol", "readonly", "1h"),
	})
	w.Commit("Lay out")
	w.Write("requests/db/a.yaml", requestYAML("alice", "readonly", "2h"))
	w.Write("requests/db-x.yaml", requestYAML("dave", "readonly", "1h"))
	w.Git("rm", "-q", "requests/db.yaml", "requests/swap", "requests/dir/c.yaml")
	w.WriteFiles(map[string]string{
		"requests/swap/d.yaml": requestYAML("dave", "readonly", "1h"), // the file becomes a folder
		"requests/dir":         "the folder becomes a file\n",
	})
	w.Commit("Move things around")
	w.Git("rm", "-q", "-r", "requests/db")
	w.Commit("Remove a folder")
	r, err := Open(context.Background(), Options{Source: w.Dir})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if diff := cmp.Diff(gitLogChanges(t, w.Dir, "main"), walkChanges(t, r)); diff != "" {
		t.Errorf("walk disagrees with git log (-git +gitgrant):\n%s", diff)
	}
}

// TestWalkMalformedTree checks a requests/ tree git would not write,
// pushed by hand (hash-object --literally): entries out of order and a
// name twice. The walk reads it as go-git does, sorted by name with the
// last of a name counting, instead of missing changes.
func TestWalkMalformedTree(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.Write("requests/orders-db/a.yaml", requestYAML("alice", "readonly", "1h"))
	first := w.Commit("Request for alice")
	blob := func(content string) string {
		return hashObject(t, w.Dir, "blob", []byte(content))
	}
	a2, b, c1, c2 := blob(requestYAML("alice", "readonly", "2h")), blob(requestYAML("bob", "readonly", "1h")),
		blob(requestYAML("carol", "readonly", "1h")), blob(requestYAML("carol", "readwrite", "1h"))
	var folder bytes.Buffer
	for _, e := range []struct{ name, blob string }{{"c.yaml", c1}, {"b.yaml", b}, {"a.yaml", a2}, {"c.yaml", c2}} {
		raw, _ := hex.DecodeString(e.blob)
		folder.WriteString("100644 " + e.name + "\x00")
		folder.Write(raw)
	}
	folderTree := hashObject(t, w.Dir, "tree", folder.Bytes())
	// In git's order, but a file and a folder share the name "x" (git
	// writes "x-a" between them): the folder counts, as the last of a name.
	inner := mkTree(t, w.Dir, "100644 blob "+c1+"\tinner.yaml\n")
	var other bytes.Buffer
	for _, e := range []struct{ mode, name, hash string }{{"100644", "x", b}, {"100644", "x-a", b}, {"40000", "x", inner}} {
		raw, _ := hex.DecodeString(e.hash)
		other.WriteString(e.mode + " " + e.name + "\x00")
		other.Write(raw)
	}
	otherTree := hashObject(t, w.Dir, "tree", other.Bytes())
	requests := mkTree(t, w.Dir, "040000 tree "+folderTree+"\torders-db\n040000 tree "+otherTree+"\tother\n")
	root := strings.Fields(gitserver.Run(t, w.Dir, "cat-file", "-p", first+"^{tree}"))
	var rootEntries []string
	for i := 0; i+3 < len(root); i += 4 {
		if root[i+3] != "requests" {
			rootEntries = append(rootEntries, root[i]+" "+root[i+1]+" "+root[i+2]+"\t"+root[i+3])
		}
	}
	rootEntries = append(rootEntries, "040000 tree "+requests+"\trequests")
	tree := mkTree(t, w.Dir, strings.Join(rootEntries, "\n")+"\n")
	commit := gitserver.Run(t, w.Dir, "commit-tree", tree, "-p", first, "-m", "Hand-made tree")
	gitserver.Run(t, w.Dir, "update-ref", "refs/heads/main", commit)

	r, err := Open(context.Background(), Options{Source: w.Dir})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	p := "requests/orders-db/"
	want := []string{
		first + " A " + p + "a.yaml",
		commit + " M " + p + "a.yaml",
		commit + " A " + p + "b.yaml",
		commit + " A " + p + "c.yaml",
		commit + " A requests/other/x-a",
		commit + " A requests/other/x/inner.yaml",
	}
	if diff := cmp.Diff(want, walkChanges(t, r)); diff != "" {
		t.Errorf("walk of a malformed tree (-want +got):\n%s", diff)
	}
	head, err := r.MainRef()
	if err != nil {
		t.Fatal(err)
	}
	err = r.WalkRequests(context.Background(), head, plumbing.NewHash(first), func(s Step) error {
		for _, ch := range s.Changes {
			if ch.Path == p+"c.yaml" && ch.To.String() != c2 {
				t.Errorf("c.yaml is blob %s, want the last entry's %s", ch.To, c2)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// hashObject writes an object as given, unchecked.
func hashObject(t *testing.T, dir, typ string, content []byte) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "object")
	if err := os.WriteFile(f, content, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("git", "-C", dir, "hash-object", "--literally", "-w", "-t", typ, f).Output()
	if err != nil {
		t.Fatalf("git hash-object: %v", err)
	}
	return strings.TrimSpace(string(out))
}

func mkTree(t *testing.T, dir, entries string) string {
	t.Helper()
	cmd := exec.Command("git", "-C", dir, "mktree")
	cmd.Stdin = strings.NewReader(entries)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git mktree: %v", err)
	}
	return strings.TrimSpace(string(out))
}

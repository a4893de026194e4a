package gitrepo

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/google/go-cmp/cmp"

	"github.com/gitgrant/gitgrant/internal/testing/gitserver"
	"github.com/gitgrant/gitgrant/internal/testing/historygen"
	"github.com/gitgrant/gitgrant/schema"
)

// packedHistory writes, for git fast-import, commits first-parent commits
// from mark start on (the first one a root when start is 1) that do to
// requests/ what people do: add, change and delete files in several
// folders, make one executable, replace one with a symbolic link, turn a
// file into a folder and back, and touch files elsewhere.
func packedHistory(w io.Writer, start, commits int) {
	bw := bufio.NewWriter(w)
	defer bw.Flush()
	for i := start; i < start+commits; i++ {
		fmt.Fprintf(bw, "commit refs/heads/main\nmark :%d\nauthor User%d <u%d@example.com> %d +0100\ncommitter GitHub <noreply@github.com> %d +0000\ndata <<EOM\nChange %d (#%d)\n\nBody of %d\nEOM\n",
			i, i%7, i%7, 1700000000+i*60, 1700000000+i*60, i, i, i)
		switch {
		case i > start:
			fmt.Fprintf(bw, "from :%d\n", i-1)
		case i > 1:
			fmt.Fprintf(bw, "from refs/heads/main^0\n")
		}
		dir := fmt.Sprintf("requests/db%d", i%5)
		file := func(p, mode string, n int) {
			content := fmt.Sprintf("requester: user%d\ngrants:\n  - provider: db\n    role: readonly\nduration: %dh\nreason: Investigate ticket INC-%d, which needs a long reason\n", n, n%9+1, n)
			fmt.Fprintf(bw, "M %s inline %s\ndata %d\n%s\n", mode, p, len(content), content)
		}
		switch {
		case i == 1:
			fmt.Fprintf(bw, "M 100644 inline gitgrant.yaml\ndata 11\nversion: 1\n\n")
		case i%11 == 0:
			fmt.Fprintf(bw, "D %s/u%d.yaml\n", dir, i-20)
		case i%13 == 0:
			file(fmt.Sprintf("%s/u%d.yaml", dir, i-10), "100755", i)
		case i%17 == 0:
			fmt.Fprintf(bw, "M 120000 inline %s/u%d.yaml\ndata 9\n/dev/null\n", dir, i-5)
		case i%19 == 0:
			fmt.Fprintf(bw, "D requests/swap.yaml\n")
			file("requests/swap.yaml/inner.yaml", "100644", i)
		case i%23 == 0:
			fmt.Fprintf(bw, "D requests/swap.yaml\n")
			file("requests/swap.yaml", "100644", i)
		case i%3 == 0:
			fmt.Fprintf(bw, "M 100644 inline notes.md\ndata 4\n%04d\n", i%10000)
		case i%4 == 0:
			file(fmt.Sprintf("%s/u%d.yaml", dir, i-8), "100644", i+1)
		default:
			file(fmt.Sprintf("%s/u%d.yaml", dir, i), "100644", i)
		}
		bw.WriteString("\n")
	}
}

// TestWalkFromPacksAgreesWithGitLog: the walk reads objects from the
// packs itself. On a history held in two packs, one with deltas that name
// their base by hash (REF_DELTA) and one by offset (OFS_DELTA), deep delta
// chains, and loose objects on top, it finds what git log finds, and the
// commits and files it returns are go-git's.
func TestWalkFromPacksAgreesWithGitLog(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "packed.git")
	importCommits := func(start, n int) {
		t.Helper()
		historygen.FastImport(t, dir, func(w io.Writer) error { packedHistory(w, start, n); return nil })
	}
	historygen.Init(t, dir)
	importCommits(1, 400)
	if _, err := gitserver.RunEnv(dir, nil, "-c", "repack.useDeltaBaseOffset=false", "repack", "-a", "-d", "-q", "--depth=60", "--window=50"); err != nil {
		t.Fatal(err)
	}
	importCommits(401, 300)
	if _, err := gitserver.RunEnv(dir, nil, "repack", "-d", "-q", "--depth=60", "--window=50"); err != nil { // a second pack, offset deltas
		t.Fatal(err)
	}
	before, _ := filepath.Glob(filepath.Join(dir, "objects", "pack", "*.pack"))
	importCommits(701, 20)
	// fast-import writes a pack of its own: unpack it, so that the last
	// commits are loose objects.
	after, _ := filepath.Glob(filepath.Join(dir, "objects", "pack", "*.pack"))
	for _, p := range after {
		if slices.Contains(before, p) {
			continue
		}
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		os.Remove(p)
		os.Remove(strings.TrimSuffix(p, ".pack") + ".idx")
		cmd := exec.Command("git", "unpack-objects", "-q")
		cmd.Dir, cmd.Env, cmd.Stdin = dir, gitserver.IsolatedEnv(), bytes.NewReader(data)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("unpack-objects: %v %s", err, out)
		}
	}
	if packs, _ := filepath.Glob(filepath.Join(dir, "objects", "pack", "*.pack")); len(packs) != 2 {
		t.Fatalf("want 2 packs, have %d", len(packs))
	}
	r, err := Open(context.Background(), Options{Source: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	want := gitLogChanges(t, dir, "main")
	for i, l := range want { // a type change (a file becoming a link) is a modification
		want[i] = strings.Replace(l, " T ", " M ", 1)
	}
	if diff := cmp.Diff(want, walkChanges(t, r)); diff != "" {
		t.Errorf("walk disagrees with git log (-git +gitgrant):\n%s", diff)
	}

	head, err := r.MainRef()
	if err != nil {
		t.Fatal(err)
	}
	steps := 0
	err = r.WalkRequests(context.Background(), head, plumbing.ZeroHash, func(s Step) error {
		steps++
		c, err := object.GetCommit(r.git.Storer, s.Commit.Hash)
		if err != nil {
			return err
		}
		if diff := cmp.Diff(commitOf(c), s.Commit); diff != "" {
			t.Errorf("commit %s (-go-git +walk):\n%s", s.Commit.Hash, diff)
		}
		for _, ch := range s.Changes {
			if ch.Kind == Deleted {
				continue
			}
			f, err := r.FileAt(ch.Path, ch.To, ch.ToMode)
			if err != nil {
				return err
			}
			if want := gitserver.Run(t, dir, "cat-file", "blob", ch.To.String()); f.Kind == schema.Regular && string(f.Data) != want+"\n" && string(f.Data) != want {
				t.Errorf("%s at %s: %q, git has %q", ch.Path, ch.To, f.Data, want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if steps < 300 {
		t.Errorf("%d steps, want most of the 720 commits", steps)
	}
}

// FuzzApplyDelta holds applyDelta to go-git's PatchDelta: deltas go-git
// makes (DiffDelta) rebuild their target, and on any input the two agree
// on the result wherever both accept it.
func FuzzApplyDelta(f *testing.F) {
	f.Add([]byte("100644 a.yaml\x00"+strings.Repeat("x", 40)), []byte("100644 b.yaml\x00"+strings.Repeat("x", 30)), []byte{})
	f.Add([]byte(strings.Repeat("tree entry ", 300)), []byte(strings.Repeat("tree entry ", 290)+"new"), []byte{0x05, 0x05, 0x91, 0x00, 0x05})
	f.Add([]byte("abc"), []byte(""), []byte{0x03, 0x03, 0x80})
	f.Fuzz(func(t *testing.T, base, target, raw []byte) {
		if len(base) > 0 {
			delta := packfile.DiffDelta(base, target)
			got, err := applyDelta(base, delta)
			if err != nil || !bytes.Equal(got, target) {
				t.Fatalf("applyDelta(DiffDelta) = %q, %v; want the target %q", got, err, target)
			}
		}
		got, err := applyDelta(base, raw)
		want, wantErr := packfile.PatchDelta(base, raw)
		if err == nil && wantErr != nil && len(base) > 0 {
			t.Fatalf("applyDelta accepted %x on %q (%q); go-git: %v", raw, base, got, wantErr)
		}
		if err == nil && wantErr == nil && !bytes.Equal(got, want) {
			t.Fatalf("applyDelta = %q, go-git %q", got, want)
		}
	})
}

// FuzzParseCommit holds parseCanonicalCommit to go-git: wherever it takes
// a commit, it reads what go-git reads.
func FuzzParseCommit(f *testing.F) {
	tree, parent := strings.Repeat("a", 40), strings.Repeat("b", 40)
	f.Add([]byte("tree " + tree + "\nparent " + parent + "\nauthor Alice <alice@example.com> 1795000000 +0100\ncommitter GitHub <noreply@github.com> 1795000060 -0000\n\nMerge pull request #12 from alice/x\n\nbody"))
	f.Add([]byte("tree " + tree + "\nauthor A <a> 1 +0000\ncommitter C <c> 2 +0000\ngpgsig -----BEGIN PGP SIGNATURE-----\n \n abc\n -----END PGP SIGNATURE-----\nencoding ISO-8859-1\n\nmsg\n"))
	f.Add([]byte("tree " + tree + "\nparent " + parent + "\nparent " + parent + "\nauthor <> 0 +0000\ncommitter x y <z@w> notatime\n\n"))
	f.Add([]byte("tree " + tree + "\nauthor A <a> 1 +0000\ncommitter C <c> 2 +0000\nauthor B <b> 3 +0000\n\nx"))
	f.Fuzz(func(t *testing.T, data []byte) {
		h := plumbing.NewHash(strings.Repeat("c", 40))
		got, ok := parseCanonicalCommit(h, data)
		if !ok {
			return
		}
		c, err := decodeCommit(h, data)
		if err != nil {
			t.Fatalf("parseCanonicalCommit took %q, go-git refuses it: %v", data, err)
		}
		want := commitOf(c)
		if !want.AuthorTime.Equal(got.AuthorTime) || !want.CommitTime.Equal(got.CommitTime) ||
			want.AuthorTime.Location().String() != got.AuthorTime.Location().String() {
			t.Fatalf("times differ for %q: got %v %v, go-git %v %v", data, got.AuthorTime, got.CommitTime, want.AuthorTime, want.CommitTime)
		}
		got.AuthorTime, got.CommitTime, want.AuthorTime, want.CommitTime = time.Time{}, time.Time{}, time.Time{}, time.Time{}
		if len(want.Parents) == 0 {
			want.Parents = nil
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("parseCanonicalCommit differs from go-git for %q (-go-git +ours):\n%s", data, diff)
		}
	})
}

// TestFan16FindsWhatTheIndexFinds: in a pack's index, the two-byte lookup
// of large packs finds every object the index's own one-byte fan-out
// finds, at the same offset, and no hash the pack does not hold.
func TestFan16FindsWhatTheIndexFinds(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "packed.git")
	historygen.Init(t, dir)
	historygen.FastImport(t, dir, func(w io.Writer) error { packedHistory(w, 1, 300); return nil })
	if _, err := gitserver.RunEnv(dir, nil, "repack", "-a", "-d", "-q"); err != nil {
		t.Fatal(err)
	}
	idxs, _ := filepath.Glob(filepath.Join(dir, "objects", "pack", "*.idx"))
	if len(idxs) != 1 {
		t.Fatalf("want one pack, have %d", len(idxs))
	}
	p, err := mapPack(idxs[0])
	if err != nil {
		t.Fatal(err)
	}
	defer func() { unmapFile(p.data); unmapFile(p.idx) }()
	if p.n < 600 {
		t.Fatalf("only %d objects: too few to test a lookup", p.n)
	}
	names := p.idx[idxHeader : idxHeader+20*p.n]
	for i := range p.n {
		var h plumbing.Hash
		copy(h[:], names[20*i:])
		want, ok1 := p.search(h, false)
		got, ok2 := p.search(h, true)
		if !ok1 || !ok2 || got != want {
			t.Fatalf("object %s: fan16 %d %v, index %d %v", h, got, ok2, want, ok1)
		}
		h[19] ^= 0xff // a neighbour the pack almost surely lacks
		_, in1 := p.search(h, false)
		_, in2 := p.search(h, true)
		if in1 != in2 {
			t.Fatalf("hash %s: fan16 says %v, the index %v", h, in2, in1)
		}
	}
	for _, h := range []plumbing.Hash{{}, {0xff, 0xff, 0xff}, {0x00, 0xff}} { // the ends of the table
		_, in1 := p.search(h, false)
		_, in2 := p.search(h, true)
		if in1 != in2 {
			t.Fatalf("hash %s: fan16 says %v, the index %v", h, in2, in1)
		}
	}
}

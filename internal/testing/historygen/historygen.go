// Package historygen writes generated access-repository histories for
// benchmarks and tests: a stream for git fast-import (commits, file
// changes, records under a notes ref), the import into a bare repository,
// and a cache so that a long history is generated once. What a history
// holds (which requests, how they land and leave) stays with the test
// that asks for it.
package historygen

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gitgrant/gitgrant/internal/testing/gitserver"
)

// Stream writes a history for git fast-import. Each commit is a mark,
// the number Commit returns, which later commits name as parents and
// notes attach to.
type Stream struct {
	w     *bufio.Writer
	clock time.Time
	step  time.Duration
	mark  int
	notes map[int][]string

	// Commits counts the commits written so far.
	Commits int
}

// NewStream writes to w; the first commit is at start+step and each
// later one step after the one before.
func NewStream(w io.Writer, start time.Time, step time.Duration) *Stream {
	return &Stream{w: bufio.NewWriterSize(w, 1<<20), clock: start, step: step, notes: map[int][]string{}}
}

// Now is the time of the last commit written.
func (s *Stream) Now() time.Time { return s.clock }

// Commit writes a commit on ref by author (GitHub commits it) with ops,
// the changes File and Delete describe, on parents (none: a root commit;
// two: a merge), and returns its mark.
func (s *Stream) Commit(ref, author, msg string, parents []int, ops ...string) int {
	s.clock = s.clock.Add(s.step)
	return s.commit(ref, fmt.Sprintf("author %s <%s@example.com> %d +0000\ncommitter GitHub <noreply@github.com>", author, author, s.clock.Unix()), msg, parents, ops)
}

// CommitBy writes a commit on ref whose author and committer are name
// <email>.
func (s *Stream) CommitBy(ref, name, email, msg string, parents []int, ops ...string) int {
	s.clock = s.clock.Add(s.step)
	return s.commit(ref, fmt.Sprintf("committer %s <%s>", name, email), msg, parents, ops)
}

func (s *Stream) commit(ref, who, msg string, parents []int, ops []string) int {
	s.mark++
	s.Commits++
	fmt.Fprintf(s.w, "commit %s\nmark :%d\n%s %d +0000\ndata %d\n%s\n", ref, s.mark, who, s.clock.Unix(), len(msg), msg)
	for i, p := range parents {
		if i == 0 {
			fmt.Fprintf(s.w, "from :%d\n", p)
		} else {
			fmt.Fprintf(s.w, "merge :%d\n", p)
		}
	}
	s.w.WriteString(strings.Join(ops, "") + "\n")
	return s.mark
}

// File is the change that writes content to path.
func File(path, content string) string {
	return fmt.Sprintf("M 100644 inline %s\ndata %d\n%s\n", path, len(content), content)
}

// Delete is the change that removes path.
func Delete(path string) string { return "D " + path + "\n" }

// Note adds record, as one JSON line, to the note of commit on, written
// by Notes.
func (s *Stream) Note(on int, record any) error {
	b, err := json.Marshal(record)
	if err != nil {
		return err
	}
	s.notes[on] = append(s.notes[on], string(b))
	return nil
}

// Notes writes every note added so far in one commit of ref, committed
// by gitgrant at time at, with the one-line message title.
func (s *Stream) Notes(ref, title string, at time.Time) {
	s.mark++
	fmt.Fprintf(s.w, "commit %s\nmark :%d\ncommitter gitgrant <gitgrant@example.com> %d +0000\ndata %d\n%s\n", ref, s.mark, at.Unix(), len(title)+1, title)
	for on := 1; on <= s.mark; on++ {
		lines := s.notes[on]
		if len(lines) == 0 {
			continue
		}
		data := strings.Join(lines, "\n") + "\n"
		fmt.Fprintf(s.w, "N inline :%d\ndata %d\n%s\n", on, len(data), data)
	}
	s.w.WriteString("\n")
}

// Drop removes ref, a branch that only held side commits now reachable
// from main.
func (s *Stream) Drop(ref string) {
	fmt.Fprintf(s.w, "reset %s\nfrom 0000000000000000000000000000000000000000\n\n", ref)
}

// Flush writes what is buffered.
func (s *Stream) Flush() error { return s.w.Flush() }

// Import creates a bare repository at dir (main its default branch) and
// fills it with what write writes for git fast-import.
func Import(tb testing.TB, dir string, write func(io.Writer) error) {
	tb.Helper()
	Init(tb, dir)
	FastImport(tb, dir, write)
}

// Init creates an empty bare repository at dir whose default branch is
// main.
func Init(tb testing.TB, dir string) {
	tb.Helper()
	gitserver.Git(tb)
	gitserver.Run(tb, "", "init", "-q", "--bare", "--initial-branch=main", dir)
}

// FastImport adds to the repository at dir what write writes for git
// fast-import, which packs it as one new pack.
func FastImport(tb testing.TB, dir string, write func(io.Writer) error) {
	tb.Helper()
	cmd := exec.Command("git", "fast-import", "--quiet", "--done")
	cmd.Dir, cmd.Env, cmd.Stderr = dir, gitserver.IsolatedEnv(), os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	genErr := write(in)
	if genErr == nil {
		_, genErr = io.WriteString(in, "done\n")
	}
	in.Close()
	if err := cmd.Wait(); err != nil || genErr != nil {
		tb.Fatalf("git fast-import: %v %v", err, genErr)
	}
}

// Repack packs the repository as a server holds it: one deltified pack.
func Repack(tb testing.TB, dir string) {
	tb.Helper()
	gitserver.Run(tb, dir, "repack", "-a", "-d", "-q", "--depth=50", "--window=10")
}

// CacheDir is where generated histories are kept between runs:
// GITGRANT_BENCH_DIR, else gitgrant-bench in the user cache directory.
func CacheDir(tb testing.TB) string {
	tb.Helper()
	if dir := os.Getenv("GITGRANT_BENCH_DIR"); dir != "" {
		return dir
	}
	c, err := os.UserCacheDir()
	if err != nil {
		tb.Fatal(err)
	}
	return filepath.Join(c, "gitgrant-bench")
}

// Cached returns base/name, running build on it first unless an earlier
// build there completed. build must be deterministic: name says what it
// builds, with a version to bump when that changes.
func Cached(tb testing.TB, base, name string, build func(dir string)) string {
	tb.Helper()
	dir := filepath.Join(base, name)
	done := filepath.Join(dir, "gitgrant-complete")
	if _, err := os.Stat(done); err == nil {
		return dir
	}
	os.RemoveAll(dir)
	start := time.Now()
	build(dir)
	if err := os.WriteFile(done, nil, 0o644); err != nil {
		tb.Fatal(err)
	}
	tb.Logf("generated %s in %s", name, time.Since(start).Round(time.Millisecond))
	return dir
}

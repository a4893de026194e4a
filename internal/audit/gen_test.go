package audit

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/gitgrant/gitgrant/internal/testing/gitserver"
)

// historySpec describes a generated access repository history.
type historySpec struct {
	Commits   int // total commits, side-branch commits included
	Requests  int // request files that come and go
	Providers int
}

// generateHistory writes a history with git fast-import: requests merged
// as merge commits, squash commits and direct pushes, cleaned up by
// commits with gitgrant trailers, revoked early by people, interleaved
// with commits that touch other files. It is deterministic, so a cached
// repository can be reused across runs.
func generateHistory(w io.Writer, spec historySpec) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	start := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := start
	mark := 0
	commits := 0
	tick := func() int64 { clock = clock.Add(7 * time.Minute); return clock.Unix() }
	commit := func(ref, author, msg string, parents []int, ops string) int {
		mark++
		commits++
		ts := tick()
		fmt.Fprintf(bw, "commit %s\nmark :%d\nauthor %s <%s@example.com> %d +0000\ncommitter GitHub <noreply@github.com> %d +0000\ndata %d\n%s\n",
			ref, mark, author, author, ts, ts, len(msg), msg)
		for i, p := range parents {
			if i == 0 {
				fmt.Fprintf(bw, "from :%d\n", p)
			} else {
				fmt.Fprintf(bw, "merge :%d\n", p)
			}
		}
		bw.WriteString(ops)
		bw.WriteString("\n")
		return mark
	}
	fileOp := func(path, content string) string {
		return fmt.Sprintf("M 100644 inline %s\ndata %d\n%s\n", path, len(content), content)
	}
	config := "version: 1\nproviders:\n"
	for p := range spec.Providers {
		config += fmt.Sprintf("  db%02d:\n    type: postgres\n    roles:\n      readonly: {approvals: 1}\n", p)
	}
	main := commit("refs/heads/main", "admin", "Initial access repository", nil, fileOp("gitgrant.yaml", config)+fileOp("README.md", "access\n"))

	type active struct {
		path, requester, grant string
		pr                     int
		merged                 time.Time
	}
	var open []active
	otherPerRequest := max(0, (spec.Commits-1-3*spec.Requests)/spec.Requests)
	pr := 0
	for i := range spec.Requests {
		user := fmt.Sprintf("user%05d", i)
		provider := fmt.Sprintf("db%02d", i%spec.Providers)
		p := fmt.Sprintf("requests/%s/%s-readonly.yaml", provider, user)
		body := fmt.Sprintf("requester: %s\ngrants:\n  - provider: %s\n    role: readonly\nduration: 4h\nreason: Investigate ticket INC-%d\n", user, provider, i)
		pr++
		switch i % 3 {
		case 0: // merge commit of a one-commit pull request branch
			head := commit("refs/heads/pr", user, "Request readonly on "+provider, []int{main}, fileOp(p, body))
			main = commit("refs/heads/main", "GitHub", fmt.Sprintf("Merge pull request #%d from %s/request\n\nRequest readonly on %s", pr, user, provider), []int{main, head}, fileOp(p, body))
		case 1: // squash merge
			main = commit("refs/heads/main", user, fmt.Sprintf("Request readonly on %s (#%d)", provider, pr), []int{main}, fileOp(p, body))
		default: // rebase merge or direct push
			main = commit("refs/heads/main", user, "Request readonly on "+provider, []int{main}, fileOp(p, body))
		}
		open = append(open, active{path: p, requester: user, grant: provider + "/readonly", pr: pr, merged: clock})
		for j := range otherPerRequest {
			main = commit("refs/heads/main", "dev", fmt.Sprintf("Update notes %d.%d", i, j), []int{main}, fileOp(fmt.Sprintf("notes/%02d.md", j%16), fmt.Sprintf("note %d %d\n", i, j)))
		}
		// Keep about 150 requests active: the oldest leave, by cleanup or
		// by an early "I'm done" deletion.
		for len(open) > 150 {
			a := open[0]
			open = open[1:]
			if a.pr%5 == 0 {
				main = commit("refs/heads/main", a.requester, "Done with "+a.grant, []int{main}, "D "+a.path+"\n")
				continue
			}
			msg := fmt.Sprintf("gitgrant: remove 1 expired request\n\nGitgrant-Request: %s\nGitgrant-Requester: %s\nGitgrant-Grant: %s\nGitgrant-Approved-By: reviewer\nGitgrant-Granted-At: %s\nGitgrant-Expired-At: %s\nGitgrant-Pull-Request: %d\n",
				a.path, a.requester, a.grant, a.merged.Format(time.RFC3339), a.merged.Add(4*time.Hour).Format(time.RFC3339), a.pr)
			main = commit("refs/heads/main", "gitgrant", msg, []int{main}, "D "+a.path+"\n")
		}
	}
	for commits < spec.Commits {
		main = commit("refs/heads/main", "dev", fmt.Sprintf("Pad %d", commits), []int{main}, fileOp("notes/pad.md", fmt.Sprintf("%d\n", commits)))
	}
	fmt.Fprintf(bw, "reset refs/heads/pr\nfrom 0000000000000000000000000000000000000000\n\n")
	return bw.Flush()
}

// generatedRepo returns a bare repository holding the generated history,
// built once and cached under dir (GITGRANT_BENCH_DIR, else the user cache).
func generatedRepo(tb testing.TB, spec historySpec) string {
	tb.Helper()
	gitserver.Git(tb)
	base := os.Getenv("GITGRANT_BENCH_DIR")
	if base == "" {
		c, err := os.UserCacheDir()
		if err != nil {
			tb.Fatal(err)
		}
		base = filepath.Join(c, "gitgrant-bench")
	}
	dir := filepath.Join(base, fmt.Sprintf("history-c%d-r%d-p%d-v2.git", spec.Commits, spec.Requests, spec.Providers))
	if _, err := os.Stat(filepath.Join(dir, "gitgrant-complete")); err == nil {
		return dir
	}
	os.RemoveAll(dir)
	if _, err := gitserver.RunEnv("", nil, "init", "--bare", "--initial-branch=main", dir); err != nil {
		tb.Fatal(err)
	}
	startGen := time.Now()
	cmd := exec.Command("git", "fast-import", "--quiet", "--done")
	cmd.Dir = dir
	cmd.Env = gitserver.IsolatedEnv()
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	genErr := generateHistory(in, spec)
	if genErr == nil {
		_, genErr = io.WriteString(in, "done\n")
	}
	in.Close()
	if err := cmd.Wait(); err != nil || genErr != nil {
		tb.Fatalf("git fast-import: %v %v", err, genErr)
	}
	// Repack as a server would hold it, so that both tools read the same
	// deltified pack.
	if _, err := gitserver.RunEnv(dir, nil, "repack", "-a", "-d", "-q", "--depth=50", "--window=10"); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "gitgrant-complete"), nil, 0o644); err != nil {
		tb.Fatal(err)
	}
	tb.Logf("generated %d commits, %d requests in %s", spec.Commits, spec.Requests, time.Since(startGen).Round(time.Millisecond))
	return dir
}

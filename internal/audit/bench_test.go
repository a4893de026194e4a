package audit

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/gitgrant/gitgrant/internal/gitrepo"
)

// benchSpec is the history the issue asks for: 100,000 commits with
// 20,000 request files coming and going.
var benchSpec = historySpec{Commits: 100_000, Requests: 20_000, Providers: 20}

// BenchmarkAudit compares gitgrant's audit of a generated history with
// git's own `git log --first-parent --name-status -- requests/` on the same
// repository. The repository takes about a minute to generate and is cached
// (GITGRANT_BENCH_DIR, else the user cache dir), so the benchmark only runs
// when asked:
//
//	GITGRANT_BENCH=1 go test ./internal/audit -run '^$' -bench Audit -benchtime 3x
func BenchmarkAudit(b *testing.B) {
	if os.Getenv("GITGRANT_BENCH") == "" {
		b.Skip("set GITGRANT_BENCH=1 to generate the 100,000-commit history and run the benchmark")
	}
	dir := generatedRepo(b, benchSpec)
	open := func(b *testing.B) *gitrepo.Repo {
		r, err := gitrepo.Open(context.Background(), gitrepo.Options{Source: dir})
		if err != nil {
			b.Fatal(err)
		}
		return r
	}
	audit := func(b *testing.B, indexDir string) {
		r := open(b)
		defer r.Close()
		trail, err := Build(context.Background(), r, Options{Now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), IndexDir: indexDir})
		if err != nil {
			b.Fatal(err)
		}
		// What `gitgrant audit --output json` does with the trail.
		if err := json.NewEncoder(io.Discard).Encode(trail.Filter(Filter{})); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(len(trail.Events)), "events")
	}
	b.Run("git-log", func(b *testing.B) {
		for b.Loop() {
			cmd := exec.Command("git", "log", "--first-parent", "--name-status", "main", "--", "requests/")
			cmd.Dir = dir
			cmd.Stdout = io.Discard
			if err := cmd.Run(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("gitgrant-cold", func(b *testing.B) { // no index: the whole history is read
		for b.Loop() {
			audit(b, "")
		}
	})
	b.Run("gitgrant-indexed", func(b *testing.B) { // the index is up to date, as on every run but the first
		index := b.TempDir()
		audit(b, index)
		for b.Loop() {
			audit(b, index)
		}
	})
}

package audit

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"

	"github.com/gitgrant/gitgrant/internal/gitrepo"
)

// benchSpecs are the histories the issue asks for: 100,000 commits with
// 20,000 request files coming and going, and a tenth of that, to show how
// the figure grows.
var benchSpecs = []historySpec{
	{Commits: 10_000, Requests: 2_000, Providers: 20},
	{Commits: 100_000, Requests: 20_000, Providers: 20},
}

// BenchmarkAudit compares gitgrant's audit of a generated history with
// git's own `git log --first-parent --name-status -- requests/` on the same
// repository, side by side: every iteration runs both, each first in turn,
// and reports their mean times and the median of their ratio. The
// repositories take a minute to generate and are cached
// (GITGRANT_BENCH_DIR, else the user cache dir), so the benchmark only runs
// when asked:
//
//	GITGRANT_BENCH=1 go test ./internal/audit -run '^$' -bench Audit -benchtime 5x
func BenchmarkAudit(b *testing.B) {
	if os.Getenv("GITGRANT_BENCH") == "" {
		b.Skip("set GITGRANT_BENCH=1 to generate the 10,000- and 100,000-commit histories and run the benchmark")
	}
	for _, spec := range benchSpecs {
		b.Run(fmt.Sprintf("commits=%d", spec.Commits), func(b *testing.B) {
			dir := generatedRepo(b, spec)
			gitLog := func(b *testing.B) (time.Duration, time.Duration) {
				start := time.Now()
				cmd := exec.Command("git", "log", "--first-parent", "--name-status", "main", "--", "requests/")
				cmd.Dir = dir
				cmd.Stdout = io.Discard
				if err := cmd.Run(); err != nil {
					b.Fatal(err)
				}
				return time.Since(start), cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
			}
			b.Run("cold", func(b *testing.B) { // no index: the whole history is read
				sideBySide(b, gitLog, func(b *testing.B) (time.Duration, time.Duration) { return auditOnce(b, dir, "") })
			})
			b.Run("indexed", func(b *testing.B) { // the index is up to date, as on every run but the first
				index := b.TempDir()
				auditOnce(b, dir, index)
				sideBySide(b, gitLog, func(b *testing.B) (time.Duration, time.Duration) { return auditOnce(b, dir, index) })
			})
		})
	}
}

// auditOnce does what `gitgrant audit --output json` does, from opening
// the repository to the encoded trail (cmd/gitgrant's writeJSONList).
func auditOnce(b *testing.B, dir, indexDir string) (time.Duration, time.Duration) {
	start, cpu := time.Now(), cpuTime()
	r, err := gitrepo.Open(context.Background(), gitrepo.Options{Source: dir})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	trail, err := Build(context.Background(), r, Options{Now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), IndexDir: indexDir})
	if err != nil {
		b.Fatal(err)
	}
	// One event at a time, indented, as the command writes them.
	var out []byte
	events := trail.Filter(Filter{})
	for i := range events {
		if out, err = events[i].AppendJSON(append(out[:0], ",\n    "...), "    "); err != nil {
			b.Fatal(err)
		}
		if _, err := io.Discard.Write(out); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(trail.Events)), "events")
	return time.Since(start), cpuTime() - cpu
}

// sideBySide runs the floor and gitgrant once per iteration, alternating
// which goes first, and reports their mean wall times (ms-git-log,
// ms-gitgrant), the median of the ratio of wall times
// (gitgrant/git-log) and of CPU times, user and system
// (cpu-gitgrant/git-log): on a shared machine the CPU time is the steadier
// of the two.
func sideBySide(b *testing.B, floor, ours func(*testing.B) (time.Duration, time.Duration)) {
	var tf, to time.Duration
	var ratios, cpuRatios []float64
	n := 0
	for b.Loop() {
		var f, o, fc, oc time.Duration
		if n%2 == 0 {
			f, fc = floor(b)
			o, oc = ours(b)
		} else {
			o, oc = ours(b)
			f, fc = floor(b)
		}
		n++
		tf, to = tf+f, to+o
		ratios = append(ratios, float64(o)/float64(f))
		cpuRatios = append(cpuRatios, float64(oc)/float64(fc))
	}
	median := func(xs []float64) float64 { slices.Sort(xs); return xs[len(xs)/2] }
	b.ReportMetric(float64(tf.Milliseconds())/float64(n), "ms-git-log")
	b.ReportMetric(float64(to.Milliseconds())/float64(n), "ms-gitgrant")
	b.ReportMetric(median(ratios), "gitgrant/git-log")
	b.ReportMetric(median(cpuRatios), "cpu-gitgrant/git-log")
	b.ReportMetric(0, "ns/op")
}

package engine_test

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gitgrant/gitgrant/internal/engine"
	"github.com/gitgrant/gitgrant/internal/testing/accesstest"
	"github.com/gitgrant/gitgrant/providers/fake"
	"github.com/gitgrant/gitgrant/schema"
)

// BenchmarkWarmPass is a steady-state pass of a long-running engine (as
// `gitgrant serve` runs it: parse cache, evidence cache, one fake
// provider) over n active requests, for n people, merged through one
// approved pull request: read main, validate, verify (cached), plan, apply nothing. It
// reports the mean time of a pass and the heap in use after one (after a
// GC: what the process holds between passes):
//
//	go test ./internal/engine -run '^$' -bench WarmPass -benchtime 5x
//
// The goals: 20 ms at 10,000 requests, 100 MB at 100,000.
func BenchmarkWarmPass(b *testing.B) {
	for _, n := range []int{1_000, 10_000} {
		b.Run(fmt.Sprintf("requests=%d", n), func(b *testing.B) { benchWarmPass(b, n) })
	}
}

func benchWarmPass(b *testing.B, n int) {
	var ids strings.Builder
	for i := range n {
		fmt.Fprintf(&ids, "  user%d: {principals: {db: u%d}}\n", i, i)
	}
	r := accesstest.New(b, func() time.Time { return t0 }, map[string]string{
		"gitgrant.yaml":      "policy: {allow_on_behalf: true}\n" + fmt.Sprintf(config, strings.TrimRight(ids.String(), "\n")),
		".github/CODEOWNERS": "/requests/ @owner\n",
	}, t0.Add(-48*time.Hour))
	w := &world{Repo: r, t: b}
	files := map[string]string{}
	for i := range n {
		files[fmt.Sprintf("requests/db/user%d.yaml", i)] = fmt.Sprintf("requester: user0\nsubject: user%d\ngrants: [{provider: db, role: ro}]\nduration: 4h\nreason: warm pass benchmark\n", i)
	}
	w.MergePR(1, "user0", files, t0.Add(-time.Hour), "owner")
	// Packed, as the clone `gitgrant serve` keeps of a remote holds what
	// it fetched.
	git(b, w.Work, time.Time{}, "", "repack", "-a", "-d", "-q")
	p := fake.New(fake.Options{Name: "db", Roles: []string{"ro"}})
	eng := w.engine(p, t0)
	eng.Parsed = &schema.ParseCache{} // as gitgrant serve sets it
	ctx := context.Background()
	pass := func() int {
		ps, err := eng.Plan(ctx, false)
		if err != nil {
			b.Fatal(err)
		}
		defer ps.Close()
		if len(ps.Problems) > 0 {
			b.Fatalf("problems: %v", ps.Problems[0])
		}
		if _, err := eng.Apply(ctx, ps, engine.ApplyOptions{Cleanup: true}); err != nil {
			b.Fatal(err)
		}
		return len(ps.Plan.Actions)
	}
	if got := pass(); got != n {
		b.Fatalf("first pass: %d actions, want %d grants", got, n)
	}
	pass() // the caches settle
	var heap uint64
	for b.Loop() {
		if got := pass(); got != 0 {
			b.Fatalf("steady state planned %d actions", got)
		}
		b.StopTimer()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		heap = max(heap, m.HeapInuse)
		b.StartTimer()
	}
	b.ReportMetric(float64(heap)/(1<<20), "heap-inuse-MB")
}

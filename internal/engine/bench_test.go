package engine_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gitgrant/gitgrant"
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
	// A configuration holds at most 64 KiB (about 1,800 identities), so
	// n requests are 1,000 people's grants on n/1,000 roles.
	people := min(n, 1_000)
	roleCount := (n + people - 1) / people
	var ids, roles strings.Builder
	for i := range people {
		fmt.Fprintf(&ids, "  user%d: {principals: {db: u%d}}\n", i, i)
	}
	roleNames := make([]string, roleCount)
	for i := range roleCount {
		roleNames[i] = fmt.Sprintf("r%d", i)
		fmt.Fprintf(&roles, "      r%d: {max_duration: 8h, approvals: 1}\n", i)
	}
	cfg := "policy: {allow_on_behalf: true}\nidentities:\n" + ids.String() + "providers:\n  db:\n    type: exec\n    command: [unused]\n    roles:\n" + roles.String()
	r := accesstest.New(b, func() time.Time { return t0 }, map[string]string{
		"gitgrant.yaml":      cfg,
		".github/CODEOWNERS": "/requests/ @owner\n",
	}, t0.Add(-48*time.Hour))
	w := &world{Repo: r, t: b}
	files := map[string]string{}
	for i := range n {
		files[fmt.Sprintf("requests/db/user%d-r%d.yaml", i%people, i/people)] = fmt.Sprintf("requester: user0\nsubject: user%d\ngrants: [{provider: db, role: r%d}]\nduration: 4h\nreason: warm pass benchmark\n", i%people, i/people)
	}
	w.MergePR(1, "user0", files, t0.Add(-time.Hour), "owner")
	// Packed, as the clone `gitgrant serve` keeps of a remote holds what
	// it fetched.
	git(b, w.Work, time.Time{}, "", "repack", "-a", "-d", "-q")
	p := fake.New(fake.Options{Name: "db", Roles: roleNames})
	eng := w.engine(p, t0)
	eng.Parsed = &schema.ParseCache{} // as gitgrant serve sets it
	ctx := context.Background()
	pass := func() int {
		ps := mustPlan(b, eng)
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
		ps, _ := eng.Plan(ctx, true)
		defer ps.Close()
		for _, e := range ps.Plan.Entries {
			if e.Status != gitgrant.StatusActive {
				b.Fatalf("first pass: %d actions, want %d grants; %s is %s: %v", got, n, e.Path, e.Status, e.Reasons)
			}
		}
		b.Fatalf("first pass: %d actions, want %d grants; %d entries, problems %v", got, n, len(ps.Plan.Entries), ps.Problems)
	}
	pass() // the caches settle
	var heap uint64
	cpu0 := cpuTime(b)
	// GITGRANT_WARM_PROFILE=FILE profiles the steady passes alone (not
	// the first pass, which verifies everything).
	if f := os.Getenv("GITGRANT_WARM_PROFILE"); f != "" {
		out, err := os.Create(f)
		if err != nil {
			b.Fatal(err)
		}
		if err := pprof.StartCPUProfile(out); err != nil {
			b.Fatal(err)
		}
		defer func() { pprof.StopCPUProfile(); out.Close() }()
	}
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
	// Wall time on a shared machine is mostly other people's work: the
	// process's CPU time per pass is the steadier figure (it includes
	// the GC after each pass and the in-process fake GitHub).
	b.ReportMetric(float64((cpuTime(b)-cpu0).Milliseconds())/float64(b.N), "cpu-ms/op")
	b.ReportMetric(float64(heap)/(1<<20), "heap-inuse-MB")
}

// cpuTime is the CPU time this process has used, user and system.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

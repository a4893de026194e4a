package serve

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/engine"
	"github.com/gitgrant/gitgrant/providers"
	"github.com/gitgrant/gitgrant/providers/fake"
	"github.com/gitgrant/gitgrant/schema"
)

// timedRevokes records, for every revocation, how long after the end of
// the principal's window it happened.
type timedRevokes struct {
	keepOpen
	mu     sync.Mutex
	ends   map[string]time.Time
	delays []time.Duration
}

func (p *timedRevokes) Revoke(ctx context.Context, role, principal string) error {
	err := p.keepOpen.Revoke(ctx, role, principal)
	if err == nil {
		p.mu.Lock()
		p.delays = append(p.delays, time.Since(p.ends[role+"/"+principal]))
		p.mu.Unlock()
	}
	return err
}

// BenchmarkRevocationDelayUnderLoad measures, in `serve` on the wall
// clock, the delay between the end of a window and its revocation when
// n requests (one pull request, merged and approved) end over a span:
// n/span at each whole second (expires: has second precision). Each size
// runs its scenario once, whatever b.N:
//
//	go test ./internal/serve -run '^$' -bench RevocationDelay -benchtime 1x
//
// Reported: p50, p99 and max delay in seconds, and the passes it took.
// The goal is p99 ≤ 100 ms at 10,000 over a minute.
func BenchmarkRevocationDelayUnderLoad(b *testing.B) {
	for _, sz := range []struct {
		n          int
		span, lead time.Duration
	}{
		{500, 5 * time.Second, 20 * time.Second},
		{10_000, time.Minute, 90 * time.Second},
	} {
		b.Run(fmt.Sprintf("n=%d/over=%s", sz.n, sz.span), func(b *testing.B) {
			runRevocationLoad(b, sz.n, sz.span, sz.lead) // once: a run takes minutes of wall clock
		})
	}
}

// runRevocationLoad ends n windows over span, the first lead from now
// (long enough for the first pass to verify and grant every request).
func runRevocationLoad(b *testing.B, n int, span, lead time.Duration) {
	// A configuration holds at most 64 KiB (about 1,800 identities), so
	// n requests are 1,000 people's grants on n/1,000 roles.
	people := min(n, 1_000)
	var ids, roles strings.Builder
	for i := range people {
		fmt.Fprintf(&ids, "  u%d: {principals: {db: u%d}}\n", i, i)
	}
	roleNames := []string{}
	for r := range (n + people - 1) / people {
		roleNames = append(roleNames, fmt.Sprintf("r%d", r))
		fmt.Fprintf(&roles, "      r%d: {max_duration: 8h, approvals: 1}\n", r)
	}
	// The identities are in the first, trusted policy: a policy pushed
	// to main later would not be in force, and nothing would be granted.
	cfg := "policy: {allow_on_behalf: true}\nidentities:\n  alice: {principals: {db: alice}}\n" + ids.String() +
		"providers:\n  db:\n    type: exec\n    command: [unused]\n    roles:\n" + roles.String()
	w := newWorldWith(b, gitgrant.SystemClock, cfg)
	w.db = fake.New(fake.Options{Name: "db", Roles: roleNames, Clock: gitgrant.SystemClock})
	first := time.Now().Add(lead).Truncate(time.Second)
	files := map[string]string{}
	ends := map[string]time.Time{}
	for i := range n {
		end := first.Add(time.Duration(i) * span / time.Duration(n)).Truncate(time.Second)
		who, role := fmt.Sprintf("u%d", i%people), roleNames[i/people]
		ends[role+"/"+who] = end
		files[fmt.Sprintf("requests/db/%s-%s.yaml", who, role)] = fmt.Sprintf("requester: alice\nsubject: %s\ngrants: [{provider: db, role: %s}]\nreason: Look into INC-1\nexpires: %s\n", who, role, end.Format(time.RFC3339))
	}
	w.mergeFiles(1, "alice", files, time.Now().Add(-time.Minute))
	eng := w.engine(gitgrant.SystemClock)
	eng.Parsed = &schema.ParseCache{} // as gitgrant serve sets it
	timed := &timedRevokes{keepOpen: keepOpen{w.db}, ends: ends}
	eng.Registry = providers.Registry{"exec": func(context.Context, gitgrant.ProviderConfig, providers.Deps) (providers.Provider, error) {
		return timed, nil
	}}
	s := New(eng, Options{Apply: engine.ApplyOptions{Cleanup: true}, Resync: time.Hour})
	cancel, done := runLoopback(b, s)
	deadline := first.Add(span + 2*time.Minute)
	for {
		timed.mu.Lock()
		got := len(timed.delays)
		timed.mu.Unlock()
		if got >= n {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d revoked", got, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	slices.Sort(timed.delays)
	q := func(p float64) float64 { return timed.delays[int(p*float64(len(timed.delays)-1))].Seconds() }
	b.ReportMetric(q(0.5), "p50-s")
	b.ReportMetric(q(0.99), "p99-s")
	b.ReportMetric(q(1), "max-s")
	b.ReportMetric(float64(s.Passes()), "passes")
	b.ReportMetric(0, "ns/op")
}

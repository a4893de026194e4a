package serve

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/engine"
	"github.com/gitgrant/gitgrant/providers"
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
		p.delays = append(p.delays, time.Since(p.ends[principal]))
		p.mu.Unlock()
	}
	return err
}

// BenchmarkRevocationDelayUnderLoad measures, in `serve` on the wall
// clock, the delay between the end of a window and its revocation when
// n requests (one pull request, merged and approved) end over five
// seconds: n/5 at each whole second (expires: has second precision). It
// runs the scenario once, whatever b.N:
//
//	go test ./internal/serve -run '^$' -bench RevocationDelay -benchtime 1x
//
// Reported: p50, p99 and max delay in seconds.
func BenchmarkRevocationDelayUnderLoad(b *testing.B) {
	const n = 500
	runRevocationLoad(b, n) // once: a run takes half a minute of wall clock

}

func runRevocationLoad(b *testing.B, n int) {
	w := newWorld(b, gitgrant.SystemClock)
	var ids strings.Builder
	for i := range n {
		fmt.Fprintf(&ids, "  u%d: {principals: {db: u%d}}\n", i, i)
	}
	cfg := strings.Replace(testConfig, "identities:\n", "policy: {allow_on_behalf: true}\nidentities:\n"+ids.String(), 1)
	w.commitFiles(time.Now().Add(-time.Hour), map[string]string{"gitgrant.yaml": cfg})
	// Windows end 20..25s from now, long enough for the first pass to
	// verify and grant every request before the first one ends.
	first := time.Now().Add(20 * time.Second).Truncate(time.Second)
	files := map[string]string{}
	ends := map[string]time.Time{}
	for i := range n {
		end := first.Add(time.Duration(i) * 5 * time.Second / time.Duration(n)).Truncate(time.Second)
		ends[fmt.Sprintf("u%d", i)] = end
		files[fmt.Sprintf("requests/db/u%d.yaml", i)] = request("alice", "ro", fmt.Sprintf("subject: u%d\nexpires: %s\n", i, end.Format(time.RFC3339)))
	}
	w.mergeFiles(1, "alice", files, time.Now().Add(-time.Minute))
	eng := w.engine(gitgrant.SystemClock)
	eng.Parsed = &schema.ParseCache{} // as gitgrant serve sets it
	timed := &timedRevokes{keepOpen: keepOpen{w.db}, ends: ends}
	eng.Registry = providers.Registry{"exec": func(context.Context, gitgrant.ProviderConfig, providers.Deps) (providers.Provider, error) {
		return timed, nil
	}}
	s := New(eng, Options{Apply: engine.ApplyOptions{Cleanup: true}, Resync: time.Hour})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, ln) }()
	deadline := time.Now().Add(2 * time.Minute)
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
}

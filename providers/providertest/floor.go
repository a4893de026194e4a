package providertest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/gitgrant/gitgrant/providers"
)

// Floor times a provider side by side with its floors: the same changes
// made in one session by the target system's own client (psql, mariadb,
// ldapmodify), and by the Go driver the provider uses, without the
// provider. All run in every benchmark iteration, each first in turn, so
// that a machine shared with other work slows them alike. The README
// reports provider/client; provider/driver is the provider's own overhead.
type Floor struct {
	Clients []Client

	provider []time.Duration // per iteration
}

// Client makes the changes once in one session. It must leave the target
// as it found it: every grant it makes it revokes again.
type Client struct {
	Name string // in the metrics: "psql", "pgx", ...
	Run  func() error

	took []time.Duration // per iteration
}

// Compare runs every client and the provider once each (see grantRevoke).
func (f *Floor) Compare(b *testing.B, open func() providers.Provider, role string, principals []string, until time.Time) {
	b.Helper()
	// -1 is the provider; the order turns by one each iteration.
	order := []int{-1}
	for i := range f.Clients {
		order = append(order, i)
	}
	turn := len(f.provider) % len(order)
	for _, i := range slices.Concat(order[turn:], order[:turn]) {
		if i < 0 {
			f.grantRevoke(b, open, role, principals, until)
			continue
		}
		c := &f.Clients[i]
		start := time.Now()
		if err := c.Run(); err != nil {
			b.Fatalf("%s: %v", c.Name, err)
		}
		c.took = append(c.took, time.Since(start))
	}
}

// grantRevoke opens a provider, grants role to every principal and then
// revokes it from every one, one call each in plan order as the reconciler
// makes them, and closes the provider. Opening (and so connecting) is
// timed, as the clients connect too; the check between the two halves,
// that Members lists every principal, is not.
func (f *Floor) grantRevoke(b *testing.B, open func() providers.Provider, role string, principals []string, until time.Time) {
	b.Helper()
	ctx := context.Background()
	start := time.Now()
	p := open()
	defer p.Close()
	for _, pr := range principals {
		if err := p.Grant(ctx, providers.Grant{Role: role, Principal: pr, Until: until}); err != nil {
			b.Fatalf("Grant(%q): %v", pr, err)
		}
	}
	took := time.Since(start)
	if ms, err := p.Members(ctx, role); err != nil || len(ms) != len(principals) {
		b.Fatalf("Members(%q) after the grants: %d members, %v; want %d", role, len(ms), err, len(principals))
	}
	start = time.Now()
	for _, pr := range principals {
		if err := p.Revoke(ctx, role, pr); err != nil {
			b.Fatalf("Revoke(%q): %v", pr, err)
		}
	}
	f.provider = append(f.provider, took+time.Since(start))
}

// Report reports each side's mean time per iteration and, for each
// client, the median over iterations of provider/client. The median, not
// the ratio of the sums, because on a shared machine one iteration can
// meet a burst of other work on one side only.
func (f *Floor) Report(b *testing.B) {
	b.ReportMetric(mean(f.provider), "ms-provider")
	for _, c := range f.Clients {
		b.ReportMetric(mean(c.took), "ms-"+c.Name)
		ratios := make([]float64, len(c.took))
		for i := range c.took {
			ratios[i] = f.provider[i].Seconds() / c.took[i].Seconds()
		}
		if len(ratios) > 0 {
			b.ReportMetric(median(ratios), "provider/"+c.Name)
		}
	}
}

func mean(ds []time.Duration) float64 {
	if len(ds) == 0 {
		return 0
	}
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return float64(sum.Milliseconds()) / float64(len(ds))
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if n := len(s); n%2 == 1 {
		return s[n/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

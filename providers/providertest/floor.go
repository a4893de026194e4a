package providertest

import (
	"context"
	"testing"
	"time"

	"github.com/gitgrant/gitgrant/providers"
)

// Floor times a provider side by side with its floor: the same changes made
// by the target system's own client in one session. Both run in every
// benchmark iteration, in turn first, so that a machine shared with other
// work slows both alike; the ratio is what the README reports.
type Floor struct {
	// Client names the floor in the metrics ("psql", "mariadb", ...).
	Client string
	// Run makes the changes once through the client. It must leave the
	// target as it found it: every grant it makes it revokes again.
	Run func() error

	runs            int
	floor, provider time.Duration
}

// Compare runs the floor and the provider once each (see GrantRevoke).
func (f *Floor) Compare(b *testing.B, open func() providers.Provider, role string, principals []string, until time.Time) {
	b.Helper()
	if f.runs%2 == 0 {
		f.timeFloor(b)
		f.GrantRevoke(b, open, role, principals, until)
	} else {
		f.GrantRevoke(b, open, role, principals, until)
		f.timeFloor(b)
	}
	f.runs++
}

func (f *Floor) timeFloor(b *testing.B) {
	b.Helper()
	start := time.Now()
	if err := f.Run(); err != nil {
		b.Fatalf("%s: %v", f.Client, err)
	}
	f.floor += time.Since(start)
}

// GrantRevoke opens a provider, grants role to every principal and then
// revokes it from every one, one call each in plan order as the reconciler
// makes them, and closes the provider. Opening (and so connecting) is
// timed, as the floor's client connects too; the check between the two
// halves, that Members lists every principal, is not.
func (f *Floor) GrantRevoke(b *testing.B, open func() providers.Provider, role string, principals []string, until time.Time) {
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
	f.provider += took + time.Since(start)
}

// Report reports, per iteration, the floor's time, the provider's, and
// provider/floor.
func (f *Floor) Report(b *testing.B) {
	n := float64(b.N)
	b.ReportMetric(float64(f.floor.Milliseconds())/n, "ms-"+f.Client)
	b.ReportMetric(float64(f.provider.Milliseconds())/n, "ms-provider")
	if f.floor > 0 {
		b.ReportMetric(f.provider.Seconds()/f.floor.Seconds(), "provider/"+f.Client)
	}
}

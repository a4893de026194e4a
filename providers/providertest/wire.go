package providertest

import (
	"context"
	"errors"
	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/providers"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// Writes counts what a client sends on the connections it wraps. The
// database and directory clients write each request with one Write, so
// the count is the round trips a call costs.
type Writes struct {
	n atomic.Int64
}

// Wrap counts conn's writes.
func (w *Writes) Wrap(conn net.Conn) net.Conn { return countingConn{conn, &w.n} }

// Dial dials as net.Dialer does and counts the connection's writes; it
// fits the DialFunc of the database drivers.
func (w *Writes) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return w.Wrap(conn), nil
}

type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c countingConn) Write(b []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(b)
}

// Cost is a call and the round trips it may take.
type Cost struct {
	Name string
	Do   func() error
	Want int64
}

// CheckCosts makes each call in turn, stopping at the first that fails,
// and checks how many writes it took.
func (w *Writes) CheckCosts(t *testing.T, costs []Cost) {
	t.Helper()
	for _, c := range costs {
		before := w.n.Load()
		if err := c.Do(); err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		if got := w.n.Load() - before; got != c.Want {
			t.Errorf("%s: %d round trips, want %d", c.Name, got, c.Want)
		}
	}
}

// CheckRevokeEndsSessions grants role to victim and revokes it with p
// (configured to end sessions), then pings a session victim opened before
// (it must be gone) and a bystander's (it must answer).
func CheckRevokeEndsSessions(t *testing.T, p providers.Provider, role, victim string, victimPing, bystanderPing func(context.Context) error) {
	t.Helper()
	ctx := t.Context()
	if err := p.Grant(ctx, providers.Grant{Role: role, Principal: victim}); err != nil {
		t.Fatal(err)
	}
	if err := p.Revoke(ctx, role, victim); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if err := victimPing(ctx); err == nil {
		t.Errorf("the revoked principal's session still answers")
	}
	if err := bystanderPing(ctx); err != nil {
		t.Errorf("another principal's session was ended: %v", err)
	}
}

// HungServer is the address of a loopback server that accepts connections
// and never answers, until the test ends.
func HungServer(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		var held []net.Conn // open, saying nothing
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	return l.Addr().String()
}

// CheckHungCall checks that call, against a HungServer and given a
// context with deadline d, costs no more than about d (ten times d at the
// most) and fails with a retryable system error.
func CheckHungCall(t *testing.T, d time.Duration, call func(context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	defer cancel()
	start := time.Now()
	err := call(ctx)
	if took := time.Since(start); took > 10*d {
		t.Errorf("the call took %v against a hung server with a %v deadline", took, d)
	}
	var sys *gitgrant.SystemError
	if !errors.As(err, &sys) || !sys.Retryable {
		t.Errorf("the call against a hung server: %v, want a retryable system error", err)
	}
}

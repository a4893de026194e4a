package ldap

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"

	"github.com/go-ldap/ldap/v3"
)

// maxConns bounds the connections one provider opens at a time; concurrent
// calls beyond it wait. Directories are shared infrastructure.
const maxConns = 4

// pool hands out bound connections, one operation at a time each, so that
// an operation can be abandoned when its context ends by closing its own
// connection (go-ldap's calls take no context).
type pool struct {
	dial func(ctx context.Context) (*ldap.Conn, error)
	sem  chan struct{}

	mu     sync.Mutex
	idle   []*ldap.Conn
	closed bool
}

func newPool(dial func(ctx context.Context) (*ldap.Conn, error)) *pool {
	return &pool{dial: dial, sem: make(chan struct{}, maxConns)}
}

// do runs fn on a bound connection. A connection taken from the idle list
// may have been closed by the server since; then fn runs once more on a
// fresh one, which is safe because every operation here is idempotent.
func (p *pool) do(ctx context.Context, fn func(*ldap.Conn) error) error {
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-p.sem }()

	for attempt := 0; ; attempt++ {
		conn, reused, err := p.get(ctx)
		if err != nil {
			return err
		}
		stop := context.AfterFunc(ctx, func() { conn.Close() })
		err = fn(conn)
		if !stop() {
			// The context ended and closed the connection under fn.
			return ctx.Err()
		}
		if isNetwork(err) || conn.IsClosing() {
			conn.Close()
			if reused && attempt == 0 {
				continue
			}
			return err
		}
		p.put(conn)
		return err
	}
}

func (p *pool) get(ctx context.Context) (conn *ldap.Conn, reused bool, err error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, false, errors.New("provider is closed")
	}
	if n := len(p.idle); n > 0 {
		conn = p.idle[n-1]
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		return conn, true, nil
	}
	p.mu.Unlock()
	conn, err = p.dial(ctx)
	return conn, false, err
}

func (p *pool) put(conn *ldap.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		conn.Close()
		return
	}
	p.idle = append(p.idle, conn)
}

func (p *pool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for _, c := range p.idle {
		c.Close()
	}
	p.idle = nil
}

func isNetwork(err error) bool {
	if err == nil {
		return false
	}
	return ldap.IsErrorWithCode(err, ldap.ErrorNetwork) || ldap.IsErrorWithCode(err, ldap.LDAPResultServerDown) ||
		// A write to a connection the server (or a middlebox) closed, seen
		// before go-ldap's reader notices and marks it closing. go-ldap
		// flattens that error with %s, so only its text identifies it.
		strings.Contains(err.Error(), "unable to send request: ")
}

// dialer opens and binds connections for one provider.
type dialer struct {
	url      *url.URL
	startTLS bool
	tls      *tls.Config
	bindDN   string
	password string
	// wrap, when set, wraps every network connection; tests count round
	// trips with it.
	wrap func(net.Conn) net.Conn
}

func (d *dialer) dial(ctx context.Context) (*ldap.Conn, error) {
	host := d.url.Host
	isTLS := d.url.Scheme == "ldaps"
	if d.url.Port() == "" {
		port := "389"
		if isTLS {
			port = "636"
		}
		host = net.JoinHostPort(d.url.Hostname(), port)
	}
	var nd net.Dialer
	raw, err := nd.DialContext(ctx, "tcp", host)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", host, err)
	}
	if isTLS {
		tc := tls.Client(raw, d.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			raw.Close()
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, &tlsSetupError{fmt.Errorf("TLS with %s (check the server certificate and ca_file): %w", host, err)}
		}
		raw = tc
	}
	if d.wrap != nil {
		raw = d.wrap(raw)
	}
	conn := ldap.NewConn(raw, isTLS)
	conn.Start()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	err = d.setUp(conn)
	if !stop() {
		return nil, ctx.Err()
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

func (d *dialer) setUp(conn *ldap.Conn) error {
	if d.startTLS {
		if err := conn.StartTLS(d.tls); err != nil {
			if strings.Contains(err.Error(), "TLS handshake failed") {
				// go-ldap does not wrap the handshake's error; its text
				// is all there is to tell it from a broken connection.
				return &tlsSetupError{fmt.Errorf("StartTLS (check the server certificate and ca_file): %w", err)}
			}
			return fmt.Errorf("StartTLS: %w", err)
		}
	}
	if err := conn.Bind(d.bindDN, d.password); err != nil {
		return fmt.Errorf("binding as %s: %w", d.bindDN, err)
	}
	return nil
}

// tlsSetupError is a TLS handshake that failed, most often because the
// server's certificate does not verify: a configuration problem.
type tlsSetupError struct{ err error }

func (e *tlsSetupError) Error() string { return e.err.Error() }
func (e *tlsSetupError) Unwrap() error { return e.err }

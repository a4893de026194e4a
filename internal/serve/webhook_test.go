package serve

import (
	"bufio"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gitgrant/gitgrant/internal/testing/fakeclock"
)

// countingListener counts the bytes the HTTP server reads from its
// connections: what a client made it read, kernel buffers aside.
type countingListener struct {
	net.Listener
	read *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return countingConn{c, l.read}, nil
}

type countingConn struct {
	net.Conn
	read *atomic.Int64
}

func (c countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.read.Add(int64(n))
	return n, err
}

// serveCounting runs s's HTTP server, as Run configures it, on a loopback
// listener that counts what it reads.
func serveCounting(t *testing.T, s *Server) (addr string, read *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	read = new(atomic.Int64)
	srv := s.httpServer()
	go func() { _ = srv.Serve(countingListener{ln, read}) }() // ends with Close
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String(), read
}

func newTestServer(t *testing.T) *Server {
	w := newWorld(t, fakeclock.New(t0))
	return New(w.engine(fakeclock.New(t0)), Options{Clock: fakeclock.New(t0), WebhookSecret: []byte(secret)})
}

// upload sends a POST /webhook with headers and then body, the way a
// client that does not wait for the answer does, and returns the answer's
// status and how many body bytes the connection accepted.
func upload(t *testing.T, addr, headers string, body func(io.Writer) error) (status int, sent int64) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "POST /webhook HTTP/1.1\r\nHost: gitgrant\r\nX-GitHub-Event: push\r\n"+headers+"\r\n"); err != nil {
		t.Fatal(err)
	}
	cw := &countWriter{w: conn}
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		_ = body(cw) // fails once the server closes the connection
	}()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	resp.Body.Close()
	conn.Close()
	<-wrote
	return resp.StatusCode, cw.n.Load()
}

type countWriter struct {
	w io.Writer
	n atomic.Int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(int64(n))
	return n, err
}

// zeros writes n zero bytes in 64 KiB writes, or chunk-encoded when chunked.
func zeros(n int64, chunked bool) func(io.Writer) error {
	return func(w io.Writer) error {
		buf := make([]byte, 64<<10)
		for n > 0 {
			k := min(n, int64(len(buf)))
			var err error
			if chunked {
				_, err = fmt.Fprintf(w, "%x\r\n%s\r\n", k, buf[:k])
			} else {
				_, err = w.Write(buf[:k])
			}
			if err != nil {
				return err
			}
			n -= k
		}
		if chunked {
			_, err := io.WriteString(w, "0\r\n\r\n")
			return err
		}
		return nil
	}
}

// An unsigned 20 MB upload over a real connection is answered from its
// headers: the server reads the headers and what its first buffered read
// took, not the body, and closes the connection instead of draining it.
func TestUnsignedUploadIsNotRead(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	const size = 20 << 20
	forged := "X-Hub-Signature-256: sha256=" + strings.Repeat("0", 64) + "\r\n"
	for _, tc := range []struct {
		name, headers string
		chunked       bool
		want          int
	}{
		{"unsigned", fmt.Sprintf("Content-Type: application/json\r\nContent-Length: %d\r\n", size), false, http.StatusUnauthorized},
		{"unsigned, chunked", "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n", true, http.StatusUnauthorized},
		{"form-encoded, unsigned", fmt.Sprintf("Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n", size), false, http.StatusUnauthorized},
		{"signed, declared too large", fmt.Sprintf("Content-Type: application/json\r\nContent-Length: %d\r\n", size) + forged, false, http.StatusRequestEntityTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			addr, read := serveCounting(t, s)
			status, sent := upload(t, addr, tc.headers, zeros(size, tc.chunked))
			if status != tc.want {
				t.Errorf("status %d, want %d", status, tc.want)
			}
			t.Logf("%d-byte body: the server read %d bytes in all (the kernel took %d bytes of the body before the server closed)", size, read.Load(), sent)
			if got := read.Load(); got >= 64<<10 {
				t.Errorf("the server read %d bytes, want under 64 KiB", got)
			}
		})
	}
}

// 200 clients trickling unsigned bodies at once cost the server their
// headers, not their bodies: what it reads and the heap stay flat however
// much they send.
func TestSlowUnsignedUploadsKeepMemoryFlat(t *testing.T) {
	// Not parallel: it measures the heap.
	s := newTestServer(t)
	addr, read := serveCounting(t, s)
	const clients, chunk, chunks = 200, 1 << 10, 128 // 128 KiB each, 25 MiB in all
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)

	var sent atomic.Int64
	var wrote sync.WaitGroup
	release := make(chan struct{})
	var done sync.WaitGroup
	for range clients {
		wrote.Add(1)
		done.Go(func() {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Error(err)
				wrote.Done()
				return
			}
			defer conn.Close()
			header := "POST /webhook HTTP/1.1\r\nHost: gitgrant\r\nX-GitHub-Event: push\r\nContent-Type: application/json\r\nContent-Length: 20971520\r\n\r\n"
			if _, err := io.WriteString(conn, header); err == nil {
				buf := make([]byte, chunk)
				for range chunks {
					n, err := conn.Write(buf)
					sent.Add(int64(n))
					if err != nil {
						break
					}
					time.Sleep(time.Millisecond) // trickle
				}
			}
			wrote.Done()
			<-release // hold the connection open while the heap is measured
		})
	}
	wrote.Wait()
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	close(release)
	done.Wait()

	growth := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("%d slow unsigned uploads, %d body bytes sent: the server read %d bytes; heap %d -> %d bytes (%+d)",
		clients, sent.Load(), read.Load(), before.HeapAlloc, after.HeapAlloc, growth)
	if got := read.Load(); got > clients*(8<<10) {
		t.Errorf("the server read %d bytes, want at most 8 KiB per connection (%d)", got, clients*(8<<10))
	}
	if growth > clients*(16<<10) {
		t.Errorf("the heap grew by %d bytes, want at most 16 KiB per connection (%d)", growth, clients*(16<<10))
	}
}

// Every delivery is counted by event and outcome, and every series
// exists, at 0, from the first scrape.
func TestWebhookMetrics(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	h := s.Handler()
	for _, want := range missing(scrape(t, s),
		`gitgrant_webhook_deliveries_total{event="push",outcome="bad_signature"} 0`,
		`gitgrant_webhook_deliveries_total{event="ping",outcome="handled"} 0`,
		`gitgrant_webhook_deliveries_total{event="other",outcome="busy"} 0`,
		`gitgrant_webhook_deliveries_total{event="pull_request_review",outcome="bad_content_type"} 0`,
	) {
		t.Errorf("first scrape lacks %q", want)
	}
	deliver(t, h, "push", `{"ref":"refs/heads/main"}`)
	deliver(t, h, "ping", `{}`)
	deliver(t, h, "made-up-event-name", `{}`)
	payload := `{"action":"submitted"}`
	form := "payload=" + url.QueryEscape(payload)
	post := func(sig, contentType, body string) {
		r := httptest.NewRequest(http.MethodPost, "/webhook", strings.NewReader(body))
		r.Header.Set("X-GitHub-Event", "pull_request_review")
		r.Header.Set("Content-Type", contentType)
		r.Header.Set("X-Hub-Signature-256", sig)
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
	post(hmacHex(form), "application/x-www-form-urlencoded", form)
	post(hmacHex(payload), "text/plain", payload)
	post("sha256="+strings.Repeat("0", 64), "application/json", payload)
	post("", "application/json", payload)

	body := scrape(t, s)
	for _, want := range missing(body,
		`gitgrant_webhook_deliveries_total{event="push",outcome="handled"} 1`,
		`gitgrant_webhook_deliveries_total{event="ping",outcome="ignored"} 1`,
		`gitgrant_webhook_deliveries_total{event="other",outcome="ignored"} 1`,
		`gitgrant_webhook_deliveries_total{event="pull_request_review",outcome="handled"} 1`,
		`gitgrant_webhook_deliveries_total{event="pull_request_review",outcome="bad_content_type"} 1`,
		`gitgrant_webhook_deliveries_total{event="pull_request_review",outcome="bad_signature"} 2`,
	) {
		t.Errorf("/metrics lacks %q:\n%s", want, grep(body, "webhook"))
	}
	if strings.Contains(body, "made-up-event-name") {
		t.Errorf("an event name from a request became a label")
	}
}

func hmacHex(body string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(body))
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// The server bounds every phase of a connection.
func TestHTTPServerBounds(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t).httpServer()
	for name, d := range map[string]time.Duration{
		"ReadHeaderTimeout": srv.ReadHeaderTimeout, "ReadTimeout": srv.ReadTimeout,
		"WriteTimeout": srv.WriteTimeout, "IdleTimeout": srv.IdleTimeout,
	} {
		if d <= 0 {
			t.Errorf("%s is not set", name)
		}
	}
	if srv.MaxHeaderBytes <= 0 || srv.MaxHeaderBytes > 1<<20 {
		t.Errorf("MaxHeaderBytes = %d, want a bound under net/http's 1 MiB default", srv.MaxHeaderBytes)
	}
}

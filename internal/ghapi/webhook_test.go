package ghapi_test

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gitgrant/gitgrant/internal/ghapi"
)

// GitHub's documented test vector for X-Hub-Signature-256.
func TestSignatureTestVector(t *testing.T) {
	t.Parallel()
	secret := []byte("It's a Secret to Everybody")
	body := []byte("Hello, World!")
	tests := []struct {
		header string
		want   bool
	}{
		{"sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17", true},
		{"sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e18", false},
		{"757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17", false},
		{"sha1=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17", false},
		{"sha256=not-hex", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := ghapi.ValidSignature(secret, body, tt.header); got != tt.want {
			t.Errorf("ValidSignature(%q) = %v, want %v", tt.header, got, tt.want)
		}
	}
	if ghapi.ValidSignature(nil, body, tests[0].header) {
		t.Error("an empty secret validated a signature")
	}
}

func sign(secret, body string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(body))
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

func TestWebhookHandler(t *testing.T) {
	t.Parallel()
	const secret = "s3cret"
	push := `{"ref":"refs/heads/main","after":"abc","repository":{"full_name":"acme/access"}}`
	pr := `{"action":"synchronize","number":5,"pull_request":{"number":5}}`
	merged := `{"action":"closed","number":6,"pull_request":{"number":6,"merged":true}}`
	review := `{"action":"submitted","review":{"id":9,"state":"approved"},"pull_request":{"number":5}}`
	ping := `{"zen":"Keep it logically awesome."}`
	const form = "application/x-www-form-urlencoded"
	tests := []struct {
		name        string
		method      string
		event       string
		body        string
		contentType string // "" means application/json; "-" none
		sig         string // "" means a correct one
		secret      string
		maxBody     int64
		chunked     bool
		failWith    error
		wantStatus  int
		wantCalled  string
		wantOutcome string
		wantBody    string // in the answer, when set
	}{
		{name: "push", event: "push", body: push, wantStatus: 202, wantCalled: "push refs/heads/main", wantOutcome: "push handled"},
		{name: "pull_request", event: "pull_request", body: pr, wantStatus: 202, wantCalled: "pull_request synchronize 5", wantOutcome: "pull_request handled"},
		{name: "pull_request merged", event: "pull_request", body: merged, wantStatus: 202, wantCalled: "pull_request closed 6 merged", wantOutcome: "pull_request handled"},
		{name: "pull_request_review", event: "pull_request_review", body: review, wantStatus: 202, wantCalled: "review submitted 5", wantOutcome: "pull_request_review handled"},
		{name: "other events are acknowledged and ignored", event: "issues", body: `{"action":"opened"}`, wantStatus: 202, wantOutcome: "other ignored"},
		{name: "ping", event: "ping", body: ping, wantStatus: 202, wantOutcome: "ping ignored"},
		{name: "JSON with a charset", event: "push", body: push, contentType: "application/json; charset=utf-8", wantStatus: 202, wantCalled: "push refs/heads/main", wantOutcome: "push handled"},
		{name: "no content type is JSON", event: "push", body: push, contentType: "-", wantStatus: 202, wantCalled: "push refs/heads/main", wantOutcome: "push handled"},
		{name: "form-encoded push", event: "push", body: formBody(push), contentType: form, wantStatus: 202, wantCalled: "push refs/heads/main", wantOutcome: "push handled"},
		{name: "form-encoded review", event: "pull_request_review", body: formBody(review), contentType: form, wantStatus: 202, wantCalled: "review submitted 5", wantOutcome: "pull_request_review handled"},
		{name: "form-encoded ping", event: "ping", body: formBody(ping), contentType: form, wantStatus: 202, wantOutcome: "ping ignored"},
		{name: "form-encoded without payload", event: "push", body: "zen=x", contentType: form, wantStatus: 400, wantOutcome: "push bad_payload"},
		{name: "other content type", event: "push", body: push, contentType: "text/plain", wantStatus: 415, wantOutcome: "push bad_content_type", wantBody: "set the webhook's content type to application/json"},
		{name: "other content type, ping too", event: "ping", body: ping, contentType: "application/xml", wantStatus: 415, wantOutcome: "ping bad_content_type"},
		{name: "bad signature", event: "push", body: push, sig: sign("wrong", push), wantStatus: 401, wantOutcome: "push bad_signature"},
		{name: "signature of the decoded payload", event: "push", body: formBody(push), contentType: form, sig: sign(secret, push), wantStatus: 401, wantOutcome: "push bad_signature"},
		{name: "missing signature", event: "push", body: push, sig: "none", wantStatus: 401, wantOutcome: "push bad_signature", wantBody: "set a secret on the webhook"},
		{name: "short signature", event: "push", body: push, sig: "sha256=00", wantStatus: 401, wantOutcome: "push bad_signature"},
		{name: "sha1 signature", event: "push", body: push, sig: "sha1=" + strings.Repeat("0", 40), wantStatus: 401, wantOutcome: "push bad_signature"},
		{name: "body over the limit", event: "push", body: push, maxBody: 10, wantStatus: 413, wantOutcome: "push too_large"},
		{name: "chunked body over the limit", event: "push", body: push, maxBody: 10, chunked: true, wantStatus: 413, wantOutcome: "push too_large"},
		{name: "not a POST", method: http.MethodGet, event: "push", body: push, wantStatus: 405},
		{name: "no secret configured fails closed", event: "push", body: push, secret: "-", wantStatus: 503, wantOutcome: "push no_secret"},
		{name: "unreadable payload", event: "push", body: `{"ref":`, wantStatus: 400, wantOutcome: "push bad_payload"},
		{name: "callback failure", event: "push", body: push, failWith: errors.New("queue full"), wantStatus: 500, wantCalled: "push refs/heads/main", wantOutcome: "push failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var called, outcome string
			h := &ghapi.Webhook{
				Secret:  []byte(secret),
				MaxBody: tt.maxBody,
				OnPush: func(_ context.Context, ref string) error {
					called = "push " + ref
					return tt.failWith
				},
				OnPullRequest: func(_ context.Context, number int, action string, merged bool) error {
					called = "pull_request " + action + " " + itoa(number)
					if merged {
						called += " merged"
					}
					return tt.failWith
				},
				OnPullRequestReview: func(_ context.Context, number int, action string) error {
					called = "review " + action + " " + itoa(number)
					return tt.failWith
				},
				Observe: func(event, o string) { outcome = event + " " + o },
			}
			if tt.secret == "-" {
				h.Secret = nil
			}
			method := tt.method
			if method == "" {
				method = http.MethodPost
			}
			var body io.Reader = strings.NewReader(tt.body)
			if tt.chunked {
				body = io.MultiReader(body) // hides the length
			}
			req := httptest.NewRequest(method, "/webhook", body)
			req.Header.Set("X-GitHub-Event", tt.event)
			req.Header.Set("X-GitHub-Delivery", "d-1")
			switch tt.contentType {
			case "":
				req.Header.Set("Content-Type", "application/json")
			case "-":
			default:
				req.Header.Set("Content-Type", tt.contentType)
			}
			switch tt.sig {
			case "":
				req.Header.Set("X-Hub-Signature-256", sign(secret, tt.body))
			case "none":
			default:
				req.Header.Set("X-Hub-Signature-256", tt.sig)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.wantStatus {
				t.Errorf("status %d, want %d (%s)", rec.Code, tt.wantStatus, rec.Body.String())
			}
			if called != tt.wantCalled {
				t.Errorf("called %q, want %q", called, tt.wantCalled)
			}
			if !strings.Contains(rec.Body.String(), tt.wantBody) {
				t.Errorf("answer %q lacks %q", rec.Body.String(), tt.wantBody)
			}
			if outcome != tt.wantOutcome {
				t.Errorf("observed %q, want %q", outcome, tt.wantOutcome)
			}
		})
	}
}

// formBody is a delivery of a webhook whose content type is
// application/x-www-form-urlencoded.
func formBody(payload string) string { return "payload=" + url.QueryEscape(payload) }

func itoa(n int) string { return strconv.Itoa(n) }

// countingBody is a request body of n bytes that counts what is read.
type countingBody struct {
	left, read int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	if b.left == 0 {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), b.left))
	clear(p[:n])
	b.left -= int64(n)
	b.read += int64(n)
	return n, nil
}

func (b *countingBody) Close() error { return nil }

// A delivery refused from its headers costs no body bytes: an unsigned
// 20 MB upload is answered before any of it is read, and the connection
// is closed instead of drained.
func TestWebhookRefusesBeforeReading(t *testing.T) {
	t.Parallel()
	const size = 20 << 20
	tests := []struct {
		name        string
		sig         string
		contentType string
		length      int64 // Content-Length; -1 unknown (chunked)
		secret      string
		wantStatus  int
		maxRead     int64
	}{
		{name: "unsigned", length: size, wantStatus: 401},
		{name: "unsigned, chunked", length: -1, wantStatus: 401},
		{name: "malformed signature", sig: "sha256=abc", length: size, wantStatus: 401},
		{name: "unsupported content type", sig: "sha256=" + strings.Repeat("0", 64), contentType: "text/plain", length: size, wantStatus: 415},
		{name: "declared too large", sig: "sha256=" + strings.Repeat("0", 64), length: size, wantStatus: 413},
		{name: "no secret", length: size, secret: "-", wantStatus: 503},
		// Past the headers only a limited read: the signature is checked
		// once the body is in.
		{name: "forged signature, chunked", sig: "sha256=" + strings.Repeat("0", 64), length: -1, wantStatus: 413, maxRead: ghapi.DefaultMaxWebhookBody + 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := &ghapi.Webhook{Secret: []byte("s3cret")}
			if tt.secret == "-" {
				h.Secret = nil
			}
			body := &countingBody{left: size}
			req := httptest.NewRequest(http.MethodPost, "/webhook", nil)
			req.Body, req.ContentLength = body, tt.length
			req.Header.Set("X-GitHub-Event", "push")
			req.Header.Set("Content-Type", "application/json")
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			if tt.sig != "" {
				req.Header.Set("X-Hub-Signature-256", tt.sig)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.wantStatus {
				t.Errorf("status %d, want %d (%s)", rec.Code, tt.wantStatus, rec.Body.String())
			}
			if body.read > tt.maxRead {
				t.Errorf("read %d bytes of the body, want at most %d", body.read, tt.maxRead)
			}
			if got := rec.Header().Get("Connection"); got != "close" {
				t.Errorf("Connection: %q, want close", got)
			}
		})
	}
}

// signalBody blocks every read until closed, and says when reading began.
type signalBody struct {
	reading chan struct{}
	once    sync.Once
	closed  chan struct{}
}

func (b *signalBody) Read([]byte) (int, error) {
	b.once.Do(func() { close(b.reading) })
	<-b.closed
	return 0, io.ErrUnexpectedEOF
}

func (b *signalBody) Close() error { return nil }

// Past MaxConcurrent deliveries being read, the next is refused at once
// with 503 and Retry-After, and a slot is free again when a read ends.
func TestWebhookBoundsConcurrentDeliveries(t *testing.T) {
	t.Parallel()
	const secret = "s3cret"
	var mu sync.Mutex
	outcomes := map[string]int{}
	h := &ghapi.Webhook{Secret: []byte(secret), MaxConcurrent: 2,
		OnPush:  func(context.Context, string) error { return nil },
		Observe: func(_, o string) { mu.Lock(); outcomes[o]++; mu.Unlock() }}
	post := func(body io.ReadCloser, sig string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, "/webhook", nil)
		req.Body, req.ContentLength = body, -1
		req.Header.Set("X-GitHub-Event", "push")
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Hub-Signature-256", sig)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	forged := "sha256=" + strings.Repeat("0", 64)
	var slow []*signalBody
	var wg sync.WaitGroup
	for range 2 {
		b := &signalBody{reading: make(chan struct{}), closed: make(chan struct{})}
		slow = append(slow, b)
		wg.Go(func() { post(b, forged) })
		<-b.reading
	}
	rec := post(io.NopCloser(strings.NewReader(`{}`)), forged)
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
		t.Errorf("third delivery: status %d, Retry-After %q; want 503 with Retry-After", rec.Code, rec.Header().Get("Retry-After"))
	}
	for _, b := range slow {
		close(b.closed)
	}
	wg.Wait()
	push := `{"ref":"refs/heads/main"}`
	if rec := post(io.NopCloser(strings.NewReader(push)), sign(secret, push)); rec.Code != http.StatusAccepted {
		t.Errorf("delivery after the slow ones: status %d", rec.Code)
	}
	want := map[string]int{ghapi.OutcomeBusy: 1, ghapi.OutcomeUnreadable: 2, ghapi.OutcomeHandled: 1}
	if diff := cmp.Diff(want, outcomes); diff != "" {
		t.Errorf("outcomes (-want +got):\n%s", diff)
	}
}

// A body that stops arriving is given up after BodyTimeout, and its slot
// freed: GitHub sends a delivery at once.
func TestWebhookBodyDeadline(t *testing.T) {
	t.Parallel()
	outcome := make(chan string, 1)
	h := &ghapi.Webhook{Secret: []byte("s3cret"), MaxConcurrent: 1, BodyTimeout: 50 * time.Millisecond,
		Observe: func(_, o string) { outcome <- o }}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Half a body, then nothing.
	if _, err := io.WriteString(conn, "POST / HTTP/1.1\r\nHost: x\r\nX-GitHub-Event: push\r\nContent-Type: application/json\r\n"+
		"X-Hub-Signature-256: sha256="+strings.Repeat("0", 64)+"\r\nContent-Length: 100\r\n\r\n{\"ref\":"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("status %d, want 400", resp.StatusCode)
	}
	if got := <-outcome; got != ghapi.OutcomeUnreadable {
		t.Errorf("outcome %q, want %q", got, ghapi.OutcomeUnreadable)
	}
}

package ghapi_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-github/v60/github"

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
	review := `{"action":"submitted","review":{"id":9,"state":"approved"},"pull_request":{"number":5}}`
	tests := []struct {
		name       string
		method     string
		event      string
		body       string
		sig        string // "" means a correct one
		secret     string
		maxBody    int64
		failWith   error
		wantStatus int
		wantCalled string
	}{
		{name: "push", event: "push", body: push, wantStatus: 202, wantCalled: "push refs/heads/main"},
		{name: "pull_request", event: "pull_request", body: pr, wantStatus: 202, wantCalled: "pull_request synchronize 5"},
		{name: "pull_request_review", event: "pull_request_review", body: review, wantStatus: 202, wantCalled: "review submitted 9"},
		{name: "other events are acknowledged and ignored", event: "issues", body: `{"action":"opened"}`, wantStatus: 202},
		{name: "ping", event: "ping", body: `{"zen":"Keep it logically awesome."}`, wantStatus: 202},
		{name: "bad signature", event: "push", body: push, sig: sign("wrong", push), wantStatus: 401},
		{name: "missing signature", event: "push", body: push, sig: "none", wantStatus: 401},
		{name: "body over the limit", event: "push", body: push, maxBody: 10, wantStatus: 413},
		{name: "not a POST", method: http.MethodGet, event: "push", body: push, wantStatus: 405},
		{name: "no secret configured fails closed", event: "push", body: push, secret: "-", wantStatus: 503},
		{name: "unreadable payload", event: "push", body: `{"ref":`, wantStatus: 400},
		{name: "callback failure", event: "push", body: push, failWith: errors.New("queue full"), wantStatus: 500, wantCalled: "push refs/heads/main"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var called string
			h := &ghapi.Webhook{
				Secret:  []byte(secret),
				MaxBody: tt.maxBody,
				OnPush: func(_ context.Context, e *github.PushEvent) error {
					called = "push " + e.GetRef()
					return tt.failWith
				},
				OnPullRequest: func(_ context.Context, e *github.PullRequestEvent) error {
					called = "pull_request " + e.GetAction() + " " + itoa(e.GetNumber())
					return tt.failWith
				},
				OnPullRequestReview: func(_ context.Context, e *github.PullRequestReviewEvent) error {
					called = "review " + e.GetAction() + " " + itoa(int(e.GetReview().GetID()))
					return tt.failWith
				},
			}
			if tt.secret == "-" {
				h.Secret = nil
			}
			method := tt.method
			if method == "" {
				method = http.MethodPost
			}
			req := httptest.NewRequest(method, "/webhook", strings.NewReader(tt.body))
			req.Header.Set("X-GitHub-Event", tt.event)
			req.Header.Set("X-GitHub-Delivery", "d-1")
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
		})
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

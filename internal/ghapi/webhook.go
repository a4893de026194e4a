package ghapi

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/google/go-github/v60/github"
)

// DefaultMaxWebhookBody is GitHub's own cap on a webhook payload (25 MB).
const DefaultMaxWebhookBody = 25 << 20

// Webhook receives GitHub webhook deliveries for `gitgrant serve`. It
// checks X-Hub-Signature-256 in constant time before reading anything
// else, limits the body, and hands push, pull_request and
// pull_request_review events to the callbacks (which should only trigger
// work, not do it). Every other event is acknowledged and ignored.
type Webhook struct {
	Secret  []byte
	MaxBody int64

	OnPush              func(ctx context.Context, e *github.PushEvent) error
	OnPullRequest       func(ctx context.Context, e *github.PullRequestEvent) error
	OnPullRequestReview func(ctx context.Context, e *github.PullRequestReviewEvent) error

	Logger *slog.Logger
}

// ValidSignature reports whether header ("sha256=<hex>") is the HMAC-SHA256
// of body under secret, compared in constant time.
func ValidSignature(secret, body []byte, header string) bool {
	hexSig, ok := strings.CutPrefix(header, "sha256=")
	if !ok || len(secret) == 0 {
		return false
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return hmac.Equal(got, mac.Sum(nil))
}

func (h *Webhook) logger() *slog.Logger {
	if h.Logger != nil {
		return h.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// ServeHTTP implements http.Handler.
func (h *Webhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if len(h.Secret) == 0 {
		// Fail closed: without a secret nobody's delivery can be trusted.
		http.Error(w, "webhook secret not configured", http.StatusServiceUnavailable)
		return
	}
	limit := h.MaxBody
	if limit <= 0 {
		limit = DefaultMaxWebhookBody
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, "payload too large", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "cannot read payload", http.StatusBadRequest)
		return
	}
	event := r.Header.Get("X-GitHub-Event")
	delivery := r.Header.Get("X-GitHub-Delivery")
	log := h.logger().With("event", event, "delivery", delivery)
	if !ValidSignature(h.Secret, body, r.Header.Get("X-Hub-Signature-256")) {
		log.Warn("webhook signature rejected")
		http.Error(w, "invalid signature", http.StatusUnauthorized)
		return
	}
	ctx := r.Context()
	var handle func() error
	switch event {
	case "push":
		handle = dispatch(ctx, body, h.OnPush)
	case "pull_request":
		handle = dispatch(ctx, body, h.OnPullRequest)
	case "pull_request_review":
		handle = dispatch(ctx, body, h.OnPullRequestReview)
	}
	if handle == nil {
		log.Debug("webhook event ignored")
		w.WriteHeader(http.StatusAccepted)
		return
	}
	if err := handle(); err != nil {
		var bad badPayload
		if errors.As(err, &bad) {
			log.Warn("webhook payload unreadable", "err", err)
			http.Error(w, "unreadable payload", http.StatusBadRequest)
			return
		}
		log.Error("webhook handling failed", "err", err)
		http.Error(w, "handling failed", http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

type badPayload struct{ error }

// dispatch decodes body as E and calls fn; nil when there is no callback.
func dispatch[E any](ctx context.Context, body []byte, fn func(context.Context, *E) error) func() error {
	if fn == nil {
		return nil
	}
	return func() error {
		e := new(E)
		if err := json.Unmarshal(body, e); err != nil {
			return badPayload{err}
		}
		return fn(ctx, e)
	}
}

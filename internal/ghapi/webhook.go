package ghapi

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/google/go-github/v60/github"
)

// DefaultMaxWebhookBody bounds a delivery's body (1 MiB). GitHub caps
// payloads at 25 MB, but the events serve acts on are small for an access
// repository: a pull_request or pull_request_review payload is the pull
// request, the repository and the sender, with a review or pull request
// body of at most 65536 characters (tens of KB in all); a push payload
// lists at most 2048 commits with their changed paths, and a merge of a
// request or a cleanup commit lists a handful. 1 MiB leaves a wide margin
// (a form-encoded body is about twice its JSON); a delivery over it is
// refused (413, counted as too_large) and the resync catches up.
const DefaultMaxWebhookBody = 1 << 20

// DefaultMaxConcurrentDeliveries bounds the deliveries read at once; with
// DefaultMaxWebhookBody it bounds the memory bodies take to 16 MiB.
const DefaultMaxConcurrentDeliveries = 16

// DefaultWebhookBodyTimeout bounds reading one body. GitHub gives up on a
// delivery after 10 seconds, so a body still arriving then is not GitHub's.
const DefaultWebhookBodyTimeout = 10 * time.Second

// Delivery outcomes, as Webhook.Observe reports them.
const (
	OutcomeHandled        = "handled"          // a push, pull_request or pull_request_review passed to its callback
	OutcomeIgnored        = "ignored"          // a verified event serve does not act on (ping, ...)
	OutcomeBadSignature   = "bad_signature"    // X-Hub-Signature-256 missing, malformed or wrong: a wrong secret, or not GitHub
	OutcomeBadContentType = "bad_content_type" // neither JSON nor form-encoded
	OutcomeTooLarge       = "too_large"        // over MaxBody
	OutcomeBusy           = "busy"             // MaxConcurrent deliveries were being read
	OutcomeUnreadable     = "unreadable"       // the body could not be read in time
	OutcomeBadPayload     = "bad_payload"      // verified, but not the event's JSON
	OutcomeFailed         = "failed"           // the callback failed
	OutcomeNoSecret       = "no_secret"        // no secret configured: every delivery is refused
)

// WebhookOutcomes lists every outcome, for metrics that exist before the
// first delivery.
func WebhookOutcomes() []string {
	return []string{OutcomeHandled, OutcomeIgnored, OutcomeBadSignature, OutcomeBadContentType, OutcomeTooLarge,
		OutcomeBusy, OutcomeUnreadable, OutcomeBadPayload, OutcomeFailed, OutcomeNoSecret}
}

// WebhookEvents lists the event labels Observe reports: the events serve
// knows, and "other" for any other X-GitHub-Event (a header anyone can
// send, so it is never used as a label as it is).
func WebhookEvents() []string {
	return []string{"push", "pull_request", "pull_request_review", "ping", "other"}
}

func eventLabel(event string) string {
	switch event {
	case "push", "pull_request", "pull_request_review", "ping":
		return event
	}
	return "other"
}

// Webhook receives GitHub webhook deliveries for `gitgrant serve`. Before
// it reads any of the body it refuses a delivery without a well-formed
// X-Hub-Signature-256, one whose Content-Length is over MaxBody, one that
// is neither application/json nor application/x-www-form-urlencoded (both
// are GitHub content types), and one that would exceed MaxConcurrent
// deliveries being read; every refusal closes the connection. Then it
// reads at most MaxBody bytes within BodyTimeout, checks the signature
// over those raw bytes in constant time, takes the JSON (from the payload
// field of a form-encoded body), and hands push, pull_request and
// pull_request_review events to the callbacks (which should only trigger
// work, not do it). Every other event is acknowledged and ignored.
type Webhook struct {
	Secret []byte
	// MaxBody, MaxConcurrent and BodyTimeout: 0 means the defaults above.
	MaxBody       int64
	MaxConcurrent int
	BodyTimeout   time.Duration

	// OnPush is told the ref pushed to ("refs/heads/main").
	OnPush func(ctx context.Context, ref string) error
	// OnPullRequest is told the pull request, the action ("opened",
	// "synchronize", "closed", ...) and whether it is merged.
	OnPullRequest func(ctx context.Context, number int, action string, merged bool) error
	// OnPullRequestReview is told the pull request and the action
	// ("submitted", "edited", "dismissed").
	OnPullRequestReview func(ctx context.Context, number int, action string) error

	// Observe, when set, is told every POST's event label (WebhookEvents)
	// and outcome (WebhookOutcomes).
	Observe func(event, outcome string)
	Logger  *slog.Logger

	slotsOnce sync.Once
	slots     chan struct{}
}

// ValidSignature reports whether header ("sha256=<hex>") is the HMAC-SHA256
// of body under secret, compared in constant time.
func ValidSignature(secret, body []byte, header string) bool {
	got, ok := signature(header)
	if !ok || len(secret) == 0 {
		return false
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return hmac.Equal(got, mac.Sum(nil))
}

// signature decodes a well-formed header: "sha256=" and 64 hex digits.
func signature(header string) ([]byte, bool) {
	hexSig, ok := strings.CutPrefix(header, "sha256=")
	if !ok || len(hexSig) != 2*sha256.Size {
		return nil, false
	}
	got, err := hex.DecodeString(hexSig)
	return got, err == nil
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
	event := r.Header.Get("X-GitHub-Event")
	log := h.logger().With("event", event, "delivery", r.Header.Get("X-GitHub-Delivery"))
	outcome := h.serve(w, r, event, log)
	if h.Observe != nil {
		h.Observe(eventLabel(event), outcome)
	}
}

// refusal is a delivery refused with a status and a message for the
// webhook's "Recent Deliveries" page.
type refusal struct {
	outcome string
	status  int
	message string
}

// refuse answers and closes the connection. The server would otherwise
// read (drain) up to 256 KiB of a body nobody will use, to reuse the
// connection: a read deadline in the past stops that read.
func refuse(w http.ResponseWriter, f refusal) string {
	w.Header().Set("Connection", "close")
	http.Error(w, f.message, f.status)
	_ = http.NewResponseController(w).SetReadDeadline(time.Unix(1, 0))
	return f.outcome
}

func (h *Webhook) serve(w http.ResponseWriter, r *http.Request, event string, log *slog.Logger) string {
	if f, ok := h.admit(r); !ok {
		// Not a warning: anyone can send these. The metric counts them.
		log.Debug("webhook delivery refused from its headers", "outcome", f.outcome)
		return refuse(w, f)
	}
	if !h.acquire() {
		w.Header().Set("Retry-After", "10")
		log.Warn("webhook delivery refused: too many deliveries being read at once")
		return refuse(w, refusal{OutcomeBusy, http.StatusServiceUnavailable, "too many deliveries at once; retry later"})
	}
	defer h.release()
	raw, f, ok := h.read(w, r)
	if !ok {
		return refuse(w, f)
	}
	if !ValidSignature(h.Secret, raw, r.Header.Get("X-Hub-Signature-256")) {
		log.Warn("webhook signature rejected: check that the webhook's secret is the one serve has")
		return refuse(w, refusal{OutcomeBadSignature, http.StatusUnauthorized, "invalid signature"})
	}
	payload, err := jsonPayload(r, raw)
	if err != nil {
		log.Warn("webhook payload unreadable", "err", err)
		return refuse(w, refusal{OutcomeBadPayload, http.StatusBadRequest, err.Error()})
	}
	return h.dispatch(r.Context(), w, event, payload, log)
}

// admit checks, from the headers alone, what can be refused without
// reading the body.
func (h *Webhook) admit(r *http.Request) (refusal, bool) {
	if len(h.Secret) == 0 {
		// Fail closed: without a secret nobody's delivery can be trusted.
		return refusal{OutcomeNoSecret, http.StatusServiceUnavailable, "webhook secret not configured"}, false
	}
	if _, ok := signature(r.Header.Get("X-Hub-Signature-256")); !ok {
		return refusal{OutcomeBadSignature, http.StatusUnauthorized, "missing or malformed X-Hub-Signature-256 (sha256=<64 hex digits>): set a secret on the webhook"}, false
	}
	if _, err := contentType(r); err != nil {
		return refusal{OutcomeBadContentType, http.StatusUnsupportedMediaType, err.Error()}, false
	}
	if r.ContentLength > h.maxBody() {
		return refusal{OutcomeTooLarge, http.StatusRequestEntityTooLarge, tooLarge(h.maxBody())}, false
	}
	return refusal{}, true
}

func tooLarge(limit int64) string {
	return fmt.Sprintf("payload over %d bytes", limit)
}

// contentType reports whether r's body is form-encoded (else JSON; an
// absent Content-Type is taken as JSON), or why it is neither.
func contentType(r *http.Request) (form bool, err error) {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return false, nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	switch {
	case err == nil && mt == "application/json":
		return false, nil
	case err == nil && mt == "application/x-www-form-urlencoded":
		return true, nil
	}
	return false, fmt.Errorf("unsupported Content-Type %q: set the webhook's content type to application/json (application/x-www-form-urlencoded works too)", ct)
}

func (h *Webhook) maxBody() int64 {
	if h.MaxBody > 0 {
		return h.MaxBody
	}
	return DefaultMaxWebhookBody
}

func (h *Webhook) acquire() bool {
	h.slotsOnce.Do(func() {
		n := h.MaxConcurrent
		if n <= 0 {
			n = DefaultMaxConcurrentDeliveries
		}
		h.slots = make(chan struct{}, n)
	})
	select {
	case h.slots <- struct{}{}:
		return true
	default:
		return false
	}
}

func (h *Webhook) release() { <-h.slots }

// read reads the raw body, at most MaxBody bytes within BodyTimeout.
func (h *Webhook) read(w http.ResponseWriter, r *http.Request) ([]byte, refusal, bool) {
	timeout := h.BodyTimeout
	if timeout <= 0 {
		timeout = DefaultWebhookBodyTimeout
	}
	// A network deadline is wall-clock time by nature. Servers that cannot
	// set one (tests' recorders) rely on their own timeouts.
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(timeout))
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.maxBody()))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, refusal{OutcomeTooLarge, http.StatusRequestEntityTooLarge, tooLarge(h.maxBody())}, false
		}
		return nil, refusal{OutcomeUnreadable, http.StatusBadRequest, "cannot read payload"}, false
	}
	return body, refusal{}, true
}

// jsonPayload is the event's JSON: the body, or for a form-encoded body
// its payload field. The signature covers the raw body either way.
func jsonPayload(r *http.Request, raw []byte) ([]byte, error) {
	form, err := contentType(r)
	if err != nil || !form {
		return raw, err
	}
	values, err := url.ParseQuery(string(raw))
	if err != nil {
		return nil, fmt.Errorf("form-encoded body: %v", err)
	}
	payload := values.Get("payload")
	if payload == "" {
		return nil, errors.New("form-encoded body without a payload field")
	}
	return []byte(payload), nil
}

func (h *Webhook) dispatch(ctx context.Context, w http.ResponseWriter, event string, payload []byte, log *slog.Logger) string {
	handle := h.handler(ctx, event, payload)
	if handle == nil {
		log.Debug("webhook event ignored")
		w.WriteHeader(http.StatusAccepted)
		return OutcomeIgnored
	}
	if err := handle(); err != nil {
		var bad badPayload
		if errors.As(err, &bad) {
			log.Warn("webhook payload unreadable", "err", err)
			http.Error(w, "unreadable payload", http.StatusBadRequest)
			return OutcomeBadPayload
		}
		log.Error("webhook handling failed", "err", err)
		http.Error(w, "handling failed", http.StatusInternalServerError)
		return OutcomeFailed
	}
	w.WriteHeader(http.StatusAccepted)
	return OutcomeHandled
}

type badPayload struct{ error }

// handler decodes the payload of an event with a callback and calls it
// with what it needs; nil when there is no callback for the event.
func (h *Webhook) handler(ctx context.Context, event string, payload []byte) func() error {
	switch {
	case event == "push" && h.OnPush != nil:
		return decoded(payload, func(e *github.PushEvent) error { return h.OnPush(ctx, e.GetRef()) })
	case event == "pull_request" && h.OnPullRequest != nil:
		return decoded(payload, func(e *github.PullRequestEvent) error {
			return h.OnPullRequest(ctx, e.GetPullRequest().GetNumber(), e.GetAction(), e.GetPullRequest().GetMerged())
		})
	case event == "pull_request_review" && h.OnPullRequestReview != nil:
		return decoded(payload, func(e *github.PullRequestReviewEvent) error {
			return h.OnPullRequestReview(ctx, e.GetPullRequest().GetNumber(), e.GetAction())
		})
	}
	return nil
}

// decoded decodes payload as E and hands it to fn.
func decoded[E any](payload []byte, fn func(*E) error) func() error {
	return func() error {
		e := new(E)
		if err := json.Unmarshal(payload, e); err != nil {
			return badPayload{err}
		}
		return fn(e)
	}
}

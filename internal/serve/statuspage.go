package serve

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	_ "embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/engine"
	"github.com/gitgrant/gitgrant/reconciler"
)

// StatusPage is the read-only page of what `serve` knows after its last
// pass: who holds what (observed in the providers beside desired from
// git), upcoming starts and expiries, recent events, roles it could not
// observe, the verified policy in force and what holds grants back. It
// keeps a copy of what it shows, never the pass itself.
type StatusPage struct {
	clock gitgrant.Clock

	mu     sync.Mutex
	last   *statusView
	events []statusEvent // newest first, at most maxEvents
}

// maxEvents bounds the recent events kept in memory.
const maxEvents = 100

// NewStatusPage returns an empty page; Record fills it after each pass.
func NewStatusPage(clock gitgrant.Clock) *StatusPage {
	return &StatusPage{clock: gitgrant.ClockOr(clock)}
}

type statusView struct {
	At       time.Time
	Trigger  string
	Error    string
	Holds    []holdRow
	Upcoming []upcomingRow
	// Unobserved are roles whose members could not be listed; Problems
	// the systems the pass could not read.
	Unobserved []string
	Problems   []string
	Policy     *gitgrant.PolicyInForce
	// Paused say why grants are held back; Held are the revocations the
	// removal brake held.
	Paused []string
	Held   []gitgrant.Action
}

// holdRow is one membership, as desired and as observed.
type holdRow struct {
	Provider, Role, Principal string
	// Desired: the request that asks for it now.
	Request, Requester, Reason string
	Until                      time.Time
	Emergency                  bool
	Standing                   bool
	// Observed: "yes", "no" or "unknown" (the role could not be listed).
	Observed string
	// GrantedAt is when gitgrant's ledger says it granted it.
	GrantedAt time.Time
	State     string
}

type upcomingRow struct {
	At                        time.Time
	What                      string // "starts" or "ends"
	Provider, Role, Principal string
	Request, Requester        string
}

type statusEvent struct {
	At                        time.Time
	Op                        string
	Provider, Role, Principal string
	Request, Cause, Error     string
}

// Record copies what a pass found and did; err is the pass's error (the
// repository could not be read when p is nil).
func (sp *StatusPage) Record(p *engine.Pass, out engine.Outcome, trigger string, at time.Time, err error) {
	v := &statusView{At: at.UTC(), Trigger: trigger}
	if err != nil {
		v.Error = err.Error()
	}
	var events []statusEvent
	if p != nil {
		fillView(v, p, out, at.UTC())
		for _, o := range out.Result.Outcomes {
			a := o.Action
			ev := statusEvent{At: at.UTC(), Op: string(a.Op), Provider: a.Provider, Role: a.Role, Principal: a.Principal, Request: a.Request, Cause: string(a.Cause)}
			if o.Err != nil {
				ev.Error = o.Err.Error()
			}
			events = append(events, ev)
		}
	}
	if err != nil && len(events) == 0 {
		events = append(events, statusEvent{At: at.UTC(), Op: "pass", Error: err.Error()})
	}
	sp.mu.Lock()
	defer sp.mu.Unlock()
	sp.last = v
	sp.events = append(events, sp.events...)
	if len(sp.events) > maxEvents {
		sp.events = sp.events[:maxEvents]
	}
}

// fillView shows the pass as it left things: what the providers listed,
// changed by the grants and revocations that succeeded.
func fillView(v *statusView, p *engine.Pass, out engine.Outcome, at time.Time) {
	rows := map[gitgrant.MemberKey]*holdRow{}
	row := func(k gitgrant.MemberKey) *holdRow {
		if r, ok := rows[k]; ok {
			return r
		}
		r := &holdRow{Provider: k.Provider, Role: k.Role, Principal: k.Principal, Observed: "unknown"}
		if p.Config != nil {
			if pc, ok := p.Config.Providers[k.Provider]; ok {
				r.Standing = pc.IsStanding(k.Principal, k.Role)
			}
		}
		rows[k] = r
		return r
	}
	for _, en := range p.Plan.Entries {
		if en.Status != gitgrant.StatusActive && en.Status != gitgrant.StatusPending {
			continue
		}
		reason := ""
		if r, ok := p.Requests[en.Path]; ok && r.File.Request != nil {
			reason = r.File.Request.Reason
		}
		for _, g := range en.Grants {
			if en.Status == gitgrant.StatusPending || !g.Window.Contains(p.At) {
				if g.Window.Start.After(p.At) {
					v.Upcoming = append(v.Upcoming, upcomingRow{At: g.Window.Start.UTC(), What: "starts", Provider: g.Provider, Role: g.Role, Principal: g.Principal, Request: en.Path, Requester: en.Requester})
				}
				continue
			}
			r := row(gitgrant.MemberKey{Provider: g.Provider, Role: g.Role, Principal: g.Principal})
			r.Request, r.Requester, r.Reason, r.Until, r.Emergency = en.Path, en.Requester, reason, g.Window.End.UTC(), en.Emergency
			v.Upcoming = append(v.Upcoming, upcomingRow{At: g.Window.End.UTC(), What: "ends", Provider: g.Provider, Role: g.Role, Principal: g.Principal, Request: en.Path, Requester: en.Requester})
		}
	}
	listed := map[reconciler.RoleKey]bool{}
	for rk, members := range p.Observed {
		listed[rk] = true
		for _, m := range members {
			row(gitgrant.MemberKey{Provider: rk.Provider, Role: rk.Role, Principal: m.Principal})
		}
	}
	for _, h := range p.Ledger {
		row(h.MemberKey).GrantedAt = h.GrantedAt.UTC()
	}
	for k, r := range rows {
		if listed[reconciler.RoleKey{Provider: k.Provider, Role: k.Role}] {
			r.Observed = "no"
			for _, m := range p.Observed[reconciler.RoleKey{Provider: k.Provider, Role: k.Role}] {
				if m.Principal == k.Principal {
					r.Observed = "yes"
				}
			}
		}
	}
	for _, o := range out.Result.Outcomes {
		a := o.Action
		if o.Err != nil || (a.Op != gitgrant.OpGrant && a.Op != gitgrant.OpRevoke) {
			continue
		}
		r := row(gitgrant.MemberKey{Provider: a.Provider, Role: a.Role, Principal: a.Principal})
		if a.Op == gitgrant.OpGrant {
			r.Observed = "yes"
			if r.GrantedAt.IsZero() {
				r.GrantedAt = at
			}
		} else {
			r.Observed, r.GrantedAt = "no", time.Time{}
		}
	}
	for _, r := range rows {
		r.State = holdState(r)
		if r.State == "" {
			continue // gone, and nobody asks for it
		}
		v.Holds = append(v.Holds, *r)
	}
	sort.Slice(v.Holds, func(i, j int) bool {
		a, b := v.Holds[i], v.Holds[j]
		if a.Provider != b.Provider {
			return a.Provider < b.Provider
		}
		if a.Role != b.Role {
			return a.Role < b.Role
		}
		return a.Principal < b.Principal
	})
	sort.SliceStable(v.Upcoming, func(i, j int) bool { return v.Upcoming[i].At.Before(v.Upcoming[j].At) })
	v.Unobserved = append(v.Unobserved, p.Plan.Unobserved...)
	for _, e := range p.Problems {
		v.Problems = append(v.Problems, e.Error())
	}
	v.Policy = p.Plan.Policy
	if p.PolicyErr != nil {
		v.Paused = append(v.Paused, "no verified policy: nothing is granted, and only access whose window ended is revoked ("+p.PolicyErr.Error()+")")
	}
	if p.Stale != nil {
		v.Paused = append(v.Paused, "the repository could not be fetched: grants wait, revocations go ahead ("+p.Stale.Error()+")")
	}
	unverified := 0
	for _, en := range p.Plan.Entries {
		if en.Status == gitgrant.StatusUnverified {
			unverified++
		}
	}
	if unverified > 0 {
		v.Paused = append(v.Paused, fmt.Sprintf("%d request(s) unverified: GitHub could not be asked about their approvals, so they grant nothing until it can", unverified))
	}
	v.Held = append(v.Held, p.Plan.Held...)
}

// holdState says, in a word or two, how desired and observed agree.
func holdState(r *holdRow) string {
	desired := r.Request != ""
	switch {
	case desired && r.Observed == "yes":
		return "granted"
	case desired && r.Observed == "no":
		return "to grant"
	case desired:
		return "desired, not observed"
	case r.Standing:
		return "standing"
	case r.Observed == "yes" && !r.GrantedAt.IsZero():
		return "to revoke"
	case r.Observed == "yes":
		return "not explained (drift)"
	case !r.GrantedAt.IsZero():
		return "recorded, not observed"
	}
	return ""
}

//go:embed statuspage.html
var statusPageHTML string

var statusTemplate = template.Must(template.New("status").Funcs(template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339)
	},
	"in": func(now, t time.Time) string {
		d := t.Sub(now)
		if d < 0 {
			return "past"
		}
		return "in " + gitgrant.Duration(d.Truncate(time.Minute)).String()
	},
	"short": func(s string) string {
		if len(s) > 12 {
			return s[:12]
		}
		return s
	},
	"join": strings.Join,
}).Parse(statusPageHTML))

type statusData struct {
	Nonce  string
	Now    time.Time
	View   *statusView
	Events []statusEvent
}

// ServeHTTP renders the page. It allows no script at all and loads
// nothing from anywhere: its one style sheet is inline, allowed by a
// nonce that changes with every answer.
func (sp *StatusPage) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	var b [18]byte
	if _, err := rand.Read(b[:]); err != nil {
		http.Error(w, "no randomness for the page's nonce", http.StatusInternalServerError)
		return
	}
	// The URL alphabet is valid in a CSP nonce and needs no escaping in
	// the HTML attribute, so header and page carry the same bytes
	// (html/template writes a standard-alphabet "+" as "&#43;").
	nonce := base64.RawURLEncoding.EncodeToString(b[:])
	sp.mu.Lock()
	data := statusData{Nonce: nonce, Now: sp.clock.Now().UTC(), View: sp.last, Events: append([]statusEvent(nil), sp.events...)}
	sp.mu.Unlock()

	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'nonce-"+nonce+"'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	if err := statusTemplate.Execute(w, data); err != nil {
		// Headers are out; the page is cut short, and the log of the
		// server says nothing more useful than this.
		fmt.Fprintf(w, "\n<p>rendering failed</p>")
	}
}

// RequireBearer serves h only to requests that carry token as a bearer
// token (Authorization: Bearer TOKEN), compared in constant time; others
// get 401. An empty token refuses everyone.
func RequireBearer(token string, h http.Handler) http.Handler {
	want := sha256.Sum256([]byte(token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		sum := sha256.Sum256([]byte(got))
		if !ok || token == "" || subtle.ConstantTimeCompare(sum[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="gitgrant status"`)
			w.Header().Set("Cache-Control", "no-store")
			http.Error(w, "unauthorized: send Authorization: Bearer <GITGRANT_STATUS_TOKEN>", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// CheckLoopback refuses an address for the token-less status listener
// that other hosts could reach: its host must be a loopback address or
// "localhost".
func CheckLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("%s is not a loopback address: the status page without a token is served on 127.0.0.1 or [::1] only (use --status-page with GITGRANT_STATUS_TOKEN to serve it on --listen)", addr)
}

// ServeStatus serves sp at /status on ln until ctx ends.
func ServeStatus(ctx context.Context, ln net.Listener, sp *StatusPage) error {
	mux := http.NewServeMux()
	mux.Handle("GET /status", sp)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return err
	}
	if err := <-done; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

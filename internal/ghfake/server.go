// Package ghfake is the simulated GitHub: a stateful fake of GitHub's REST
// API at the HTTP level, with GitHub Apps and their installation tokens,
// that can also serve repositories over git's smart HTTP. gitgrant's tests
// run against it, and so does `gitgrant demo` (docs/demo.md), which is why
// it ships in the binary; nothing else of the test support does.
//
// It runs behind the real go-github client, mounted under a path prefix
// (like GitHub Enterprise Server's /api/v3/) so that a client that builds
// an absolute URL instead of using its base URL is caught. It keeps
// repositories, commits, pull requests, reviews, teams, contents, issues,
// comments, check runs and statuses, serves GitHub's documented response
// shapes (with Link pagination and ETags), records every request, and can
// inject server errors and rate limits. It enforces no branch protection.
package ghfake

import (
	"bytes"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gitgrant/gitgrant/internal/gitrepo"
)

// Prefix is where the API is mounted, as on GitHub Enterprise Server.
const Prefix = "/api/v3"

// Request is one request the fake received.
type Request struct {
	Method string
	// Path is the API path without the prefix, such as
	// "/repos/o/r/pulls/1/reviews".
	Path   string
	Query  string
	Status int
	// Body and Response are the request and response bodies (the first
	// 64 KiB), for contract tests.
	Body, Response []byte
}

// Fault is an injected failure: the next Times requests whose method
// matches (empty: any) and whose path contains PathContains get Status,
// Header and Body instead of an answer.
type Fault struct {
	Method       string
	PathContains string
	Status       int
	Header       map[string]string
	Body         string
	Times        int
}

// Server is the fake. Its zero value is not usable; call New.
type Server struct {
	*httptest.Server

	mu    sync.Mutex
	repos map[string]*Repo
	teams map[string]*team // by lower-case "org/slug"
	// users are the GitHub users GET /users/{login} knows, by lower-case
	// login; orgMembers the lower-case "org/login" of organisation members.
	users      map[string]string
	orgMembers map[string]bool
	requests   []Request
	faults     []*Fault
	nextID     int64
	now        func() time.Time
	// Unprefixed counts requests that missed the prefix: a client bug;
	// unrouted those to no operation the fake serves.
	unprefixed, unrouted int

	// auth: when tokens or an app is registered, every API call needs one
	// of the valid tokens.
	tokens map[string]time.Time
	apps   map[int64]*rsa.PublicKey
	// installs maps an installation id to its app id.
	installs map[int64]int64
	// TokenTTL is how long minted installation tokens live (GitHub: 1h).
	tokenTTL time.Duration
	minted   int
	// actors maps a token to who it acts as (absent: DefaultActor);
	// bots are tokens that act as an installation (GET /user refuses them).
	actors   map[string]string
	bots     map[string]bool
	appSlugs map[int64]string
	// gitRepos are the repositories served over smart HTTP (ServeGit).
	gitRepos map[string]*gitrepo.SmartHTTP
	// userKeys are the public SSH keys of users, by lower-case login.
	userKeys map[string][]string
}

// DefaultActor is who the fake's callers act as without a user or
// installation token of their own: anonymous callers and AddToken tokens.
// GET /user answers with it (a simplification: GitHub refuses GET /user
// to an installation token), so that tests need not set up an App.
const DefaultActor = "gitgrant[bot]"

// New starts a fake. now may be nil (time.Now).
func New(now func() time.Time) *Server {
	if now == nil {
		now = time.Now
	}
	s := &Server{
		repos: map[string]*Repo{}, teams: map[string]*team{}, users: map[string]string{}, orgMembers: map[string]bool{},
		now: now, tokens: map[string]time.Time{}, apps: map[int64]*rsa.PublicKey{},
		installs: map[int64]int64{}, tokenTTL: time.Hour,
		actors: map[string]string{}, bots: map[string]bool{}, appSlugs: map[int64]string{},
	}
	api := http.NewServeMux()
	s.routes(api)
	api.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.unrouted++
		s.mu.Unlock()
		notFound(w, r)
	})
	root := http.NewServeMux()
	root.Handle(Prefix+"/", http.StripPrefix(Prefix, s.wrap(api)))
	root.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if s.serveGit(w, r) {
			return
		}
		s.mu.Lock()
		s.unprefixed++
		s.requests = append(s.requests, Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Status: http.StatusBadRequest})
		s.mu.Unlock()
		http.Error(w, "URL path does not begin with "+Prefix+": the client built an absolute URL", http.StatusBadRequest)
	})
	s.Server = httptest.NewServer(root)
	return s
}

// BaseURL is the API's base URL, for go-github's WithEnterpriseURLs.
func (s *Server) BaseURL() string { return s.URL + Prefix + "/" }

// AddToken makes token a valid credential (and turns authentication on).
func (s *Server) AddToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[token] = time.Time{}
}

// AddUserToken makes token a valid credential of the user login: what it
// writes is authored by login, and GET /user answers login.
func (s *Server) AddUserToken(token, login string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[token] = time.Time{}
	s.actors[token] = login
}

// AddInstallationToken makes token a valid credential that acts as the
// bot login, as an installation token (such as the Actions GITHUB_TOKEN,
// "github-actions[bot]") does: GET /user refuses it.
func (s *Server) AddInstallationToken(token, login string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[token] = time.Time{}
	s.actors[token] = login
	s.bots[token] = true
}

// SetAppSlug names an App (default "gitgrant"): its installation tokens
// act as "<slug>[bot]", and GET /app answers the slug.
func (s *Server) SetAppSlug(appID int64, slug string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.appSlugs[appID] = slug
}

func (s *Server) appSlug(appID int64) string {
	if slug, ok := s.appSlugs[appID]; ok {
		return slug
	}
	return "gitgrant"
}

// actor is who the request acts as; the caller holds the lock.
func (s *Server) actor(r *http.Request) (login string, bot bool) {
	tok := requestToken(r)
	if a, ok := s.actors[tok]; ok && tok != "" {
		return a, s.bots[tok]
	}
	return DefaultActor, false
}

func requestToken(r *http.Request) string {
	h := r.Header.Get("Authorization")
	return strings.TrimPrefix(strings.TrimPrefix(h, "Bearer "), "token ")
}

// AddApp registers a GitHub App with its public key and one installation.
func (s *Server) AddApp(appID int64, key *rsa.PublicKey, installationID int64, tokenTTL time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.apps[appID] = key
	s.installs[installationID] = appID
	if tokenTTL > 0 {
		s.tokenTTL = tokenTTL
	}
}

// MintedTokens is how many installation tokens were issued.
func (s *Server) MintedTokens() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.minted
}

// Inject queues a fault.
func (s *Server) Inject(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f.Times == 0 {
		f.Times = 1
	}
	s.faults = append(s.faults, &f)
}

// ClearFaults ends every injected fault: GitHub is back.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// Requests returns every request so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Count is the number of requests so far whose method matches (empty: any)
// and whose path contains pathContains.
func (s *Server) Count(method, pathContains string) int {
	n := 0
	for _, r := range s.Requests() {
		if (method == "" || r.Method == method) && strings.Contains(r.Path, pathContains) {
			n++
		}
	}
	return n
}

// ResetRequests forgets the recorded requests.
func (s *Server) ResetRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = nil
}

// Unprefixed is the number of requests that did not use the prefix.
func (s *Server) Unprefixed() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.unprefixed
}

// Unrouted counts the requests for no operation the fake serves (answered
// 404): a client calling what it was not meant to, or a gap in the fake.
func (s *Server) Unrouted() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.unrouted
}

// recorder captures the status and body for the request log.
type recorder struct {
	http.ResponseWriter
	status int
	body   []byte
}

func (r *recorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if room := 64<<10 - len(r.body); room > 0 {
		r.body = append(r.body, b[:min(room, len(b))]...)
	}
	return r.ResponseWriter.Write(b)
}

func (s *Server) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &recorder{ResponseWriter: w, status: http.StatusOK}
		reqBody, _ := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		r.Body = io.NopCloser(bytes.NewReader(reqBody))
		defer func() {
			s.mu.Lock()
			s.requests = append(s.requests, Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Status: rec.status, Body: reqBody, Response: rec.body})
			s.mu.Unlock()
		}()
		reset := s.now().Add(time.Hour).Unix()
		w.Header().Set("X-RateLimit-Limit", "5000")
		w.Header().Set("X-RateLimit-Remaining", "4999")
		w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(reset, 10))
		if f := s.takeFault(r); f != nil {
			for k, v := range f.Header {
				w.Header().Set(k, v)
			}
			w.Header().Set("Content-Type", "application/json")
			rec.WriteHeader(f.Status)
			body := f.Body
			if body == "" {
				body = fmt.Sprintf(`{"message":%q}`, http.StatusText(f.Status))
			}
			_, _ = w.Write([]byte(body))
			return
		}
		if r.URL.Path != "/app" && !strings.HasPrefix(r.URL.Path, "/app/") && !s.authorized(r) {
			writeJSON(rec, r, http.StatusUnauthorized, map[string]any{"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"})
			return
		}
		next.ServeHTTP(rec, r)
	})
}

func (s *Server) takeFault(r *http.Request) *Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range s.faults {
		if (f.Method == "" || f.Method == r.Method) && strings.Contains(r.URL.Path, f.PathContains) {
			f.Times--
			if f.Times <= 0 {
				s.faults = append(s.faults[:i], s.faults[i+1:]...)
			}
			return f
		}
	}
	return nil
}

func (s *Server) authorized(r *http.Request) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.tokens) == 0 && len(s.apps) == 0 {
		return true
	}
	return s.validLocked(requestToken(r))
}

// ValidToken reports whether token is a credential the fake accepts now:
// one added, or an installation token it minted that has not lapsed. A git
// server in front of the same repositories asks it, as github.com checks
// the password of git's basic auth.
func (s *Server) ValidToken(token string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.validLocked(token)
}

func (s *Server) validLocked(tok string) bool {
	exp, ok := s.tokens[tok]
	return ok && tok != "" && (exp.IsZero() || s.now().Before(exp))
}

// writeJSON answers with v, an ETag, and 304 when If-None-Match matches.
func writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if r.Method == http.MethodGet && status == http.StatusOK {
		sum := sha256.Sum256(body)
		etag := `"` + hex.EncodeToString(sum[:12]) + `"`
		w.Header().Set("ETag", etag)
		if r.Header.Get("If-None-Match") == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func notFound(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, r, http.StatusNotFound, map[string]any{"message": "Not Found", "documentation_url": "https://docs.github.com/rest"})
}

// paginate slices items by per_page/page and sets GitHub's Link header.
func paginate[T any](w http.ResponseWriter, r *http.Request, items []T) []T {
	per, _ := strconv.Atoi(r.URL.Query().Get("per_page"))
	if per <= 0 {
		per = 30
	}
	if per > 100 {
		per = 100
	}
	page, _ := strconv.Atoi(r.URL.Query().Get("page"))
	if page <= 0 {
		page = 1
	}
	last := (len(items) + per - 1) / per
	if last == 0 {
		last = 1
	}
	link := func(p int, rel string) string {
		q := r.URL.Query()
		q.Set("page", strconv.Itoa(p))
		q.Set("per_page", strconv.Itoa(per))
		u := url.URL{Scheme: "http", Host: r.Host, Path: Prefix + r.URL.Path, RawQuery: q.Encode()}
		return fmt.Sprintf("<%s>; rel=%q", u.String(), rel)
	}
	var links []string
	if page < last {
		links = append(links, link(page+1, "next"), link(last, "last"))
	}
	if page > 1 {
		links = append(links, link(1, "first"), link(page-1, "prev"))
	}
	if len(links) > 0 {
		w.Header().Set("Link", strings.Join(links, ", "))
	}
	lo := (page - 1) * per
	if lo >= len(items) {
		return []T{}
	}
	hi := min(lo+per, len(items))
	return items[lo:hi]
}

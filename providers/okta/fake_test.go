package okta

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/testing/fakeclock"
)

// orgPrefix is where the fake mounts the org, so that a request built from
// an absolute URL instead of org_url misses it and fails the test.
const orgPrefix = "/okta-org"

// clock is the clock the fake and the provider share: the wall clock, or
// the suite's manual clock, which moves only when advanced or waited on, so
// that rate-limit windows and token lifetimes pass at once.
type clock struct {
	gitgrant.Clock
	manual *fakeclock.Clock // nil for the wall clock
}

func realClock() *clock { return &clock{Clock: gitgrant.SystemClock} }

func manualClock() *clock {
	m := fakeclock.NewAuto(time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC))
	return &clock{Clock: m, manual: m}
}

func (c *clock) now() time.Time { return c.Now() }

func (c *clock) advance(d time.Duration) { c.manual.Advance(d) }

type fakeUser struct {
	id, login, email string
}

type fakeGroup struct {
	typ, name string
	// members maps a user id to how many reads still miss the membership
	// (Okta's reads lag its writes).
	members map[string]int
}

// fakeOkta serves the documented shapes of Okta's users, groups and token
// endpoints from memory: Link paging, per-endpoint rate limits with the
// X-Rate-Limit-* headers and 429, access tokens that expire, and new
// memberships that reads see only from the second read on.
type fakeOkta struct {
	t     testing.TB
	clock *clock
	url   string // org URL

	mu         sync.Mutex
	apiToken   string
	clientID   string
	publicKey  *rsa.PublicKey
	tokenTTL   time.Duration
	tokens     map[string]time.Time // access token -> expiry
	issued     int
	jtis       map[string]bool
	users      map[string]*fakeUser // by id
	groups     map[string]*fakeGroup
	lag        int // reads that miss a new membership
	maxPage    int
	perMinute  int           // requests per endpoint per minute; 0: unlimited
	latency    time.Duration // a manual clock moves this much per request
	windows    map[string]*window
	throttled  int      // 429s answered
	force429   int      // 429s to answer next, whatever the count
	failures   int      // 502s to answer next
	requests   []string // "METHOD path?query", in order, without the prefix
	unauthored int      // 401s answered
}

type window struct {
	start time.Time
	count int
}

func newFakeOkta(t testing.TB, c *clock) *fakeOkta {
	f := &fakeOkta{
		t: t, clock: c, tokenTTL: time.Hour, tokens: map[string]time.Time{}, jtis: map[string]bool{},
		users: map[string]*fakeUser{}, groups: map[string]*fakeGroup{}, lag: 1, maxPage: 200, windows: map[string]*window{},
	}
	api := http.NewServeMux()
	api.HandleFunc("POST /oauth2/v1/token", f.handleToken)
	api.HandleFunc("GET /api/v1/users", f.authed("users", f.handleSearchUsers))
	api.HandleFunc("GET /api/v1/users/{id}", f.authed("users", f.handleUser))
	api.HandleFunc("GET /api/v1/users/{id}/groups", f.authed("user-groups", f.handleUserGroups))
	api.HandleFunc("GET /api/v1/groups/{gid}", f.authed("groups", f.handleGroup))
	api.HandleFunc("GET /api/v1/groups/{gid}/users", f.authed("group-users", f.handleGroupUsers))
	api.HandleFunc("PUT /api/v1/groups/{gid}/users/{uid}", f.authed("group-users-write", f.handleAddMember))
	api.HandleFunc("DELETE /api/v1/groups/{gid}/users/{uid}", f.authed("group-users-write", f.handleRemoveMember))
	api.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("fake Okta: unexpected request %s %s", r.Method, r.URL)
		writeOktaError(w, http.StatusNotFound, "E0000022", "The endpoint does not support the provided HTTP method")
	})
	root := http.NewServeMux()
	root.Handle(orgPrefix+"/", http.StripPrefix(orgPrefix, api))
	root.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("fake Okta: request outside %s (an absolute URL?): %s %s", orgPrefix, r.Method, r.URL)
		http.Error(w, "outside the org prefix", http.StatusBadRequest)
	})
	srv := httptest.NewServer(root)
	t.Cleanup(srv.Close)
	f.url = srv.URL + orgPrefix
	return f
}

func (f *fakeOkta) addUser(id, login, email string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.users[id] = &fakeUser{id: id, login: login, email: email}
}

func (f *fakeOkta) addGroup(gid, typ string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.groups[gid] = &fakeGroup{typ: typ, name: "group " + gid, members: map[string]int{}}
}

// memberLogins returns the logins of the group's members as stored,
// whatever reads would show, sorted.
func (f *fakeOkta) memberLogins(gid string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for uid := range f.groups[gid].members {
		out = append(out, f.users[uid].login)
	}
	slices.Sort(out)
	return out
}

func (f *fakeOkta) log() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.requests)
}

func (f *fakeOkta) set(fn func(f *fakeOkta)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func writeOktaError(w http.ResponseWriter, code int, errorCode, summary string) {
	writeJSON(w, code, map[string]any{
		"errorCode": errorCode, "errorSummary": summary, "errorLink": errorCode,
		"errorId": "oae-fake", "errorCauses": []any{},
	})
}

// authed checks the Authorization header and the endpoint's rate limit,
// logs the request, and serves it with f.mu held.
func (f *fakeOkta) authed(endpoint string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.requests = append(f.requests, r.Method+" "+r.URL.RequestURI())
		if f.clock.manual != nil && f.latency > 0 {
			f.clock.advance(f.latency)
		}
		now := f.clock.now()
		w.Header().Set("Date", now.UTC().Format(http.TimeFormat))
		auth := r.Header.Get("Authorization")
		switch {
		case f.apiToken != "" && auth == "SSWS "+f.apiToken:
		case strings.HasPrefix(auth, "Bearer ") && now.Before(f.tokens[strings.TrimPrefix(auth, "Bearer ")]):
		default:
			f.unauthored++
			w.Header().Set("WWW-Authenticate", `Bearer authorization_uri="http://fake/oauth2/v1/authorize", realm="http://fake", scope="okta.users.read", error="invalid_token", error_description="The access token is invalid.", resource="/api/v1/users"`)
			writeOktaError(w, http.StatusUnauthorized, "E0000011", "Invalid token provided")
			return
		}
		if f.failures > 0 {
			f.failures--
			writeOktaError(w, http.StatusBadGateway, "E0000009", "Internal Server Error")
			return
		}
		if f.perMinute > 0 || f.force429 > 0 {
			win := f.windows[endpoint]
			start := now.Truncate(time.Minute)
			if win == nil || !win.start.Equal(start) {
				win = &window{start: start}
				f.windows[endpoint] = win
			}
			limit := f.perMinute
			if limit == 0 {
				limit = 1 << 30
			}
			reset := start.Add(time.Minute).Unix()
			h := w.Header()
			h.Set("X-Rate-Limit-Limit", strconv.Itoa(limit))
			h.Set("X-Rate-Limit-Reset", strconv.FormatInt(reset, 10))
			if win.count >= limit || f.force429 > 0 {
				if f.force429 > 0 {
					f.force429--
				}
				f.throttled++
				h.Set("X-Rate-Limit-Remaining", "0")
				writeOktaError(w, http.StatusTooManyRequests, "E0000047", "API call exceeded rate limit due to too many requests.")
				return
			}
			win.count++
			h.Set("X-Rate-Limit-Remaining", strconv.Itoa(limit-win.count))
		}
		h(w, r)
	}
}

// handleToken is the org authorization server's token endpoint for the
// client credentials grant with a private_key_jwt client assertion.
func (f *fakeOkta) handleToken(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, r.Method+" "+r.URL.RequestURI())
	fail := func(code, desc string) {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": code, "error_description": desc})
	}
	if err := r.ParseForm(); err != nil {
		fail("invalid_request", "bad form")
		return
	}
	if r.PostForm.Get("grant_type") != "client_credentials" {
		fail("unsupported_grant_type", "only client_credentials")
		return
	}
	if r.PostForm.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
		fail("invalid_client", "client_assertion_type")
		return
	}
	claims, ok := f.verifyAssertion(r.PostForm.Get("client_assertion"))
	if !ok {
		fail("invalid_client", "The client_assertion signature is invalid.")
		return
	}
	now := f.clock.now().Unix()
	if claims.Iss != f.clientID || claims.Sub != f.clientID || claims.Aud != f.url+"/oauth2/v1/token" ||
		claims.Exp <= now || claims.Exp > now+3600 || claims.Jti == "" || f.jtis[claims.Jti] {
		fail("invalid_client", "The client_assertion token is invalid.")
		return
	}
	if id := r.PostForm.Get("client_id"); id != "" && id != f.clientID {
		fail("invalid_client", "client_id does not match the assertion")
		return
	}
	for _, s := range strings.Fields(r.PostForm.Get("scope")) {
		if s != "okta.groups.manage" && s != "okta.users.read" {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_scope", "error_description": "The requested scope is invalid, unknown, or malformed."})
			return
		}
	}
	f.jtis[claims.Jti] = true
	f.issued++
	access := fmt.Sprintf("fake-access-token-%d", f.issued)
	f.tokens[access] = f.clock.now().Add(f.tokenTTL)
	writeJSON(w, http.StatusOK, map[string]any{
		"token_type": "Bearer", "expires_in": int(f.tokenTTL.Seconds()), "access_token": access, "scope": r.PostForm.Get("scope"),
	})
}

type assertionClaims struct {
	Iss, Sub, Aud, Jti string
	Exp, Iat           int64
}

func (f *fakeOkta) verifyAssertion(jwt string) (assertionClaims, bool) {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 || f.publicKey == nil {
		return assertionClaims{}, false
	}
	var header struct{ Alg string }
	hb, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	cb, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	sig, err3 := base64.RawURLEncoding.DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil || json.Unmarshal(hb, &header) != nil || header.Alg != "RS256" {
		return assertionClaims{}, false
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if rsa.VerifyPKCS1v15(f.publicKey, crypto.SHA256, sum[:], sig) != nil {
		return assertionClaims{}, false
	}
	var c assertionClaims
	return c, json.Unmarshal(cb, &c) == nil
}

func (f *fakeOkta) userJSON(u *fakeUser) map[string]any {
	return map[string]any{
		"id": u.id, "status": "ACTIVE",
		"profile": map[string]any{"login": u.login, "email": u.email, "firstName": "F", "lastName": "L"},
		"_links":  map[string]any{"self": map[string]string{"href": f.url + "/api/v1/users/" + u.id}},
	}
}

// findUser matches an id or a login, ignoring case in logins as Okta does.
func (f *fakeOkta) findUser(key string) *fakeUser {
	if u, ok := f.users[key]; ok {
		return u
	}
	for _, u := range f.users {
		if strings.EqualFold(u.login, key) {
			return u
		}
	}
	return nil
}

func (f *fakeOkta) handleUser(w http.ResponseWriter, r *http.Request) {
	u := f.findUser(r.PathValue("id"))
	if u == nil {
		writeOktaError(w, http.StatusNotFound, "E0000007", "Not found: Resource not found: "+r.PathValue("id")+" (User)")
		return
	}
	writeJSON(w, http.StatusOK, f.userJSON(u))
}

// handleSearchUsers serves ?filter=profile.email eq "..." (and no filter).
func (f *fakeOkta) handleSearchUsers(w http.ResponseWriter, r *http.Request) {
	filter := r.URL.Query().Get("filter")
	var email string
	if filter != "" {
		rest, ok := strings.CutPrefix(filter, `profile.email eq "`)
		if !ok || !strings.HasSuffix(rest, `"`) || strings.ContainsAny(strings.TrimSuffix(rest, `"`), `"\`) {
			writeOktaError(w, http.StatusBadRequest, "E0000031", "Invalid search criteria.")
			return
		}
		email = strings.TrimSuffix(rest, `"`)
	}
	out := []any{}
	for _, id := range slices.Sorted(maps.Keys(f.users)) {
		u := f.users[id]
		if filter == "" || strings.EqualFold(u.email, email) {
			out = append(out, f.userJSON(u))
		}
	}
	if n, err := strconv.Atoi(r.URL.Query().Get("limit")); err == nil && n < len(out) {
		out = out[:n]
	}
	writeJSON(w, http.StatusOK, out)
}

func (f *fakeOkta) handleGroup(w http.ResponseWriter, r *http.Request) {
	g, ok := f.groups[r.PathValue("gid")]
	if !ok {
		writeOktaError(w, http.StatusNotFound, "E0000007", "Not found: Resource not found: "+r.PathValue("gid")+" (UserGroup)")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": r.PathValue("gid"), "type": g.typ, "profile": map[string]string{"name": g.name}})
}

// visible reports whether a read sees the membership, counting the read.
func visible(g *fakeGroup, uid string) bool {
	if g.members[uid] > 0 {
		g.members[uid]--
		return false
	}
	return true
}

// handleGroupUsers pages by user id with ?after= and ?limit=, and a Link
// header to the next page, as Okta does.
func (f *fakeOkta) handleGroupUsers(w http.ResponseWriter, r *http.Request) {
	gid := r.PathValue("gid")
	g, ok := f.groups[gid]
	if !ok {
		writeOktaError(w, http.StatusNotFound, "E0000007", "Not found: Resource not found: "+gid+" (UserGroup)")
		return
	}
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	if limit <= 0 || limit > f.maxPage {
		limit = f.maxPage
	}
	after := r.URL.Query().Get("after")
	var page []any
	var last string
	more := false
	for _, uid := range slices.Sorted(maps.Keys(g.members)) {
		if uid <= after {
			continue
		}
		if len(page) == limit {
			more = true
			break
		}
		if !visible(g, uid) {
			continue
		}
		page = append(page, f.userJSON(f.users[uid]))
		last = uid
	}
	links := []string{fmt.Sprintf(`<%s/api/v1/groups/%s/users?limit=%d>; rel="self"`, f.url, gid, limit)}
	if more {
		links = append(links, fmt.Sprintf(`<%s/api/v1/groups/%s/users?after=%s&limit=%d>; rel="next"`, f.url, gid, last, limit))
	}
	w.Header().Set("Link", strings.Join(links, ", "))
	if page == nil {
		page = []any{}
	}
	writeJSON(w, http.StatusOK, page)
}

func (f *fakeOkta) handleUserGroups(w http.ResponseWriter, r *http.Request) {
	u := f.findUser(r.PathValue("id"))
	if u == nil {
		writeOktaError(w, http.StatusNotFound, "E0000007", "Not found: Resource not found: "+r.PathValue("id")+" (User)")
		return
	}
	out := []any{}
	for _, gid := range slices.Sorted(maps.Keys(f.groups)) {
		g := f.groups[gid]
		if _, ok := g.members[u.id]; ok && visible(g, u.id) {
			out = append(out, map[string]any{"id": gid, "type": g.typ, "profile": map[string]string{"name": g.name}})
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (f *fakeOkta) member(w http.ResponseWriter, r *http.Request) (*fakeGroup, string, bool) {
	g, ok := f.groups[r.PathValue("gid")]
	if !ok {
		writeOktaError(w, http.StatusNotFound, "E0000007", "Not found: Resource not found: "+r.PathValue("gid")+" (UserGroup)")
		return nil, "", false
	}
	if _, ok := f.users[r.PathValue("uid")]; !ok {
		writeOktaError(w, http.StatusNotFound, "E0000007", "Not found: Resource not found: "+r.PathValue("uid")+" (User)")
		return nil, "", false
	}
	if g.typ != "OKTA_GROUP" {
		writeOktaError(w, http.StatusBadRequest, "E0000099", "Group memberships of APP_GROUP groups cannot be changed.")
		return nil, "", false
	}
	return g, r.PathValue("uid"), true
}

func (f *fakeOkta) handleAddMember(w http.ResponseWriter, r *http.Request) {
	g, uid, ok := f.member(w, r)
	if !ok {
		return
	}
	if _, ok := g.members[uid]; !ok {
		g.members[uid] = f.lag
	}
	w.WriteHeader(http.StatusNoContent)
}

func (f *fakeOkta) handleRemoveMember(w http.ResponseWriter, r *http.Request) {
	g, uid, ok := f.member(w, r)
	if !ok {
		return
	}
	if _, ok := g.members[uid]; !ok {
		writeOktaError(w, http.StatusNotFound, "E0000007", "Not found: Resource not found: "+uid+" (GroupMembership)")
		return
	}
	delete(g.members, uid)
	w.WriteHeader(http.StatusNoContent)
}

package okta

import (
	"cmp"
	"crypto/rsa"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/providers/internal/httpapitest"
)

// orgPrefix is where the fake mounts the org, so that a request built from
// an absolute URL instead of org_url misses it and fails the test.
const orgPrefix = "/okta-org"

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
	httpapitest.Fake // handlers run with Mu held; so does the state below
	t                testing.TB
	url              string // org URL

	apiToken  string
	clientID  string
	publicKey *rsa.PublicKey
	jtis      map[string]bool
	users     map[string]*fakeUser // by id
	groups    map[string]*fakeGroup
	lag       int // reads that miss a new membership
	maxPage   int
	quota     httpapitest.Quota // requests per endpoint per minute; Limit 0: unlimited
	force429  int               // 429s to answer next, whatever the count
	failures  int               // 502s to answer next
}

func newFakeOkta(t testing.TB, c gitgrant.Clock) *fakeOkta {
	f := &fakeOkta{
		t: t, jtis: map[string]bool{}, users: map[string]*fakeUser{}, groups: map[string]*fakeGroup{}, lag: 1, maxPage: 200,
		quota: httpapitest.Quota{Window: time.Minute},
	}
	f.Clock = c
	f.Tokens = httpapitest.Tokens{Now: c.Now, Prefix: "fake-access-token-", TTL: time.Hour}
	api := http.NewServeMux()
	api.HandleFunc("POST /oauth2/v1/token", f.Serve(f.handleToken))
	api.HandleFunc("GET /api/v1/users", f.authed("users", f.handleSearchUsers))
	api.HandleFunc("GET /api/v1/users/{id}", f.authed("users", f.handleUser))
	api.HandleFunc("GET /api/v1/users/{id}/groups", f.authed("user-groups", f.handleUserGroups))
	api.HandleFunc("GET /api/v1/groups/{gid}", f.authed("groups", f.handleGroup))
	api.HandleFunc("GET /api/v1/groups/{gid}/users", f.authed("group-users", f.handleGroupUsers))
	api.HandleFunc("PUT /api/v1/groups/{gid}/users/{uid}", f.authed("group-users-write", f.handleAddMember))
	api.HandleFunc("DELETE /api/v1/groups/{gid}/users/{uid}", f.authed("group-users-write", f.handleRemoveMember))
	api.HandleFunc("/", httpapitest.Unexpected(t, func(w http.ResponseWriter, r *http.Request) {
		writeOktaError(w, http.StatusNotFound, "E0000022", "The endpoint does not support the provided HTTP method")
	}))
	f.url = httpapitest.NewServer(t, map[string]http.Handler{orgPrefix: api}) + orgPrefix
	return f
}

func (f *fakeOkta) addUser(id, login, email string) {
	f.Set(func() { f.users[id] = &fakeUser{id: id, login: login, email: email} })
}

func (f *fakeOkta) addGroup(gid, typ string) {
	f.Set(func() { f.groups[gid] = &fakeGroup{typ: typ, name: "group " + gid, members: map[string]int{}} })
}

// memberLogins returns the logins of the group's members as stored,
// whatever reads would show, sorted.
func (f *fakeOkta) memberLogins(gid string) []string {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	var out []string
	for uid := range f.groups[gid].members {
		out = append(out, f.users[uid].login)
	}
	slices.Sort(out)
	return out
}

func writeOktaError(w http.ResponseWriter, code int, errorCode, summary string) {
	httpapitest.WriteJSON(w, code, map[string]any{
		"errorCode": errorCode, "errorSummary": summary, "errorLink": errorCode,
		"errorId": "oae-fake", "errorCauses": []any{},
	})
}

// authed checks the Authorization header and the endpoint's rate limit,
// and serves the request.
func (f *fakeOkta) authed(endpoint string, h http.HandlerFunc) http.HandlerFunc {
	return f.Serve(func(w http.ResponseWriter, r *http.Request) {
		now := f.Clock.Now()
		w.Header().Set("Date", now.UTC().Format(http.TimeFormat))
		if auth := r.Header.Get("Authorization"); !(f.apiToken != "" && auth == "SSWS "+f.apiToken) && !f.Tokens.Valid(auth) {
			w.Header().Set("WWW-Authenticate", `Bearer authorization_uri="http://fake/oauth2/v1/authorize", realm="http://fake", scope="okta.users.read", error="invalid_token", error_description="The access token is invalid.", resource="/api/v1/users"`)
			writeOktaError(w, http.StatusUnauthorized, "E0000011", "Invalid token provided")
			return
		}
		if f.failures > 0 {
			f.failures--
			writeOktaError(w, http.StatusBadGateway, "E0000009", "Internal Server Error")
			return
		}
		if f.quota.Limit > 0 || f.force429 > 0 {
			h := w.Header()
			h.Set("X-Rate-Limit-Limit", strconv.Itoa(cmp.Or(f.quota.Limit, 1<<30)))
			h.Set("X-Rate-Limit-Reset", strconv.FormatInt(now.Truncate(time.Minute).Add(time.Minute).Unix(), 10))
			ok, left := f.force429 == 0, 0
			if ok {
				ok, left, _ = f.quota.Take(endpoint, 1, now)
			}
			if !ok {
				f.force429 = max(f.force429-1, 0)
				f.Throttled++
				h.Set("X-Rate-Limit-Remaining", "0")
				writeOktaError(w, http.StatusTooManyRequests, "E0000047", "API call exceeded rate limit due to too many requests.")
				return
			}
			h.Set("X-Rate-Limit-Remaining", strconv.Itoa(left))
		}
		h(w, r)
	})
}

// handleToken is the org authorization server's token endpoint for the
// client credentials grant with a private_key_jwt client assertion.
func (f *fakeOkta) handleToken(w http.ResponseWriter, r *http.Request) {
	fail := func(code, desc string) {
		httpapitest.WriteJSON(w, http.StatusUnauthorized, map[string]string{"error": code, "error_description": desc})
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
	var claims struct {
		Iss, Sub, Aud, Jti string
		Exp, Iat           int64
	}
	if !httpapitest.VerifyRS256(r.PostForm.Get("client_assertion"), f.publicKey, &claims) {
		fail("invalid_client", "The client_assertion signature is invalid.")
		return
	}
	now := f.Clock.Now().Unix()
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
			httpapitest.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_scope", "error_description": "The requested scope is invalid, unknown, or malformed."})
			return
		}
	}
	f.jtis[claims.Jti] = true
	access, ttl := f.Tokens.Issue()
	httpapitest.WriteJSON(w, http.StatusOK, map[string]any{
		"token_type": "Bearer", "expires_in": ttl, "access_token": access, "scope": r.PostForm.Get("scope"),
	})
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
	httpapitest.WriteJSON(w, http.StatusOK, f.userJSON(u))
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
	httpapitest.WriteJSON(w, http.StatusOK, out)
}

func (f *fakeOkta) handleGroup(w http.ResponseWriter, r *http.Request) {
	g, ok := f.groups[r.PathValue("gid")]
	if !ok {
		writeOktaError(w, http.StatusNotFound, "E0000007", "Not found: Resource not found: "+r.PathValue("gid")+" (UserGroup)")
		return
	}
	httpapitest.WriteJSON(w, http.StatusOK, map[string]any{"id": r.PathValue("gid"), "type": g.typ, "profile": map[string]string{"name": g.name}})
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
	httpapitest.WriteJSON(w, http.StatusOK, page)
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
	httpapitest.WriteJSON(w, http.StatusOK, out)
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

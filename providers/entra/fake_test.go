package entra

import (
	"encoding/json"
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

// The fake mounts Graph and the login endpoint under prefixes, so that a
// request built from an absolute URL instead of the settings misses them.
const (
	graphPrefix = "/graph/v1.0"
	loginPrefix = "/login"
)

type fakeUser struct{ id, upn string }

// fakeSchedule is an active PIM assignment.
type fakeSchedule struct {
	end  time.Time // zero: no end
	lag  int       // reads that miss it yet
	user string
}

type fakeGroup struct {
	name    string
	members map[string]int // object id -> reads that miss it yet
	pim     map[string]*fakeSchedule
}

// fakeGraph serves the documented shapes of Microsoft Graph's users,
// group members and PIM for Groups endpoints, and the identity platform's
// token endpoint, from memory: @odata.nextLink paging, throttling by
// resource units with 429 and Retry-After, tokens that expire, writes that
// reads see only from the second read on, and PIM assignments that end by
// themselves at their endDateTime.
type fakeGraph struct {
	httpapitest.Fake // handlers run with Mu held; so does the state below
	t                testing.TB
	url              string // server root

	tenant   string
	clientID string
	secret   string
	users    map[string]*fakeUser // by id
	groups   map[string]*fakeGroup
	lag      int
	maxPage  int
	budget   httpapitest.Quota // resource units per 10 s; Limit 0: unlimited
	force429 int
	ends     []string // endDateTimes gitgrant asked PIM for, "user end"
	ended    []string // assignments Entra ended by itself, "user at"
}

func newFakeGraph(t testing.TB, c gitgrant.Clock) *fakeGraph {
	f := &fakeGraph{
		t: t, tenant: "contoso.onmicrosoft.com", clientID: "11111111-2222-3333-4444-555555555555", secret: "fake~client~secret~must~never~leak",
		users: map[string]*fakeUser{}, groups: map[string]*fakeGroup{}, lag: 1, maxPage: 100,
		budget: httpapitest.Quota{Window: 10 * time.Second},
	}
	f.Clock = c
	f.Tokens = httpapitest.Tokens{Now: c.Now, Prefix: "fake-graph-access-token-", TTL: time.Hour}
	graph := http.NewServeMux()
	graph.HandleFunc("GET /users", f.authed(1, f.handleUsers))
	graph.HandleFunc("GET /users/{id}", f.authed(1, f.handleUser))
	graph.HandleFunc("POST /users/{id}/checkMemberGroups", f.authed(1, f.handleCheckMemberGroups))
	graph.HandleFunc("GET /groups/{gid}", f.authed(1, f.handleGroup))
	graph.HandleFunc("GET /groups/{gid}/members", f.authed(2, f.handleMembers))
	graph.HandleFunc("POST /groups/{gid}/members/$ref", f.authed(3, f.handleAddMember))
	graph.HandleFunc("DELETE /groups/{gid}/members/{id}/$ref", f.authed(3, f.handleRemoveMember))
	graph.HandleFunc("POST /"+pimRequests, f.authed(3, f.handlePIMRequest))
	graph.HandleFunc("GET /"+pimInstances, f.authed(2, f.handlePIMInstances))
	graph.HandleFunc("/", httpapitest.Unexpected(t, func(w http.ResponseWriter, r *http.Request) {
		writeGraphError(w, http.StatusBadRequest, "BadRequest", "Resource not found for the segment.")
	}))
	login := http.NewServeMux()
	login.HandleFunc("POST /{tenant}/oauth2/v2.0/token", f.Serve(f.handleToken))
	f.url = httpapitest.NewServer(t, map[string]http.Handler{graphPrefix: graph, loginPrefix: login})
	return f
}

func (f *fakeGraph) graphURL() string { return f.url + graphPrefix + "/" }
func (f *fakeGraph) loginURL() string { return f.url + loginPrefix + "/" }

func (f *fakeGraph) addUser(id, upn string) {
	f.Set(func() { f.users[id] = &fakeUser{id: id, upn: upn} })
}

func (f *fakeGraph) addGroup(gid string) {
	f.Set(func() {
		f.groups[gid] = &fakeGroup{name: "group " + gid[:8], members: map[string]int{}, pim: map[string]*fakeSchedule{}}
	})
}

// memberUPNs is the group's membership as stored, after Entra ended what
// has run out, sorted.
func (f *fakeGraph) memberUPNs(gid string) []string {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	f.expire()
	out := []string{}
	for id := range f.groups[gid].members {
		out = append(out, f.users[id].upn)
	}
	slices.Sort(out)
	return out
}

// expire is Entra's own schedule: an assignment whose end has passed is
// removed with its membership, whether or not anyone calls.
func (f *fakeGraph) expire() {
	now := f.Clock.Now()
	for _, gid := range slices.Sorted(maps.Keys(f.groups)) {
		g := f.groups[gid]
		for _, id := range slices.Sorted(maps.Keys(g.pim)) {
			s := g.pim[id]
			if !s.end.IsZero() && !now.Before(s.end) {
				delete(g.pim, id)
				delete(g.members, id)
				f.ended = append(f.ended, f.users[id].upn+" "+s.end.Format(time.RFC3339))
			}
		}
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8")
	httpapitest.WriteJSON(w, code, v)
}

func writeGraphError(w http.ResponseWriter, code int, errCode, msg string) {
	writeJSON(w, code, map[string]any{"error": map[string]any{
		"code": errCode, "message": msg,
		"innerError": map[string]string{"date": "2026-11-23T09:00:00", "request-id": "fake", "client-request-id": "fake"},
	}})
}

func notFound(w http.ResponseWriter, id string) {
	writeGraphError(w, http.StatusNotFound, "Request_ResourceNotFound",
		fmt.Sprintf("Resource '%s' does not exist or one of its queried reference-property objects are not present.", id))
}

// authed checks the bearer token and the resource-unit budget, and
// serves the request.
func (f *fakeGraph) authed(cost int, h http.HandlerFunc) http.HandlerFunc {
	return f.Serve(func(w http.ResponseWriter, r *http.Request) {
		now := f.Clock.Now()
		f.expire()
		if !f.Tokens.Valid(r.Header.Get("Authorization")) {
			writeGraphError(w, http.StatusUnauthorized, "InvalidAuthenticationToken", "Lifetime validation failed, the token is expired.")
			return
		}
		if f.force429 > 0 {
			f.force429--
			f.Throttled++
			w.Header().Set("Retry-After", "3")
			writeGraphError(w, http.StatusTooManyRequests, "TooManyRequests", "Too many requests.")
			return
		}
		if ok, _, reset := f.budget.Take("", cost, now); !ok {
			f.Throttled++
			w.Header().Set("Retry-After", strconv.Itoa(max(int(reset.Sub(now).Seconds()+0.999), 1)))
			writeGraphError(w, http.StatusTooManyRequests, "TooManyRequests", "Too many requests.")
			return
		}
		h(w, r)
	})
}

// handleToken is the v2.0 token endpoint, client credentials grant with a
// client secret.
func (f *fakeGraph) handleToken(w http.ResponseWriter, r *http.Request) {
	fail := func(code int, errCode, desc string) {
		writeJSON(w, code, map[string]any{"error": errCode, "error_description": desc + "\r\nTrace ID: fake\r\nCorrelation ID: fake", "error_codes": []int{7000215}})
	}
	if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "client_credentials" {
		fail(http.StatusBadRequest, "invalid_request", "AADSTS900144: The request body must contain the following parameter: 'grant_type'.")
		return
	}
	if r.PathValue("tenant") != f.tenant {
		fail(http.StatusBadRequest, "invalid_tenant", "AADSTS90002: Tenant not found.")
		return
	}
	if r.PostForm.Get("client_id") != f.clientID || r.PostForm.Get("client_secret") != f.secret {
		fail(http.StatusUnauthorized, "invalid_client", "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.")
		return
	}
	if scope := r.PostForm.Get("scope"); scope != f.url+"/.default" {
		fail(http.StatusBadRequest, "invalid_scope", "AADSTS1002012: The provided value for scope is not valid.")
		return
	}
	access, ttl := f.Tokens.Issue()
	writeJSON(w, http.StatusOK, map[string]any{"token_type": "Bearer", "expires_in": ttl, "ext_expires_in": ttl, "access_token": access})
}

func (f *fakeGraph) findUser(key string) *fakeUser {
	if u, ok := f.users[strings.ToLower(key)]; ok {
		return u
	}
	for _, u := range f.users {
		if strings.EqualFold(u.upn, key) {
			return u
		}
	}
	return nil
}

func (f *fakeGraph) userJSON(u *fakeUser) map[string]any {
	return map[string]any{"@odata.type": "#microsoft.graph.user", "id": u.id, "userPrincipalName": u.upn}
}

func (f *fakeGraph) handleUsers(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"value": []any{}})
}

func (f *fakeGraph) handleUser(w http.ResponseWriter, r *http.Request) {
	u := f.findUser(r.PathValue("id"))
	if u == nil {
		notFound(w, r.PathValue("id"))
		return
	}
	writeJSON(w, http.StatusOK, f.userJSON(u))
}

// seen reports whether a read sees an entry, counting the read.
func seen(lag *int) bool {
	if *lag > 0 {
		*lag--
		return false
	}
	return true
}

func (f *fakeGraph) handleCheckMemberGroups(w http.ResponseWriter, r *http.Request) {
	u := f.findUser(r.PathValue("id"))
	if u == nil {
		notFound(w, r.PathValue("id"))
		return
	}
	var body struct {
		GroupIDs []string `json:"groupIds"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || len(body.GroupIDs) > 20 {
		writeGraphError(w, http.StatusBadRequest, "Request_BadRequest", "Invalid request.")
		return
	}
	out := []string{}
	for _, gid := range body.GroupIDs {
		if g, ok := f.groups[gid]; ok {
			if lag, ok := g.members[u.id]; ok && seen(&lag) {
				out = append(out, gid)
			} else if ok {
				g.members[u.id] = lag
			}
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"value": out})
}

func (f *fakeGraph) handleGroup(w http.ResponseWriter, r *http.Request) {
	g, ok := f.groups[r.PathValue("gid")]
	if !ok {
		notFound(w, r.PathValue("gid"))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": r.PathValue("gid"), "displayName": g.name, "groupTypes": []string{}, "onPremisesSyncEnabled": nil})
}

// handleMembers pages with $top and a $skiptoken in @odata.nextLink.
func (f *fakeGraph) handleMembers(w http.ResponseWriter, r *http.Request) {
	gid := r.PathValue("gid")
	g, ok := f.groups[gid]
	if !ok {
		notFound(w, gid)
		return
	}
	q := r.URL.Query()
	top, _ := strconv.Atoi(q.Get("$top"))
	if top <= 0 || top > f.maxPage {
		top = f.maxPage
	}
	skip := q.Get("$skiptoken")
	var value []any
	next := ""
	for _, id := range slices.Sorted(maps.Keys(g.members)) {
		if id <= skip {
			continue
		}
		if len(value) == top {
			next = fmt.Sprintf("%s%s/groups/%s/members?$select=%s&$top=%d&$skiptoken=%s", f.url, graphPrefix, gid, q.Get("$select"), top, value[len(value)-1].(map[string]any)["id"])
			break
		}
		lag := g.members[id]
		if !seen(&lag) {
			g.members[id] = lag
			continue
		}
		value = append(value, f.userJSON(f.users[id]))
	}
	body := map[string]any{"@odata.context": f.url + graphPrefix + "/$metadata#directoryObjects(id,userPrincipalName)", "value": value}
	if value == nil {
		body["value"] = []any{}
	}
	if next != "" {
		body["@odata.nextLink"] = next
	}
	writeJSON(w, http.StatusOK, body)
}

func (f *fakeGraph) handleAddMember(w http.ResponseWriter, r *http.Request) {
	g, ok := f.groups[r.PathValue("gid")]
	if !ok {
		notFound(w, r.PathValue("gid"))
		return
	}
	var body map[string]string
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		writeGraphError(w, http.StatusBadRequest, "BadRequest", "Unable to read JSON request payload.")
		return
	}
	ref, ok := strings.CutPrefix(body["@odata.id"], f.graphURL()+"directoryObjects/")
	if !ok || len(body) != 1 {
		writeGraphError(w, http.StatusBadRequest, "BadRequest", "Invalid object identifier '"+body["@odata.id"]+"'.")
		return
	}
	if _, ok := f.users[ref]; !ok {
		notFound(w, ref)
		return
	}
	if _, ok := g.members[ref]; ok {
		writeGraphError(w, http.StatusBadRequest, "Request_BadRequest", "One or more added object references already exist for the following modified properties: 'members'.")
		return
	}
	g.members[ref] = f.lag
	w.WriteHeader(http.StatusNoContent)
}

func (f *fakeGraph) handleRemoveMember(w http.ResponseWriter, r *http.Request) {
	g, ok := f.groups[r.PathValue("gid")]
	if !ok {
		notFound(w, r.PathValue("gid"))
		return
	}
	id := r.PathValue("id")
	if _, ok := g.members[id]; !ok {
		notFound(w, id)
		return
	}
	delete(g.members, id)
	w.WriteHeader(http.StatusNoContent)
}

package google

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/providers/internal/httpapitest"
)

// apiPrefix is where the fake mounts the APIs, so that a request built
// from an absolute URL instead of api_url misses it and fails the test.
const apiPrefix = "/google"

// serviceAccountKey returns a service-account JSON key whose token_uri is
// the fake's, and the PEM private key inside it (a secret).
func serviceAccountKey(tokenURL string) (string, string) {
	_, pemKey := httpapitest.RSAKey()
	b, _ := json.Marshal(map[string]string{
		"type":           "service_account",
		"project_id":     "acme-prod",
		"private_key_id": "0123456789abcdef",
		"private_key":    pemKey,
		"client_email":   "gitgrant@acme-prod.iam.gserviceaccount.com",
		"client_id":      "100000000000000000001",
		"token_uri":      tokenURL,
	})
	return string(b), pemKey
}

// fakeGoogle serves the documented shapes of Google's OAuth 2.0 token
// endpoint (JWT bearer grant), of Cloud Identity groups.memberships and of
// Resource Manager v3 getIamPolicy/setIamPolicy, from memory. Its clock
// (for token, membership and condition expiry) can be moved forward.
type fakeGoogle struct {
	t        testing.TB
	url      string // api_url of both APIs
	tokenURL string // token_uri

	// Handlers run with Mu held; so does the state below. Throttled
	// counts the 429s; Tokens are the access tokens.
	httpapitest.Fake
	offset time.Duration // fake clock = real clock + offset
	// principals Google knows: users, groups, service accounts (emails).
	principals map[string]bool
	groups     map[string]*fakeGroup // by group email
	nextID     int
	// lag hides a new membership from lookups and lists for a while.
	lag time.Duration
	// policies by resource name.
	policies map[string]*fakePolicy
	// conflicts makes the next setIamPolicy calls lose to a concurrent
	// writer (409 ABORTED).
	conflicts int
	// throttle answers the next requests with 429 and Retry-After.
	throttle []int
	// quota: at most Limit requests a second (0: no limit); requests over
	// it get 429 with Retry-After: 1.
	quota httpapitest.Quota
	// refuseKey makes the token endpoint refuse the key (disabled).
	refuseKey bool
	// denied permissions, for testIamPermissions.
	denied []string
}

type fakeGroup struct {
	id      string
	members map[string]*fakeMember // by lower-case member key
}

type fakeMember struct {
	id, key string
	expire  time.Time // zero: none
	created time.Time // real time, for lag
}

type fakePolicy struct {
	etag     int
	bindings []binding
	audit    json.RawMessage
}

func newFakeGoogle(t testing.TB, clock gitgrant.Clock) *fakeGoogle {
	f := &fakeGoogle{t: t, Fake: httpapitest.Fake{Clock: clock}, principals: map[string]bool{}, groups: map[string]*fakeGroup{},
		policies: map[string]*fakePolicy{}, quota: httpapitest.Quota{Window: time.Second}}
	f.Tokens = httpapitest.Tokens{Now: f.now, Prefix: tokenPrefix + "-", TTL: time.Hour}
	oauth := http.NewServeMux()
	oauth.HandleFunc("POST /token", f.Serve(f.handleToken))
	root := httpapitest.NewServer(t, map[string]http.Handler{apiPrefix: f.Serve(f.handleAPI), "/oauth2": oauth})
	f.url, f.tokenURL = root+apiPrefix+"/", root+"/oauth2/token"
	return f
}

// now is the fake's clock: the test's clock plus what advance added.
func (f *fakeGoogle) now() time.Time { return f.Clock.Now().Add(f.offset) }

// advance moves the fake's clock forward.
func (f *fakeGoogle) advance(d time.Duration) {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	f.offset += d
}

func (f *fakeGoogle) addPrincipals(emails ...string) {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	for _, e := range emails {
		f.principals[strings.ToLower(e)] = true
	}
}

func (f *fakeGoogle) addGroup(email string) string {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	f.nextID++
	g := &fakeGroup{id: fmt.Sprintf("0grp%05d", f.nextID), members: map[string]*fakeMember{}}
	f.groups[email] = g
	f.principals[email] = true
	return "groups/" + g.id
}

func (f *fakeGoogle) addPolicy(resource string, bindings ...binding) {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	f.policies[resource] = &fakePolicy{etag: 1, bindings: bindings, audit: json.RawMessage(`[{"service":"allServices","auditLogConfigs":[{"logType":"ADMIN_READ"}]}]`)}
}

// expiry is the expireTime the fake holds for member in group, and
// whether the membership exists (at the fake's now).
func (f *fakeGoogle) expiry(group, member string) (time.Time, bool) {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	g := f.groups[group]
	f.sweep(g)
	m, ok := g.members[strings.ToLower(member)]
	if !ok {
		return time.Time{}, false
	}
	return m.expire, true
}

// hasRole evaluates the resource's policy at the fake's now, as IAM would
// when member makes a request: an unconditional binding or a condition
// request.time < timestamp(...) that still holds.
func (f *fakeGoogle) hasRole(resource, member, role string) bool {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	for _, b := range f.policies[resource].bindings {
		if b.Role != role || !slices.Contains(b.Members, member) {
			continue
		}
		if b.Condition == nil {
			return true
		}
		if end, ok := b.Condition.expiry(); ok && f.now().Before(end) {
			return true
		}
	}
	return false
}

// policyBindings returns a copy of the stored bindings.
func (f *fakeGoogle) policyBindings(resource string) []binding {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	var out []binding
	for _, b := range f.policies[resource].bindings {
		b.Members = slices.Clone(b.Members)
		out = append(out, b)
	}
	return out
}

// sweep deletes memberships whose expireTime has passed: Google does it.
func (f *fakeGoogle) sweep(g *fakeGroup) {
	for k, m := range g.members {
		if !m.expire.IsZero() && !f.now().Before(m.expire) {
			delete(g.members, k)
		}
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	httpapitest.WriteJSON(w, code, v)
}

func writeError(w http.ResponseWriter, code int, status, msg string) {
	writeJSON(w, code, map[string]any{"error": map[string]any{"code": code, "message": msg, "status": status}})
}

// handleToken checks a JWT bearer assertion signed by the test key, for
// the audience and a known scope, and issues a one-hour access token.
func (f *fakeGoogle) handleToken(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil || r.Form.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "unsupported_grant_type"})
		return
	}
	if f.refuseKey {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant", "error_description": "Invalid grant: account not found"})
		return
	}
	key, _ := httpapitest.RSAKey()
	var claims struct {
		Iss, Scope, Aud string
		Exp, Iat        int64
	}
	if !httpapitest.VerifyRS256(r.Form.Get("assertion"), &key.PublicKey, &claims) {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant", "error_description": "Invalid JWT Signature."})
		return
	}
	if claims.Aud != f.tokenURL || !strings.HasPrefix(claims.Scope, "https://www.googleapis.com/auth/") || claims.Iss == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_scope"})
		return
	}
	token, ttl := f.Tokens.Issue()
	f.Called("token")
	writeJSON(w, http.StatusOK, map[string]any{"access_token": token, "expires_in": ttl, "token_type": "Bearer"})
}

var (
	v3Path = regexp.MustCompile(`^/v3/((?:projects|folders|organizations)/[^/:]+):(getIamPolicy|setIamPolicy|testIamPermissions)$`)
	v1Path = regexp.MustCompile(`^/v1/groups/([A-Za-z0-9]+)/memberships(?:/([A-Za-z0-9]+))?(:lookup|:modifyMembershipRoles)?$`)
)

// handleAPI authenticates, applies quota and queued throttling, and
// dispatches by path (Google's `name:verb` segments do not fit
// ServeMux patterns).
func (f *fakeGoogle) handleAPI(w http.ResponseWriter, r *http.Request) {
	if !f.Tokens.Valid(r.Header.Get("Authorization")) {
		writeError(w, http.StatusUnauthorized, "UNAUTHENTICATED", "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.")
		return
	}
	if len(f.throttle) > 0 {
		wait := f.throttle[0]
		f.throttle = f.throttle[1:]
		f.Throttled++
		w.Header().Set("Retry-After", strconv.Itoa(wait))
		writeError(w, http.StatusTooManyRequests, "RESOURCE_EXHAUSTED", "Quota exceeded for quota metric 'Requests' and limit 'Requests per minute'.")
		return
	}
	if ok, _, _ := f.quota.Take("", 1, f.Clock.Now()); !ok {
		f.Throttled++
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusTooManyRequests, "RESOURCE_EXHAUSTED", "Quota exceeded.")
		return
	}
	path := r.URL.Path
	switch m := v3Path.FindStringSubmatch(path); {
	case m != nil && r.Method == http.MethodPost:
		f.Called(m[2])
		switch m[2] {
		case "getIamPolicy":
			f.getIamPolicy(w, r, m[1])
		case "setIamPolicy":
			f.setIamPolicy(w, r, m[1])
		default:
			f.testIamPermissions(w, r, m[1])
		}
		return
	case path == "/v1/groups:lookup" && r.Method == http.MethodGet:
		f.Called("groups.lookup")
		for email, g := range f.groups {
			if strings.EqualFold(email, r.URL.Query().Get("groupKey.id")) {
				writeJSON(w, http.StatusOK, map[string]string{"name": "groups/" + g.id})
				return
			}
		}
		writeError(w, http.StatusNotFound, "NOT_FOUND", "Not found")
		return
	}
	m := v1Path.FindStringSubmatch(path)
	if m == nil {
		f.t.Errorf("fake Google: unexpected request %s %s", r.Method, r.URL)
		writeError(w, http.StatusNotFound, "NOT_FOUND", "unknown method")
		return
	}
	var g *fakeGroup
	for _, gg := range f.groups {
		if gg.id == m[1] {
			g = gg
		}
	}
	if g == nil {
		writeError(w, http.StatusNotFound, "NOT_FOUND", "Not found")
		return
	}
	f.sweep(g)
	switch {
	case m[2] == "" && m[3] == "" && r.Method == http.MethodGet:
		f.Called("memberships.list")
		f.list(w, r, g)
	case m[2] == "" && m[3] == "" && r.Method == http.MethodPost:
		f.Called("memberships.create")
		f.create(w, r, g)
	case m[2] == "" && m[3] == ":lookup" && r.Method == http.MethodGet:
		f.Called("memberships.lookup")
		mem, ok := g.members[strings.ToLower(r.URL.Query().Get("memberKey.id"))]
		if !ok || time.Since(mem.created) < f.lag {
			writeError(w, http.StatusNotFound, "NOT_FOUND", "Not found")
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"name": "groups/" + g.id + "/memberships/" + mem.id})
	case m[2] != "" && m[3] == ":modifyMembershipRoles" && r.Method == http.MethodPost:
		f.Called("memberships.modifyMembershipRoles")
		f.modifyRoles(w, r, g, m[2])
	case m[2] != "" && m[3] == "" && r.Method == http.MethodDelete:
		f.Called("memberships.delete")
		for k, mem := range g.members {
			if mem.id == m[2] {
				delete(g.members, k)
				writeJSON(w, http.StatusOK, map[string]any{"done": true, "response": map[string]string{"@type": "type.googleapis.com/google.protobuf.Empty"}})
				return
			}
		}
		writeError(w, http.StatusNotFound, "NOT_FOUND", "Not found")
	default:
		f.t.Errorf("fake Google: unexpected request %s %s", r.Method, r.URL)
		writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "unexpected")
	}
}

func (f *fakeGoogle) membershipJSON(g *fakeGroup, m *fakeMember) map[string]any {
	role := map[string]any{"name": "MEMBER"}
	if !m.expire.IsZero() {
		role["expiryDetail"] = map[string]string{"expireTime": m.expire.UTC().Format(time.RFC3339Nano)}
	}
	return map[string]any{
		"name":               "groups/" + g.id + "/memberships/" + m.id,
		"preferredMemberKey": map[string]string{"id": m.key},
		"roles":              []any{role},
		"type":               "USER",
	}
}

// list serves memberships sorted by key, pageSize at most 500 (FULL
// view), with an opaque nextPageToken.
func (f *fakeGoogle) list(w http.ResponseWriter, r *http.Request, g *fakeGroup) {
	q := r.URL.Query()
	size, _ := strconv.Atoi(q.Get("pageSize"))
	if size <= 0 || size > 500 {
		size = 200
	}
	start := 0
	if tok := q.Get("pageToken"); tok != "" {
		b, _ := base64.URLEncoding.DecodeString(tok)
		var err error
		if start, err = strconv.Atoi(strings.TrimPrefix(string(b), "offset:")); err != nil {
			writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "Invalid page token")
			return
		}
	}
	var keys []string
	for k, m := range g.members {
		if time.Since(m.created) >= f.lag {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	end := min(start+size, len(keys))
	out := []any{}
	for _, k := range keys[min(start, len(keys)):end] {
		out = append(out, f.membershipJSON(g, g.members[k]))
	}
	resp := map[string]any{"memberships": out}
	if end < len(keys) {
		resp["nextPageToken"] = base64.URLEncoding.EncodeToString([]byte("offset:" + strconv.Itoa(end)))
	}
	writeJSON(w, http.StatusOK, resp)
}

func (f *fakeGoogle) parseExpire(w http.ResponseWriter, roles []membershipRole) (time.Time, bool) {
	if len(roles) != 1 || roles[0].Name != "MEMBER" {
		writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "roles must be [MEMBER]")
		return time.Time{}, false
	}
	if roles[0].ExpiryDetail == nil || roles[0].ExpiryDetail.ExpireTime == "" {
		return time.Time{}, true
	}
	t, err := time.Parse(time.RFC3339Nano, roles[0].ExpiryDetail.ExpireTime)
	if err != nil || !t.After(f.now()) {
		writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "Invalid expiry time")
		return time.Time{}, false
	}
	return t, true
}

func (f *fakeGoogle) create(w http.ResponseWriter, r *http.Request, g *fakeGroup) {
	var body membership
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "Invalid JSON payload received.")
		return
	}
	key := strings.ToLower(body.PreferredMemberKey.ID)
	if !f.principals[key] {
		writeError(w, http.StatusNotFound, "NOT_FOUND", "Error(4003): Cannot find member.")
		return
	}
	if _, ok := g.members[key]; ok {
		writeError(w, http.StatusConflict, "ALREADY_EXISTS", "Error(4003): Member already exists.")
		return
	}
	expire, ok := f.parseExpire(w, body.Roles)
	if !ok {
		return
	}
	f.nextID++
	m := &fakeMember{id: fmt.Sprintf("m%07d", f.nextID), key: body.PreferredMemberKey.ID, expire: expire, created: time.Now()}
	g.members[key] = m
	writeJSON(w, http.StatusOK, map[string]any{"done": true, "response": f.membershipJSON(g, m)})
}

func (f *fakeGoogle) modifyRoles(w http.ResponseWriter, r *http.Request, g *fakeGroup, id string) {
	var body struct {
		AddRoles          []any `json:"addRoles"`
		RemoveRoles       []any `json:"removeRoles"`
		UpdateRolesParams []struct {
			FieldMask      string         `json:"fieldMask"`
			MembershipRole membershipRole `json:"membershipRole"`
		} `json:"updateRolesParams"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || len(body.AddRoles)+len(body.RemoveRoles) > 0 ||
		len(body.UpdateRolesParams) != 1 || body.UpdateRolesParams[0].FieldMask != "expiryDetail.expireTime" {
		writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "Request contains an invalid argument.")
		return
	}
	for _, m := range g.members {
		if m.id != id {
			continue
		}
		expire, ok := f.parseExpire(w, []membershipRole{body.UpdateRolesParams[0].MembershipRole})
		if !ok {
			return
		}
		m.expire = expire
		writeJSON(w, http.StatusOK, map[string]any{"membership": f.membershipJSON(g, m)})
		return
	}
	writeError(w, http.StatusNotFound, "NOT_FOUND", "Not found")
}

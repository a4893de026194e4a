package githubteam

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/providers/internal/httpapitest"
)

// apiPrefix is where the fake mounts the REST API, as GitHub Enterprise
// Server does, so that a request built from an absolute URL instead of the
// client's BaseURL misses it and fails the test.
const apiPrefix = "/api/v3"

// fakeGitHub serves the documented shapes of the team membership REST
// endpoints from memory. Logins are matched without regard to case, as
// GitHub does, and reported in their canonical spelling.
type fakeGitHub struct {
	httpapitest.Fake // handlers run with Mu held; so does the state below
	t                *testing.T
	org              string
	token            string // required as "Bearer <token>" when set

	users    map[string]string // lower-case login -> canonical login
	inOrg    map[string]bool   // lower-case login -> member of org
	teams    map[string]map[string]*fakeMembership
	children map[string][]string // parent slug -> child slugs
	limits   []string            // rate limit responses to give, next first
	failures int                 // 500s to give before answering
}

type fakeMembership struct {
	login, role, state string
}

// newFakeGitHub starts a fake for org with the given org members and
// teams, and returns it with the api_url to reach it.
func newFakeGitHub(t *testing.T, org string, members []string, teams ...string) (*fakeGitHub, string) {
	f := &fakeGitHub{t: t, org: org, users: map[string]string{}, inOrg: map[string]bool{}, teams: map[string]map[string]*fakeMembership{}, children: map[string][]string{}}
	for _, m := range members {
		f.addUser(m, true)
	}
	for _, team := range teams {
		f.teams[team] = map[string]*fakeMembership{}
	}
	api := http.NewServeMux()
	api.HandleFunc("GET /orgs/{org}", f.handleOrg)
	api.HandleFunc("GET /orgs/{org}/teams/{slug}", f.handleTeam)
	api.HandleFunc("GET /orgs/{org}/teams/{slug}/members", f.handleMembers)
	api.HandleFunc("GET /orgs/{org}/teams/{slug}/teams", f.handleChildTeams)
	api.HandleFunc("GET /orgs/{org}/teams/{slug}/memberships/{user}", f.handleGetMembership)
	api.HandleFunc("PUT /orgs/{org}/teams/{slug}/memberships/{user}", f.handlePutMembership)
	api.HandleFunc("DELETE /orgs/{org}/teams/{slug}/memberships/{user}", f.handleDeleteMembership)
	api.HandleFunc("GET /users/{user}", f.handleUser)
	api.HandleFunc("/", httpapitest.Unexpected(t, func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "Not Found")
	}))
	f.Clock = gitgrant.SystemClock
	root := httpapitest.NewServer(t, map[string]http.Handler{apiPrefix: f.Serve(f.gate(api))})
	return f, root + apiPrefix + "/"
}

func (f *fakeGitHub) addUser(login string, inOrg bool) {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	f.users[strings.ToLower(login)] = login
	f.inOrg[strings.ToLower(login)] = inOrg
}

// limit queues rate limit answers: "primary" (403), "primary429",
// "secondary" (403 with Retry-After) or "429" (with Retry-After), each
// optionally with ":<seconds>" to wait.
func (f *fakeGitHub) limit(kinds ...string) {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	f.limits = append(f.limits, kinds...)
}

// state returns the team's memberships as "login:role:state", sorted.
func (f *fakeGitHub) state(team string) []string {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	var out []string
	for _, m := range f.teams[team] {
		out = append(out, m.login+":"+m.role+":"+m.state)
	}
	slices.Sort(out)
	return out
}

func (f *fakeGitHub) setMembership(team, login, role, state string) {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	f.teams[team][strings.ToLower(login)] = &fakeMembership{login: f.users[strings.ToLower(login)], role: role, state: state}
}

// gate answers what GitHub answers before a request reaches its handler:
// a refused token, a server error, a rate limit.
func (f *fakeGitHub) gate(next http.Handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var limit string
		if len(f.limits) > 0 {
			limit, f.limits = f.limits[0], f.limits[1:]
		}
		fail := f.failures > 0
		if fail {
			f.failures--
		}
		if f.token != "" && r.Header.Get("Authorization") != "Bearer "+f.token {
			writeError(w, http.StatusUnauthorized, "Bad credentials")
			return
		}
		if fail {
			writeError(w, http.StatusBadGateway, "Server Error")
			return
		}
		if limit != "" {
			writeLimit(w, limit)
			return
		}
		w.Header().Set("X-RateLimit-Limit", "5000")
		w.Header().Set("X-RateLimit-Remaining", "4999")
		w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10))
		next.ServeHTTP(w, r)
	}
}

// writeLimit answers as GitHub does when a rate limit is hit.
func writeLimit(w http.ResponseWriter, spec string) {
	kind, secs, _ := strings.Cut(spec, ":")
	wait, _ := strconv.Atoi(secs)
	if wait == 0 {
		wait = 1
	}
	h := w.Header()
	switch kind {
	case "primary":
		h.Set("X-RateLimit-Limit", "5000")
		h.Set("X-RateLimit-Remaining", "0")
		h.Set("X-RateLimit-Reset", strconv.FormatInt(time.Now().Add(time.Duration(wait)*time.Second).Unix(), 10))
		writeJSON(w, http.StatusForbidden, map[string]string{
			"message":           "API rate limit exceeded for installation.",
			"documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-the-primary-rate-limit",
		})
	case "primary429":
		h.Set("X-RateLimit-Limit", "5000")
		h.Set("X-RateLimit-Remaining", "0")
		h.Set("X-RateLimit-Reset", strconv.FormatInt(time.Now().Add(time.Duration(wait)*time.Second).Unix(), 10))
		writeJSON(w, http.StatusTooManyRequests, map[string]string{"message": "API rate limit exceeded"})
	case "secondary":
		h.Set("Retry-After", strconv.Itoa(wait))
		writeJSON(w, http.StatusForbidden, map[string]string{
			"message":           "You have exceeded a secondary rate limit.",
			"documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits",
		})
	case "429":
		h.Set("Retry-After", strconv.Itoa(wait))
		writeJSON(w, http.StatusTooManyRequests, map[string]string{"message": "Too Many Requests"})
	default:
		panic("unknown rate limit kind " + kind)
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	httpapitest.WriteJSON(w, code, v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"message": msg, "documentation_url": "https://docs.github.com/rest"})
}

// team finds the request's team, answering 404 itself when there is none.
func (f *fakeGitHub) team(w http.ResponseWriter, r *http.Request) (map[string]*fakeMembership, bool) {
	if !strings.EqualFold(r.PathValue("org"), f.org) {
		writeError(w, http.StatusNotFound, "Not Found")
		return nil, false
	}
	team, ok := f.teams[r.PathValue("slug")]
	if !ok {
		writeError(w, http.StatusNotFound, "Not Found")
	}
	return team, ok
}

func (f *fakeGitHub) handleOrg(w http.ResponseWriter, r *http.Request) {
	if !strings.EqualFold(r.PathValue("org"), f.org) {
		writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"login": f.org, "id": 1})
}

func (f *fakeGitHub) handleTeam(w http.ResponseWriter, r *http.Request) {
	if _, ok := f.team(w, r); ok {
		writeJSON(w, http.StatusOK, map[string]any{"slug": r.PathValue("slug"), "name": r.PathValue("slug"), "id": 7})
	}
}

func (f *fakeGitHub) handleChildTeams(w http.ResponseWriter, r *http.Request) {
	if _, ok := f.team(w, r); !ok {
		return
	}
	teams := []map[string]any{}
	for _, c := range f.children[r.PathValue("slug")] {
		teams = append(teams, map[string]any{"slug": c, "name": c})
	}
	writeJSON(w, http.StatusOK, teams)
}

// handleMembers lists active members (never pending ones), sorted, in
// pages of per_page (default 30, at most 100) with a Link header.
func (f *fakeGitHub) handleMembers(w http.ResponseWriter, r *http.Request) {
	team, ok := f.team(w, r)
	if !ok {
		return
	}
	role := r.URL.Query().Get("role")
	var logins []string
	for _, m := range team {
		if m.state == "active" && (role == "" || role == "all" || role == m.role) {
			logins = append(logins, m.login)
		}
	}
	slices.Sort(logins)
	perPage, _ := strconv.Atoi(r.URL.Query().Get("per_page"))
	if perPage <= 0 {
		perPage = 30
	}
	perPage = min(perPage, 100)
	page, _ := strconv.Atoi(r.URL.Query().Get("page"))
	page = max(page, 1)
	last := max((len(logins)+perPage-1)/perPage, 1)
	start, end := min((page-1)*perPage, len(logins)), min(page*perPage, len(logins))
	link := func(p int, rel string) string {
		q := r.URL.Query()
		q.Set("page", strconv.Itoa(p))
		q.Set("per_page", strconv.Itoa(perPage))
		return fmt.Sprintf(`<http://%s%s%s?%s>; rel="%s"`, r.Host, apiPrefix, r.URL.Path, q.Encode(), rel)
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
	users := []map[string]any{}
	for _, l := range logins[start:end] {
		users = append(users, map[string]any{"login": l, "type": "User"})
	}
	writeJSON(w, http.StatusOK, users)
}

func (f *fakeGitHub) handleGetMembership(w http.ResponseWriter, r *http.Request) {
	team, ok := f.team(w, r)
	if !ok {
		return
	}
	m, ok := team[strings.ToLower(r.PathValue("user"))]
	if !ok {
		writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"role": m.role, "state": m.state})
}

// handlePutMembership adds a member, or invites a user from outside the
// organisation (state pending); an existing membership keeps its state and
// takes the requested role, as on GitHub.
func (f *fakeGitHub) handlePutMembership(w http.ResponseWriter, r *http.Request) {
	team, ok := f.team(w, r)
	if !ok {
		return
	}
	key := strings.ToLower(r.PathValue("user"))
	login, ok := f.users[key]
	if !ok {
		writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	var body struct {
		Role string `json:"role"`
	}
	if r.ContentLength != 0 {
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			writeError(w, http.StatusBadRequest, "Problems parsing JSON")
			return
		}
	}
	if body.Role == "" {
		body.Role = "member"
	}
	if body.Role != "member" && body.Role != "maintainer" {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]string{"message": "Validation Failed"})
		return
	}
	m, ok := team[key]
	if !ok {
		state := "pending"
		if f.inOrg[key] {
			state = "active"
		}
		m = &fakeMembership{login: login, state: state}
		team[key] = m
	}
	m.role = body.Role
	writeJSON(w, http.StatusOK, map[string]string{"url": "https://api.github.com/teams/7/memberships/" + login, "role": m.role, "state": m.state})
}

func (f *fakeGitHub) handleDeleteMembership(w http.ResponseWriter, r *http.Request) {
	team, ok := f.team(w, r)
	if !ok {
		return
	}
	key := strings.ToLower(r.PathValue("user"))
	if _, ok := team[key]; !ok {
		writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	delete(team, key)
	w.WriteHeader(http.StatusNoContent)
}

func (f *fakeGitHub) handleUser(w http.ResponseWriter, r *http.Request) {
	login, ok := f.users[strings.ToLower(r.PathValue("user"))]
	if !ok {
		writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"login": login, "id": 1000, "type": "User"})
}

package ghfake

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
)

// team is an organisation's team: its memberships by lower-case login,
// and the slugs of its child teams.
type team struct {
	members  map[string]*membership
	children []string
}

// membership is a user's place in a team: role "member" or "maintainer",
// state "active" or "pending" (invited to the organisation, not accepted).
type membership struct {
	login, role, state string
}

func (s *Server) teamRoutes(m *http.ServeMux) {
	m.HandleFunc("GET /orgs/{org}", s.getOrg)
	m.HandleFunc("GET /orgs/{org}/teams/{slug}", s.withTeam(s.getTeam))
	m.HandleFunc("GET /orgs/{org}/teams/{slug}/members", s.withTeam(s.listTeamMembers))
	m.HandleFunc("GET /orgs/{org}/teams/{slug}/teams", s.withTeam(s.listChildTeams))
	m.HandleFunc("GET /orgs/{org}/teams/{slug}/memberships/{user}", s.withTeam(s.getTeamMembership))
	m.HandleFunc("PUT /orgs/{org}/teams/{slug}/memberships/{user}", s.withTeam(s.putTeamMembership))
	m.HandleFunc("DELETE /orgs/{org}/teams/{slug}/memberships/{user}", s.withTeam(s.deleteTeamMembership))
	m.HandleFunc("GET /users/{user}", s.getUserByLogin)
}

// AddTeam makes org/slug a team (with no members yet).
func (s *Server) AddTeam(org, slug string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.teamLocked(org, slug)
}

func (s *Server) teamLocked(org, slug string) *team {
	key := strings.ToLower(org + "/" + slug)
	if s.teams[key] == nil {
		s.teams[key] = &team{members: map[string]*membership{}}
	}
	return s.teams[key]
}

// AddUser makes login a GitHub user (GET /users/{login} answers with this
// spelling), a member of orgs. A team membership granted to a user outside
// the team's organisation is an invitation (pending), as on GitHub.
func (s *Server) AddUser(login string, orgs ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[strings.ToLower(login)] = login
	for _, org := range orgs {
		s.orgMembers[strings.ToLower(org+"/"+login)] = true
	}
}

// AddTeamMember makes login an active member of org/slug.
func (s *Server) AddTeamMember(org, slug, login string) {
	s.SetTeamMembership(org, slug, login, "active")
}

// SetTeamMembership sets login's membership state in org/slug: "active",
// "pending" (invited, not accepted), or "" for none.
func (s *Server) SetTeamMembership(org, slug, login, state string) {
	s.SetTeamMember(org, slug, login, "member", state)
}

// SetTeamMember sets login's role ("member" or "maintainer") and state in
// org/slug, as SetTeamMembership does.
func (s *Server) SetTeamMember(org, slug, login, role, state string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, key := s.teamLocked(org, slug), strings.ToLower(login)
	if state == "" {
		delete(t.members, key)
		return
	}
	if known, ok := s.users[key]; ok {
		login = known
	}
	t.members[key] = &membership{login: login, role: role, state: state}
}

// SetChildTeams makes children the child teams of org/parent.
func (s *Server) SetChildTeams(org, parent string, children ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.teamLocked(org, parent).children = children
}

// TeamMemberships returns org/slug's memberships as "login:role:state",
// sorted.
func (s *Server) TeamMemberships(org, slug string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	if t, ok := s.teams[strings.ToLower(org+"/"+slug)]; ok {
		for _, m := range t.members {
			out = append(out, m.login+":"+m.role+":"+m.state)
		}
	}
	slices.Sort(out)
	return out
}

// getOrg answers for an organisation that has a team or a member.
func (s *Server) getOrg(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	prefix := strings.ToLower(r.PathValue("org")) + "/"
	inOrg := func(key string) bool { return strings.HasPrefix(key, prefix) }
	if !slices.ContainsFunc(slices.Collect(maps.Keys(s.teams)), inOrg) && !slices.ContainsFunc(slices.Collect(maps.Keys(s.orgMembers)), inOrg) {
		notFound(w, r)
		return
	}
	writeJSON(w, r, http.StatusOK, map[string]any{"login": r.PathValue("org"), "id": 1})
}

type teamHandler func(w http.ResponseWriter, r *http.Request, t *team)

// withTeam finds the request's team and runs h under the lock; a token
// that may not read teams gets a 403 or 404 through Inject, as from
// GitHub.
func (s *Server) withTeam(h teamHandler) http.HandlerFunc { return named(s, s.teams, "org", "slug", h) }

func (s *Server) getTeam(w http.ResponseWriter, r *http.Request, _ *team) {
	org, slug := r.PathValue("org"), r.PathValue("slug")
	writeJSON(w, r, http.StatusOK, map[string]any{"id": teamID(org, slug), "node_id": "T_" + slug, "name": slug, "slug": slug,
		"privacy": "closed", "permission": "pull", "notification_setting": "notifications_enabled", "description": nil, "parent": nil,
		"url":              fmt.Sprintf("http://%s%s/orgs/%s/teams/%s", r.Host, Prefix, org, slug),
		"html_url":         fmt.Sprintf("http://%s/orgs/%s/teams/%s", r.Host, org, slug),
		"members_url":      fmt.Sprintf("http://%s%s/orgs/%s/teams/%s/members{/member}", r.Host, Prefix, org, slug),
		"repositories_url": fmt.Sprintf("http://%s%s/orgs/%s/teams/%s/repos", r.Host, Prefix, org, slug),
		"members_count":    0, "repos_count": 0, "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
		"organization": map[string]any{"login": org}})
}

func teamID(org, slug string) int {
	id := 0
	for _, c := range strings.ToLower(org + "/" + slug) {
		id = (id*31 + int(c)) % 1_000_000
	}
	return id
}

// listTeamMembers lists the active members (never pending ones) with the
// role asked for ("all" by default), sorted, in pages.
func (s *Server) listTeamMembers(w http.ResponseWriter, r *http.Request, t *team) {
	role := r.URL.Query().Get("role")
	var logins []string
	for _, m := range t.members {
		if m.state == "active" && (role == "" || role == "all" || role == m.role) {
			logins = append(logins, m.login)
		}
	}
	slices.Sort(logins)
	out := []any{}
	for _, l := range paginate(w, r, logins) {
		out = append(out, user(l))
	}
	writeJSON(w, r, http.StatusOK, out)
}

func (s *Server) listChildTeams(w http.ResponseWriter, r *http.Request, t *team) {
	out := []map[string]any{}
	for _, c := range t.children {
		out = append(out, map[string]any{"slug": c, "name": c})
	}
	writeJSON(w, r, http.StatusOK, out)
}

func (s *Server) membershipJSON(r *http.Request, m *membership) map[string]any {
	return map[string]any{"state": m.state, "role": m.role,
		"url": fmt.Sprintf("http://%s%s/orgs/%s/teams/%s/memberships/%s", r.Host, Prefix, r.PathValue("org"), r.PathValue("slug"), r.PathValue("user"))}
}

func (s *Server) getTeamMembership(w http.ResponseWriter, r *http.Request, t *team) {
	m, ok := t.members[strings.ToLower(r.PathValue("user"))]
	if !ok {
		notFound(w, r)
		return
	}
	writeJSON(w, r, http.StatusOK, s.membershipJSON(r, m))
}

// putTeamMembership adds a member, or invites a user from outside the
// organisation (state pending); an existing membership keeps its state
// and takes the requested role, as on GitHub.
func (s *Server) putTeamMembership(w http.ResponseWriter, r *http.Request, t *team) {
	key := strings.ToLower(r.PathValue("user"))
	login, ok := s.users[key]
	if !ok {
		notFound(w, r)
		return
	}
	var body struct {
		Role string `json:"role"`
	}
	if r.ContentLength != 0 && !decode(w, r, &body) {
		return
	}
	if body.Role == "" {
		body.Role = "member"
	}
	if body.Role != "member" && body.Role != "maintainer" {
		writeJSON(w, r, http.StatusUnprocessableEntity, map[string]any{"message": "Validation Failed"})
		return
	}
	m, ok := t.members[key]
	if !ok {
		state := "pending"
		if s.orgMembers[strings.ToLower(r.PathValue("org")+"/"+login)] {
			state = "active"
		}
		m = &membership{login: login, state: state}
		t.members[key] = m
	}
	m.role = body.Role
	writeJSON(w, r, http.StatusOK, s.membershipJSON(r, m))
}

func (s *Server) deleteTeamMembership(w http.ResponseWriter, r *http.Request, t *team) {
	key := strings.ToLower(r.PathValue("user"))
	if _, ok := t.members[key]; !ok {
		notFound(w, r)
		return
	}
	delete(t.members, key)
	w.WriteHeader(http.StatusNoContent)
}

// getUserByLogin implements GET /users/{user} for the users AddUser made.
func (s *Server) getUserByLogin(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	login, ok := s.users[strings.ToLower(r.PathValue("user"))]
	if !ok {
		notFound(w, r)
		return
	}
	writeJSON(w, r, http.StatusOK, user(login))
}

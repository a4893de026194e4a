package ghfake

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"path"
	"strings"
	"time"
)

func (s *Server) routes(m *http.ServeMux) {
	m.HandleFunc("GET /repos/{owner}/{repo}", s.repo(s.getRepo))
	m.HandleFunc("GET /repos/{owner}/{repo}/commits/{sha}", s.repo(s.getCommit))
	m.HandleFunc("GET /repos/{owner}/{repo}/commits/{sha}/pulls", s.repo(s.commitPulls))
	m.HandleFunc("GET /repos/{owner}/{repo}/pulls", s.repo(s.listPulls))
	m.HandleFunc("POST /repos/{owner}/{repo}/pulls", s.repo(s.createPull))
	m.HandleFunc("PATCH /repos/{owner}/{repo}/pulls/{n}", s.repo(s.editPull))
	m.HandleFunc("GET /repos/{owner}/{repo}/pulls/{n}", s.repo(s.getPull))
	m.HandleFunc("GET /repos/{owner}/{repo}/pulls/{n}/commits", s.repo(s.pullCommits))
	m.HandleFunc("GET /repos/{owner}/{repo}/pulls/{n}/reviews", s.repo(s.pullReviews))
	m.HandleFunc("GET /repos/{owner}/{repo}/pulls/{n}/files", s.repo(s.pullFiles))
	m.HandleFunc("GET /repos/{owner}/{repo}/contents/{path...}", s.repo(s.contents))
	m.HandleFunc("GET /repos/{owner}/{repo}/issues", s.repo(s.listIssues))
	m.HandleFunc("POST /repos/{owner}/{repo}/issues", s.repo(s.createIssue))
	m.HandleFunc("GET /repos/{owner}/{repo}/issues/{n}/comments", s.repo(s.listComments))
	m.HandleFunc("POST /repos/{owner}/{repo}/issues/{n}/comments", s.repo(s.createComment))
	m.HandleFunc("PATCH /repos/{owner}/{repo}/issues/comments/{id}", s.repo(s.editComment))
	m.HandleFunc("POST /repos/{owner}/{repo}/check-runs", s.repo(s.createCheckRun))
	m.HandleFunc("POST /repos/{owner}/{repo}/statuses/{sha}", s.repo(s.createStatus))
	s.teamRoutes(m)
	m.HandleFunc("POST /app/installations/{id}/access_tokens", s.accessToken)
	m.HandleFunc("GET /app", s.getApp)
	m.HandleFunc("GET /user", s.getUser)
	m.HandleFunc("GET /users/{login}/keys", s.listUserKeys)
}

type repoHandler func(w http.ResponseWriter, r *http.Request, repo *Repo)

// repo finds the repository and runs h under the lock.
func (s *Server) repo(h repoHandler) http.HandlerFunc { return named(s, s.repos, "owner", "repo", h) }

// named runs h under the lock with what the request's path names in m,
// by its lower-case "first/second" path values; 404 when m has none.
func named[T any](s *Server, m map[string]*T, first, second string, h func(http.ResponseWriter, *http.Request, *T)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		v, ok := m[strings.ToLower(r.PathValue(first)+"/"+r.PathValue(second))]
		if !ok {
			notFound(w, r)
			return
		}
		h(w, r, v)
	}
}

func user(login string) any {
	if login == "" {
		return nil
	}
	id := 0
	for _, c := range login {
		id = id*31 + int(c)
	}
	typ := "User"
	if strings.HasSuffix(login, "[bot]") {
		typ = "Bot"
	}
	return map[string]any{"login": login, "id": id & 0x7fffffff, "type": typ}
}

func ts(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(time.RFC3339)
}

func (s *Server) getRepo(w http.ResponseWriter, r *http.Request, rp *Repo) {
	writeJSON(w, r, http.StatusOK, map[string]any{
		"id": 1, "name": rp.Name, "full_name": rp.Owner + "/" + rp.Name,
		"owner": user(rp.Owner), "default_branch": rp.DefaultBranch, "private": true,
	})
}

func commitJSON(c *Commit) map[string]any {
	parents := []any{}
	for _, p := range c.Parents {
		parents = append(parents, map[string]any{"sha": p})
	}
	person := func(login string) map[string]any {
		name := login
		if name == "" {
			name = "unlinked"
		}
		return map[string]any{"name": name, "email": name + "@users.noreply.example", "date": ts(c.Date)}
	}
	return map[string]any{
		"sha": c.SHA,
		"commit": map[string]any{
			"message": c.Message, "author": person(c.Author), "committer": person(c.Committer),
		},
		"author": user(c.Author), "committer": user(c.Committer), "parents": parents,
	}
}

func (s *Server) getCommit(w http.ResponseWriter, r *http.Request, rp *Repo) {
	c, ok := rp.commits[r.PathValue("sha")]
	if !ok {
		writeJSON(w, r, http.StatusUnprocessableEntity, map[string]any{"message": "No commit found for SHA: " + r.PathValue("sha")})
		return
	}
	writeJSON(w, r, http.StatusOK, commitJSON(c))
}

func (s *Server) contents(w http.ResponseWriter, r *http.Request, rp *Repo) {
	ref := r.URL.Query().Get("ref")
	if ref == "" || ref == rp.DefaultBranch {
		notFound(w, r) // the fake has no branches: tests ask at a commit
		return
	}
	c, ok := rp.commits[ref]
	if !ok {
		writeJSON(w, r, http.StatusNotFound, map[string]any{"message": "No commit found for the ref " + ref})
		return
	}
	p := r.PathValue("path")
	body, ok := c.Files[p]
	if !ok {
		notFound(w, r)
		return
	}
	writeJSON(w, r, http.StatusOK, map[string]any{
		"type": "file", "encoding": "base64", "size": len(body), "name": path.Base(p), "path": p,
		"content": base64.StdEncoding.EncodeToString([]byte(body)), "sha": BlobSHA([]byte(body)),
	})
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(v); err != nil {
		writeJSON(w, r, http.StatusBadRequest, map[string]any{"message": "Problems parsing JSON"})
		return false
	}
	return true
}

func (s *Server) createCheckRun(w http.ResponseWriter, r *http.Request, rp *Repo) {
	var in struct {
		Name       string `json:"name"`
		HeadSHA    string `json:"head_sha"`
		Status     string `json:"status"`
		Conclusion string `json:"conclusion"`
		Output     struct {
			Title   string `json:"title"`
			Summary string `json:"summary"`
		} `json:"output"`
	}
	if !decode(w, r, &in) {
		return
	}
	s.nextID++
	c := &CheckRun{ID: s.nextID, Name: in.Name, HeadSHA: in.HeadSHA, Status: in.Status, Conclusion: in.Conclusion, Title: in.Output.Title, Summary: in.Output.Summary}
	rp.checkRuns = append(rp.checkRuns, c)
	writeJSON(w, r, http.StatusCreated, map[string]any{"id": c.ID, "name": c.Name, "head_sha": c.HeadSHA, "status": c.Status, "conclusion": c.Conclusion})
}

func (s *Server) createStatus(w http.ResponseWriter, r *http.Request, rp *Repo) {
	var in struct {
		State       string `json:"state"`
		Context     string `json:"context"`
		Description string `json:"description"`
	}
	if !decode(w, r, &in) {
		return
	}
	st := &Status{SHA: r.PathValue("sha"), State: in.State, Context: in.Context, Description: in.Description}
	rp.statuses = append(rp.statuses, st)
	writeJSON(w, r, http.StatusCreated, map[string]any{"state": st.State, "context": st.Context, "description": st.Description})
}

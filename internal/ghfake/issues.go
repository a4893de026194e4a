package ghfake

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

func issueJSON(rp *Repo, is *Issue) map[string]any {
	labels := []any{}
	for _, l := range is.Labels {
		labels = append(labels, map[string]any{"name": l})
	}
	return map[string]any{
		"id": 5000 + is.Number, "number": is.Number, "title": is.Title, "body": is.Body,
		"state": is.State, "labels": labels, "user": user(is.User),
		"html_url": fmt.Sprintf("https://github.example/%s/%s/issues/%d", rp.Owner, rp.Name, is.Number),
	}
}

func (s *Server) listIssues(w http.ResponseWriter, r *http.Request, rp *Repo) {
	state := r.URL.Query().Get("state")
	if state == "" {
		state = "open"
	}
	var want []string
	if l := r.URL.Query().Get("labels"); l != "" {
		want = strings.Split(l, ",")
	}
	out := []any{}
	for i := len(rp.issues) - 1; i >= 0; i-- { // newest first, as GitHub sorts
		is := rp.issues[i]
		if state != "all" && is.State != state {
			continue
		}
		if !hasLabels(is.Labels, want) {
			continue
		}
		out = append(out, issueJSON(rp, is))
	}
	writeJSON(w, r, http.StatusOK, paginate(w, r, out))
}

func hasLabels(have, want []string) bool {
	for _, w := range want {
		found := false
		for _, h := range have {
			found = found || strings.EqualFold(h, w)
		}
		if !found {
			return false
		}
	}
	return true
}

func (s *Server) createIssue(w http.ResponseWriter, r *http.Request, rp *Repo) {
	var in struct {
		Title  string   `json:"title"`
		Body   string   `json:"body"`
		Labels []string `json:"labels"`
	}
	if !decode(w, r, &in) {
		return
	}
	if in.Title == "" {
		writeJSON(w, r, http.StatusUnprocessableEntity, map[string]any{"message": "Validation Failed", "errors": []any{map[string]any{"resource": "Issue", "field": "title", "code": "missing_field"}}})
		return
	}
	author, _ := s.actor(r)
	is := &Issue{Number: rp.nextNumber, Title: in.Title, Body: in.Body, Labels: in.Labels, State: "open", User: author}
	rp.nextNumber++
	rp.issues = append(rp.issues, is)
	writeJSON(w, r, http.StatusCreated, issueJSON(rp, is))
}

func commentJSON(rp *Repo, c *Comment) map[string]any {
	return map[string]any{
		"id": c.ID, "body": c.Body, "user": user(c.User), "created_at": ts(c.Created), "updated_at": ts(c.Update),
		"html_url": fmt.Sprintf("https://github.example/%s/%s/issues/%d#issuecomment-%d", rp.Owner, rp.Name, c.Issue, c.ID),
	}
}

func (s *Server) listComments(w http.ResponseWriter, r *http.Request, rp *Repo) {
	n, _ := strconv.Atoi(r.PathValue("n"))
	out := []any{}
	for _, c := range rp.comments {
		if c.Issue == n {
			out = append(out, commentJSON(rp, c))
		}
	}
	writeJSON(w, r, http.StatusOK, paginate(w, r, out))
}

func (s *Server) createComment(w http.ResponseWriter, r *http.Request, rp *Repo) {
	n, _ := strconv.Atoi(r.PathValue("n"))
	var in struct {
		Body string `json:"body"`
	}
	if !decode(w, r, &in) {
		return
	}
	s.nextID++
	author, _ := s.actor(r)
	c := &Comment{ID: s.nextID, Issue: n, Body: in.Body, User: author, Created: s.now(), Update: s.now()}
	rp.comments = append(rp.comments, c)
	writeJSON(w, r, http.StatusCreated, commentJSON(rp, c))
}

func (s *Server) editComment(w http.ResponseWriter, r *http.Request, rp *Repo) {
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	var in struct {
		Body string `json:"body"`
	}
	if !decode(w, r, &in) {
		return
	}
	for _, c := range rp.comments {
		if c.ID == id {
			if author, _ := s.actor(r); c.User != author {
				writeJSON(w, r, http.StatusForbidden, map[string]any{"message": "Resource not accessible by integration"})
				return
			}
			c.Body, c.Update = in.Body, s.now()
			writeJSON(w, r, http.StatusOK, commentJSON(rp, c))
			return
		}
	}
	notFound(w, r)
}

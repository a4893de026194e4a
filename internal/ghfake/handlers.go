package ghfake

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"path"
	"sort"
	"strconv"
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
	m.HandleFunc("GET /orgs/{org}/teams/{slug}", s.team)
	m.HandleFunc("GET /orgs/{org}/teams/{slug}/memberships/{user}", s.teamMembership)
	m.HandleFunc("POST /app/installations/{id}/access_tokens", s.accessToken)
	m.HandleFunc("GET /app", s.getApp)
	m.HandleFunc("GET /user", s.getUser)
	m.HandleFunc("GET /users/{login}/keys", s.listUserKeys)
}

type repoHandler func(w http.ResponseWriter, r *http.Request, repo *Repo)

// repo finds the repository and runs h under the lock.
func (s *Server) repo(h repoHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		rp, ok := s.repos[strings.ToLower(r.PathValue("owner")+"/"+r.PathValue("repo"))]
		if !ok {
			notFound(w, r)
			return
		}
		h(w, r, rp)
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

func (s *Server) pullJSON(rp *Repo, p *Pull) map[string]any {
	var merged any
	if p.MergeCommitSHA != "" {
		merged = p.MergeCommitSHA
	}
	return map[string]any{
		"id": 1000 + p.Number, "number": p.Number, "state": p.State, "title": p.Title, "body": p.Body,
		"user":             user(p.User),
		"head":             map[string]any{"ref": p.HeadRef, "sha": p.HeadSHA, "label": rp.Owner + ":" + p.HeadRef},
		"base":             map[string]any{"ref": p.BaseRef, "sha": p.BaseSHA, "label": rp.Owner + ":" + p.BaseRef},
		"merged_at":        ts(p.MergedAt),
		"closed_at":        ts(p.MergedAt),
		"merge_commit_sha": merged,
		"html_url":         fmt.Sprintf("https://github.example/%s/%s/pull/%d", rp.Owner, rp.Name, p.Number),
	}
}

func (s *Server) commitPulls(w http.ResponseWriter, r *http.Request, rp *Repo) {
	out := []any{}
	for _, n := range rp.commitPRs[r.PathValue("sha")] {
		if p, ok := rp.pulls[n]; ok {
			out = append(out, s.pullJSON(rp, p))
		}
	}
	writeJSON(w, r, http.StatusOK, paginate(w, r, out))
}

func (s *Server) pull(w http.ResponseWriter, r *http.Request, rp *Repo) (*Pull, bool) {
	n, _ := strconv.Atoi(r.PathValue("n"))
	p, ok := rp.pulls[n]
	if !ok {
		notFound(w, r)
	}
	return p, ok
}

func (s *Server) getPull(w http.ResponseWriter, r *http.Request, rp *Repo) {
	p, ok := s.pull(w, r, rp)
	if !ok {
		return
	}
	m := s.pullJSON(rp, p)
	m["merged"] = !p.MergedAt.IsZero()
	m["commits"] = len(p.Commits)
	writeJSON(w, r, http.StatusOK, m)
}

func (s *Server) pullCommits(w http.ResponseWriter, r *http.Request, rp *Repo) {
	p, ok := s.pull(w, r, rp)
	if !ok {
		return
	}
	out := []any{}
	for _, sha := range p.Commits {
		if c, ok := rp.commits[sha]; ok {
			out = append(out, commitJSON(c))
		}
	}
	// GitHub lists at most 250 commits of a pull request.
	if len(out) > 250 {
		out = out[:250]
	}
	writeJSON(w, r, http.StatusOK, paginate(w, r, out))
}

func (s *Server) pullReviews(w http.ResponseWriter, r *http.Request, rp *Repo) {
	p, ok := s.pull(w, r, rp)
	if !ok {
		return
	}
	rvs := append([]*Review(nil), rp.reviews[p.Number]...)
	sort.SliceStable(rvs, func(i, j int) bool { return rvs[i].ID < rvs[j].ID })
	out := []any{}
	for _, rv := range rvs {
		out = append(out, map[string]any{
			"id": rv.ID, "user": user(rv.User), "body": rv.Body, "state": rv.State,
			"commit_id": rv.CommitID, "submitted_at": ts(rv.SubmittedAt),
			"html_url": fmt.Sprintf("https://github.example/%s/%s/pull/%d#pullrequestreview-%d", rp.Owner, rp.Name, p.Number, rv.ID),
		})
	}
	writeJSON(w, r, http.StatusOK, paginate(w, r, out))
}

// pullFiles lists what the pull request changes, base tree against head
// tree, sorted by name (GitHub diffs against the merge base; the fake's
// base is the branch point). Renames show as a removal and an addition.
func (s *Server) pullFiles(w http.ResponseWriter, r *http.Request, rp *Repo) {
	p, ok := s.pull(w, r, rp)
	if !ok {
		return
	}
	base, head := map[string]string{}, map[string]string{}
	if c, ok := rp.commits[p.BaseSHA]; ok {
		base = c.Files
	}
	if c, ok := rp.commits[p.HeadSHA]; ok {
		head = c.Files
	}
	var names []string
	for name, content := range head {
		if old, ok := base[name]; !ok || old != content {
			names = append(names, name)
		}
	}
	for name := range base {
		if _, ok := head[name]; !ok {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	out := []any{}
	for _, name := range names {
		content, inHead := head[name]
		_, inBase := base[name]
		status, sha := "modified", BlobSHA([]byte(content))
		switch {
		case !inBase:
			status = "added"
		case !inHead:
			status, sha = "removed", BlobSHA([]byte(base[name]))
		}
		adds, dels := strings.Count(content, "\n"), strings.Count(base[name], "\n")
		out = append(out, map[string]any{
			"sha": sha, "filename": name, "status": status,
			"additions": adds, "deletions": dels, "changes": adds + dels,
			"blob_url":     fmt.Sprintf("https://github.example/%s/%s/blob/%s/%s", rp.Owner, rp.Name, p.HeadSHA, name),
			"raw_url":      fmt.Sprintf("https://github.example/%s/%s/raw/%s/%s", rp.Owner, rp.Name, p.HeadSHA, name),
			"contents_url": fmt.Sprintf("http://%s%s/repos/%s/%s/contents/%s?ref=%s", r.Host, Prefix, rp.Owner, rp.Name, name, p.HeadSHA),
		})
	}
	writeJSON(w, r, http.StatusOK, paginate(w, r, out))
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

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(v); err != nil {
		writeJSON(w, r, http.StatusBadRequest, map[string]any{"message": "Problems parsing JSON"})
		return false
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

// team answers for a team that has (or had) a member; a token that may
// not read teams gets a 403 or 404 through Inject, as from GitHub.
func (s *Server) team(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	org, slug := r.PathValue("org"), r.PathValue("slug")
	if _, ok := s.teams[strings.ToLower(org+"/"+slug)]; !ok {
		notFound(w, r)
		return
	}
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

func (s *Server) teamMembership(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	team, ok := s.teams[strings.ToLower(r.PathValue("org")+"/"+r.PathValue("slug"))]
	state := ""
	if ok {
		state = team[strings.ToLower(r.PathValue("user"))]
	}
	if state == "" {
		notFound(w, r)
		return
	}
	writeJSON(w, r, http.StatusOK, map[string]any{"state": state, "role": "member",
		"url": fmt.Sprintf("http://%s%s/orgs/%s/teams/%s/memberships/%s", r.Host, Prefix, r.PathValue("org"), r.PathValue("slug"), r.PathValue("user"))})
}

func (s *Server) listPulls(w http.ResponseWriter, r *http.Request, rp *Repo) {
	q := r.URL.Query()
	state := q.Get("state")
	if state == "" {
		state = "open"
	}
	var nums []int
	for n := range rp.pulls {
		nums = append(nums, n)
	}
	sort.Sort(sort.Reverse(sort.IntSlice(nums)))
	out := []any{}
	for _, n := range nums {
		p := rp.pulls[n]
		if state != "all" && p.State != state {
			continue
		}
		if h := q.Get("head"); h != "" && h != rp.Owner+":"+p.HeadRef {
			continue
		}
		if b := q.Get("base"); b != "" && b != p.BaseRef {
			continue
		}
		out = append(out, s.pullJSON(rp, p))
	}
	writeJSON(w, r, http.StatusOK, paginate(w, r, out))
}

func (s *Server) createPull(w http.ResponseWriter, r *http.Request, rp *Repo) {
	var in struct {
		Title, Head, Base, Body string
	}
	if !decode(w, r, &in) {
		return
	}
	for _, p := range rp.pulls {
		if p.State == "open" && p.HeadRef == in.Head && p.BaseRef == in.Base {
			writeJSON(w, r, http.StatusUnprocessableEntity, map[string]any{"message": "Validation Failed",
				"errors": []any{map[string]any{"resource": "PullRequest", "code": "custom", "message": "A pull request already exists for " + rp.Owner + ":" + in.Head + "."}}})
			return
		}
	}
	author, _ := s.actor(r)
	p := &Pull{Number: rp.nextNumber, Title: in.Title, Body: in.Body, User: author, State: "open", HeadRef: in.Head, BaseRef: in.Base}
	rp.nextNumber++
	rp.pulls[p.Number] = p
	writeJSON(w, r, http.StatusCreated, s.pullJSON(rp, p))
}

func (s *Server) editPull(w http.ResponseWriter, r *http.Request, rp *Repo) {
	p, ok := s.pull(w, r, rp)
	if !ok {
		return
	}
	var in struct {
		Title *string `json:"title"`
		Body  *string `json:"body"`
	}
	if !decode(w, r, &in) {
		return
	}
	if in.Title != nil {
		p.Title = *in.Title
	}
	if in.Body != nil {
		p.Body = *in.Body
	}
	writeJSON(w, r, http.StatusOK, s.pullJSON(rp, p))
}

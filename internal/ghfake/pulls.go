package ghfake

import (
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
)

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

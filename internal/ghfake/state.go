package ghfake

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

// Repo is one repository's state. Build it with the Server's methods; the
// fields are read by the handlers under the server's lock.
type Repo struct {
	Owner, Name   string
	DefaultBranch string

	commits    map[string]*Commit
	pulls      map[int]*Pull
	commitPRs  map[string][]int
	reviews    map[int][]*Review
	issues     []*Issue
	comments   []*Comment
	checkRuns  []*CheckRun
	statuses   []*Status
	nextNumber int
}

// Commit is a commit with the full tree it records (path -> content).
type Commit struct {
	SHA       string
	Parents   []string
	Author    string // GitHub login; "" for an email linked to no account
	Committer string
	Message   string
	Date      time.Time
	Files     map[string]string
}

// Pull is a pull request. MergedAt zero means not merged.
type Pull struct {
	Number         int
	Title          string
	Body           string
	User           string
	State          string // "open" or "closed"
	HeadRef        string
	HeadSHA        string
	BaseRef        string
	BaseSHA        string
	MergedAt       time.Time
	MergeCommitSHA string
	// Commits are the SHAs of the pull request's commits, oldest first.
	Commits []string
}

// Review is a pull request review.
type Review struct {
	ID          int64
	User        string
	State       string // APPROVED, CHANGES_REQUESTED, COMMENTED, DISMISSED, PENDING
	CommitID    string
	SubmittedAt time.Time
	Body        string
}

// Issue is an issue created through the API.
type Issue struct {
	Number int
	Title  string
	Body   string
	Labels []string
	State  string
	User   string
}

// Comment is an issue (or pull request) comment.
type Comment struct {
	ID      int64
	Issue   int
	Body    string
	User    string
	Created time.Time
	Update  time.Time
}

// CheckRun is a check run as created or updated.
type CheckRun struct {
	ID         int64
	Name       string
	HeadSHA    string
	Status     string
	Conclusion string
	Title      string
	Summary    string
}

// Status is a commit status.
type Status struct {
	SHA, State, Context, Description string
}

// BlobSHA is git's object name for a blob with this content.
func BlobSHA(content []byte) string {
	h := sha1.New()
	fmt.Fprintf(h, "blob %d\x00", len(content))
	h.Write(content)
	return hex.EncodeToString(h.Sum(nil))
}

// AddRepo creates (or returns) a repository.
func (s *Server) AddRepo(owner, name, defaultBranch string) *Repo {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := strings.ToLower(owner + "/" + name)
	if r, ok := s.repos[key]; ok {
		return r
	}
	r := &Repo{
		Owner: owner, Name: name, DefaultBranch: defaultBranch,
		commits: map[string]*Commit{}, pulls: map[int]*Pull{}, commitPRs: map[string][]int{},
		reviews: map[int][]*Review{}, nextNumber: 1,
	}
	s.repos[key] = r
	return r
}

// AddCommit stores a commit. When Files is nil the commit inherits its
// first parent's tree; Changes are then applied on top ("" deletes).
func (s *Server) AddCommit(r *Repo, c Commit, changes map[string]string) *Commit {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.Files == nil {
		c.Files = map[string]string{}
		if len(c.Parents) > 0 {
			if p, ok := r.commits[c.Parents[0]]; ok {
				for k, v := range p.Files {
					c.Files[k] = v
				}
			}
		}
	}
	for k, v := range changes {
		if v == "" {
			delete(c.Files, k)
		} else {
			c.Files[k] = v
		}
	}
	if c.SHA == "" {
		c.SHA = fakeSHA(fmt.Sprintf("%v|%v|%s|%s|%d", c.Parents, c.Files, c.Message, c.Author, len(r.commits)))
	}
	if c.Date.IsZero() {
		c.Date = s.now()
	}
	cc := c
	r.commits[c.SHA] = &cc
	return &cc
}

// Commit returns a stored commit.
func (s *Server) Commit(r *Repo, sha string) *Commit {
	s.mu.Lock()
	defer s.mu.Unlock()
	return r.commits[sha]
}

// AddPull stores a pull request; Number 0 takes the next free number.
func (s *Server) AddPull(r *Repo, p Pull) *Pull {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.Number == 0 {
		p.Number = r.nextNumber
	}
	if p.Number >= r.nextNumber {
		r.nextNumber = p.Number + 1
	}
	if p.State == "" {
		p.State = "open"
		if !p.MergedAt.IsZero() {
			p.State = "closed"
		}
	}
	if p.BaseRef == "" {
		p.BaseRef = r.DefaultBranch
	}
	if p.HeadRef == "" {
		p.HeadRef = fmt.Sprintf("request-%d", p.Number)
	}
	pp := p
	r.pulls[p.Number] = &pp
	return &pp
}

// EditPullTitle changes a pull request's title, as its author may at any
// time, merged or not. It reports whether the pull request exists.
func (s *Server) EditPullTitle(r *Repo, n int, title string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := r.pulls[n]
	if ok {
		p.Title = title
	}
	return ok
}

// Associate records that GitHub lists pull request n for commit sha (GET
// /repos/{o}/{r}/commits/{sha}/pulls): its head commits, and after a merge
// the merge, squash or rebased commits.
func (s *Server) Associate(r *Repo, sha string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r.commitPRs[sha] = append(r.commitPRs[sha], n)
}

// AddReview stores a review and returns its id.
func (s *Server) AddReview(r *Repo, n int, rv Review) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	rv.ID = s.nextID
	if rv.SubmittedAt.IsZero() {
		rv.SubmittedAt = s.now().Add(time.Duration(s.nextID) * time.Second)
	}
	r.reviews[n] = append(r.reviews[n], &rv)
	return rv.ID
}

// DismissReview turns a review's state into DISMISSED, as GitHub does.
func (s *Server) DismissReview(r *Repo, n int, id int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rv := range r.reviews[n] {
		if rv.ID == id {
			rv.State = "DISMISSED"
		}
	}
}

// Issues returns the issues created so far.
func (s *Server) Issues(r *Repo) []Issue { return copies(s, &r.issues) }

// AddIssue stores an issue written by is.User (not by the API's caller),
// such as one opened in advance to pre-empt gitgrant's own; it returns
// the issue's number. State defaults to "open".
func (s *Server) AddIssue(r *Repo, is Issue) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	is.Number = r.nextNumber
	r.nextNumber++
	if is.State == "" {
		is.State = "open"
	}
	r.issues = append(r.issues, &is)
	return is.Number
}

// Comments returns the issue comments so far.
func (s *Server) Comments(r *Repo) []Comment { return copies(s, &r.comments) }

// AddComment stores a comment written by user (not by the API's caller).
func (s *Server) AddComment(r *Repo, issue int, user, body string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	r.comments = append(r.comments, &Comment{ID: s.nextID, Issue: issue, Body: body, User: user, Created: s.now(), Update: s.now()})
	return s.nextID
}

// Pulls returns the pull requests, by number.
func (s *Server) Pulls(r *Repo) map[int]Pull {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[int]Pull{}
	for n, p := range r.pulls {
		out[n] = *p
	}
	return out
}

// CheckRuns returns the check runs so far.
func (s *Server) CheckRuns(r *Repo) []CheckRun { return copies(s, &r.checkRuns) }

// Statuses returns the commit statuses so far.
func (s *Server) Statuses(r *Repo) []Status { return copies(s, &r.statuses) }

// copies returns copies of the values *ptrs points to, read under s's lock
// (the repository's slices grow while the fake serves).
func copies[T any](s *Server, ptrs *[]*T) []T {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]T, len(*ptrs))
	for i, p := range *ptrs {
		out[i] = *p
	}
	return out
}

func fakeSHA(seed string) string {
	h := sha1.Sum([]byte(seed))
	return hex.EncodeToString(h[:])
}

// SetUserKeys sets the public SSH keys GitHub lists for login (GET
// /users/{login}/keys); a login without any lists none.
func (s *Server) SetUserKeys(login string, keys ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.userKeys == nil {
		s.userKeys = map[string][]string{}
	}
	s.userKeys[strings.ToLower(login)] = append([]string(nil), keys...)
}

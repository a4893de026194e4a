package ghfake

import (
	"net/http"
	"regexp"
	"strings"

	"github.com/gitgrant/gitgrant/internal/gitrepo"
)

// gitPath matches the smart-HTTP endpoints of a repository:
// /OWNER/NAME.git/info/refs, /git-upload-pack and /git-receive-pack.
var gitPath = regexp.MustCompile(`^/([^/]+)/([^/]+?)(?:\.git)?/(info/refs|git-upload-pack|git-receive-pack)$`)

// ServeGit serves the bare repository in dir as github.com serves one:
// cloned, fetched and pushed over smart HTTP at GitURL(owner, name), in
// pure Go (no git program). When the fake checks credentials (a token or
// an App was added), git's basic-auth password must be a token valid now,
// as GitHub accepts x-access-token:<installation token>. A push is refused
// ("fetch first") when a ref moved since the pusher fetched it; the fake
// knows no branch protection.
func (s *Server) ServeGit(owner, name, dir string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gitRepos == nil {
		s.gitRepos = map[string]*gitrepo.SmartHTTP{}
	}
	s.gitRepos[strings.ToLower(owner+"/"+name)] = &gitrepo.SmartHTTP{Dir: dir}
}

// GitURL is the clone URL of a repository ServeGit serves.
func (s *Server) GitURL(owner, name string) string {
	return s.URL + "/" + owner + "/" + name + ".git"
}

// serveGit answers a smart-HTTP request, reporting whether path was one.
func (s *Server) serveGit(w http.ResponseWriter, r *http.Request) bool {
	m := gitPath.FindStringSubmatch(r.URL.Path)
	if m == nil {
		return false
	}
	s.mu.Lock()
	repo := s.gitRepos[strings.ToLower(m[1]+"/"+m[2])]
	checks := len(s.tokens) > 0 || len(s.apps) > 0
	s.mu.Unlock()
	if repo == nil {
		return false
	}
	if _, password, _ := r.BasicAuth(); checks && !s.ValidToken(password) {
		w.Header().Set("WWW-Authenticate", `Basic realm="GitHub"`)
		http.Error(w, "Invalid username or token. Password authentication is not supported for Git operations.", http.StatusUnauthorized)
		return true
	}
	repo.Serve(w, r, m[3])
	return true
}

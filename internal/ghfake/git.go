package ghfake

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"

	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/format/pktline"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/plumbing/transport/server"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// gitRepo is a bare repository the fake serves over smart HTTP.
type gitRepo struct {
	dir string
	// mu serialises pushes: a push's compare-and-swap of its refs and
	// their update happen as one step, as on GitHub.
	mu sync.Mutex
}

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
		s.gitRepos = map[string]*gitRepo{}
	}
	s.gitRepos[strings.ToLower(owner+"/"+name)] = &gitRepo{dir: dir}
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
	var err error
	switch {
	case m[3] == "info/refs" && r.Method == http.MethodGet:
		err = repo.advertise(w, r, r.URL.Query().Get("service"))
	case m[3] == "git-upload-pack" && r.Method == http.MethodPost:
		err = repo.uploadPack(w, r)
	case m[3] == "git-receive-pack" && r.Method == http.MethodPost:
		err = repo.receivePack(w, r)
	default:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return true
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
	return true
}

// endpoint is the repository as go-git's server loads it: a fresh storage
// for every request, so that each sees the objects and refs written by
// the requests before it.
func (g *gitRepo) server() (transport.Transport, *transport.Endpoint) {
	ep, _ := transport.NewEndpoint("/")
	return server.NewServer(server.NewFilesystemLoader(osfs.New(g.dir))), ep
}

func (g *gitRepo) advertise(w http.ResponseWriter, r *http.Request, service string) error {
	srv, ep := g.server()
	var ar *packp.AdvRefs
	var err error
	switch service {
	case transport.UploadPackServiceName:
		sess, serr := srv.NewUploadPackSession(ep, nil)
		if serr != nil {
			return serr
		}
		ar, err = sess.AdvertisedReferencesContext(r.Context())
	case transport.ReceivePackServiceName:
		sess, serr := srv.NewReceivePackSession(ep, nil)
		if serr != nil {
			return serr
		}
		ar, err = sess.AdvertisedReferencesContext(r.Context())
	default:
		return fmt.Errorf("service %q: only smart HTTP (git-upload-pack, git-receive-pack) is served", service)
	}
	if err != nil {
		return err
	}
	ar.Prefix = [][]byte{[]byte("# service=" + service), pktline.Flush}
	w.Header().Set("Content-Type", "application/x-"+service+"-advertisement")
	w.Header().Set("Cache-Control", "no-cache")
	return ar.Encode(w)
}

func (g *gitRepo) uploadPack(w http.ResponseWriter, r *http.Request) error {
	srv, ep := g.server()
	sess, err := srv.NewUploadPackSession(ep, nil)
	if err != nil {
		return err
	}
	req := packp.NewUploadPackRequest()
	if err := req.Decode(r.Body); err != nil {
		return fmt.Errorf("reading the upload-pack request: %w", err)
	}
	resp, err := sess.UploadPack(r.Context(), req)
	if err != nil {
		return err
	}
	defer resp.Close()
	w.Header().Set("Content-Type", "application/x-git-upload-pack-result")
	return resp.Encode(w)
}

func (g *gitRepo) receivePack(w http.ResponseWriter, r *http.Request) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	req := packp.NewReferenceUpdateRequest()
	if err := req.Decode(r.Body); err != nil {
		return fmt.Errorf("reading the receive-pack request: %w", err)
	}
	w.Header().Set("Content-Type", "application/x-git-receive-pack-result")
	// go-git's server updates refs without comparing their old values;
	// GitHub refuses a push that would lose commits pushed meanwhile.
	if stale := g.stale(req); len(stale) > 0 {
		rs := packp.NewReportStatus()
		rs.UnpackStatus = "ok"
		for _, ref := range stale {
			rs.CommandStatuses = append(rs.CommandStatuses, &packp.CommandStatus{ReferenceName: ref, Status: "fetch first"})
		}
		if req.Packfile != nil {
			req.Packfile.Close()
		}
		return rs.Encode(w)
	}
	srv, ep := g.server()
	sess, err := srv.NewReceivePackSession(ep, nil)
	if err != nil {
		return err
	}
	rs, err := sess.ReceivePack(r.Context(), req)
	if rs != nil {
		return rs.Encode(w)
	}
	return err
}

// stale lists the refs a push names whose current value is not the old
// value the pusher saw (a force push is refused too).
func (g *gitRepo) stale(req *packp.ReferenceUpdateRequest) []plumbing.ReferenceName {
	st := filesystem.NewStorage(osfs.New(g.dir), cache.NewObjectLRUDefault())
	defer st.Close()
	var out []plumbing.ReferenceName
	for _, cmd := range req.Commands {
		current := plumbing.ZeroHash
		if ref, err := st.Reference(cmd.Name); err == nil {
			current = ref.Hash()
		}
		if current != cmd.Old {
			out = append(out, cmd.Name)
		}
	}
	return out
}

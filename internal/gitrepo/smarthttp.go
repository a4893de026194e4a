package gitrepo

import (
	"fmt"
	"net/http"
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

// SmartHTTP serves the bare repository in Dir over git's smart HTTP
// protocol, in pure Go (no git program): the server side of clone, fetch
// and push, for the simulated GitHub. A push is refused ("fetch first")
// when a ref moved since the pusher fetched it, as GitHub refuses one.
type SmartHTTP struct {
	Dir string
	// mu serialises pushes: a push's compare-and-swap of its refs and
	// their update happen as one step, as on GitHub.
	mu sync.Mutex
}

// Serve answers one smart-HTTP request for endpoint, the part of the
// path after the repository: "info/refs", "git-upload-pack" or
// "git-receive-pack".
func (g *SmartHTTP) Serve(w http.ResponseWriter, r *http.Request, endpoint string) {
	var err error
	switch {
	case endpoint == "info/refs" && r.Method == http.MethodGet:
		err = g.advertise(w, r, r.URL.Query().Get("service"))
	case endpoint == "git-upload-pack" && r.Method == http.MethodPost:
		err = g.uploadPack(w, r)
	case endpoint == "git-receive-pack" && r.Method == http.MethodPost:
		err = g.receivePack(w, r)
	default:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}

// endpoint is the repository as go-git's server loads it: a fresh storage
// for every request, so that each sees the objects and refs written by
// the requests before it.
func (g *SmartHTTP) server() (transport.Transport, *transport.Endpoint) {
	ep, _ := transport.NewEndpoint("/")
	return server.NewServer(server.NewFilesystemLoader(osfs.New(g.Dir))), ep
}

func (g *SmartHTTP) advertise(w http.ResponseWriter, r *http.Request, service string) error {
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

func (g *SmartHTTP) uploadPack(w http.ResponseWriter, r *http.Request) error {
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

func (g *SmartHTTP) receivePack(w http.ResponseWriter, r *http.Request) error {
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
func (g *SmartHTTP) stale(req *packp.ReferenceUpdateRequest) []plumbing.ReferenceName {
	st := filesystem.NewStorage(osfs.New(g.Dir), cache.NewObjectLRUDefault())
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

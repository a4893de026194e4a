package gitrepo

import (
	"fmt"
	"net/http"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/pktline"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/plumbing/transport"
	gitserver "github.com/go-git/go-git/v5/plumbing/transport/server"
)

// SmartHTTP serves the bare repository in Dir over git's smart HTTP
// protocol, in pure Go (no git program): the server side of clone, fetch
// and push, for the simulated GitHub. A push is refused ("fetch first")
// when a ref moved since the pusher fetched it, as GitHub refuses one.
type SmartHTTP struct {
	Dir string
	// cache holds the repository's storage and serialises the requests:
	// a push's compare-and-swap of its refs and their update happen as
	// one step, as on GitHub.
	cache storageCache
}

// Serve answers one smart-HTTP request for endpoint, the part of the
// path after the repository: "info/refs", "git-upload-pack" or
// "git-receive-pack".
func (g *SmartHTTP) Serve(w http.ResponseWriter, r *http.Request, endpoint string) {
	st, release := g.cache.open(g.Dir)
	defer release()
	var err error
	switch {
	case endpoint == "info/refs" && r.Method == http.MethodGet:
		err = advertise(st, w, r, r.URL.Query().Get("service"))
	case endpoint == "git-upload-pack" && r.Method == http.MethodPost:
		err = uploadPack(st, w, r)
	case endpoint == "git-receive-pack" && r.Method == http.MethodPost:
		err = receivePack(st, w, r)
	default:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}

// server is go-git's server on st, the one repository it serves.
func server(st storer.Storer) (transport.Transport, *transport.Endpoint) {
	ep, _ := transport.NewEndpoint("/")
	return gitserver.NewServer(gitserver.MapLoader{ep.String(): st}), ep
}

func advertise(st storer.Storer, w http.ResponseWriter, r *http.Request, service string) error {
	srv, ep := server(st)
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

func uploadPack(st storer.Storer, w http.ResponseWriter, r *http.Request) error {
	srv, ep := server(st)
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

func receivePack(st storer.Storer, w http.ResponseWriter, r *http.Request) error {
	req := packp.NewReferenceUpdateRequest()
	if err := req.Decode(r.Body); err != nil {
		return fmt.Errorf("reading the receive-pack request: %w", err)
	}
	w.Header().Set("Content-Type", "application/x-git-receive-pack-result")
	// go-git's server updates refs without comparing their old values;
	// GitHub refuses a push that would lose commits pushed meanwhile.
	if stale := staleRefs(st, req); len(stale) > 0 {
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
	srv, ep := server(st)
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

// staleRefs lists the refs a push names whose current value is not the
// old value the pusher saw (a force push is refused too).
func staleRefs(st storer.ReferenceStorer, req *packp.ReferenceUpdateRequest) []plumbing.ReferenceName {
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

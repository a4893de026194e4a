package demo

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/google/go-cmp/cmp"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/gitrepo"
)

var t0 = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func newWorld(t *testing.T) (*World, *Clock) {
	t.Helper()
	clk := NewClock(t0)
	w, err := New(t.TempDir(), clk)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	if _, err := w.Push("carol", "Set up", map[string]string{"gitgrant.yaml": "providers: {}\n", ".github/CODEOWNERS": "* @carol\n"}); err != nil {
		t.Fatal(err)
	}
	return w, clk
}

// The simulated GitHub serves the repository over smart HTTP to gitgrant's
// own git code, with a token it accepts, and refuses a wrong one.
func TestGitOverHTTP(t *testing.T) {
	t.Parallel()
	w, clk := newWorld(t)
	w.GitHub.AddToken("tok")
	clk.Advance(time.Minute)
	pr, err := w.OpenPR("alice", "Request access", map[string]string{"requests/db/alice.yaml": "requester: alice\n"})
	if err != nil {
		t.Fatal(err)
	}
	w.Approve(pr, "bob")
	clk.Advance(time.Minute)
	merge, err := w.Merge(pr)
	if err != nil {
		t.Fatal(err)
	}

	r, err := gitrepo.Open(context.Background(), gitrepo.Options{Source: w.GitURL(), Token: "tok", CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	snap, err := r.ReadRevision("")
	if err != nil {
		t.Fatal(err)
	}
	if snap.Commit.String() != merge {
		t.Errorf("main = %s, want the merge %s", snap.Commit, merge)
	}
	var paths []string
	for _, f := range snap.Requests {
		paths = append(paths, f.Path)
	}
	if diff := cmp.Diff([]string{"requests/db/alice.yaml"}, paths); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
	c, err := r.CommitAt(gitrepo.ParseHash(merge))
	if err != nil || len(c.Parents) != 2 || c.Parents[1].String() != pr.Head || c.Committer != "web-flow" {
		t.Errorf("merge commit = %+v, %v; want parents main and the pull request's head, committed by web-flow", c, err)
	}

	// A push through gitrepo lands on main.
	res, err := r.Cleanup(context.Background(), func(*gitrepo.Snapshot) ([]gitrepo.Removal, error) {
		return []gitrepo.Removal{{Path: "requests/db/alice.yaml", Requester: "alice"}}, nil
	}, gitrepo.CommitOptions{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	if sha, msg, _ := w.Main(); sha != res.Commit.String() || !strings.Contains(msg, "Gitgrant-Request: requests/db/alice.yaml") {
		t.Errorf("main on the simulated GitHub = %s %q, want the cleanup commit %s", sha, msg, res.Commit)
	}

	_, err = gitrepo.Open(context.Background(), gitrepo.Options{Source: w.GitURL(), Token: "not-a-token", CacheDir: t.TempDir()})
	var sys *gitgrant.SystemError
	if !errors.As(err, &sys) || !strings.Contains(err.Error(), "authentication required") {
		t.Errorf("a wrong token: %v, want authentication required", err)
	}
}

// A push that names an old value of a ref that is no longer current (it
// lost a race with another push) is refused, as GitHub refuses it.
func TestRacingPushRefused(t *testing.T) {
	t.Parallel()
	w, clk := newWorld(t)
	w.GitHub.AddToken("tok")
	ep, err := transport.NewEndpoint(w.GitURL())
	if err != nil {
		t.Fatal(err)
	}
	sess, err := githttp.DefaultClient.NewReceivePackSession(ep, &githttp.BasicAuth{Username: "x-access-token", Password: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	adv, err := sess.AdvertisedReferences()
	if err != nil {
		t.Fatal(err)
	}
	seen := adv.References["refs/heads/main"]
	clk.Advance(time.Minute)
	if _, err := w.Push("carol", "Meanwhile", map[string]string{"README.md": "hello\n"}); err != nil {
		t.Fatal(err)
	}
	req := packp.NewReferenceUpdateRequestFromCapabilities(adv.Capabilities)
	req.Commands = []*packp.Command{{Name: "refs/heads/main", Old: seen, New: seen}}
	_, err = sess.ReceivePack(context.Background(), req)
	if err == nil || !strings.Contains(err.Error(), "fetch first") {
		t.Errorf("a push from a stale view = %v, want it refused (fetch first)", err)
	}
	if _, msg, _ := w.Main(); strings.TrimSpace(msg) != "Meanwhile" {
		t.Errorf("main moved to %q", msg)
	}
}

// The demo's clock stands still, jumps when told, never goes back, and
// ends a wait at once by moving on by it.
func TestClock(t *testing.T) {
	t.Parallel()
	c := NewClock(t0)
	c.Advance(time.Hour)
	c.Set(t0) // backwards: ignored
	if got := c.Now(); !got.Equal(t0.Add(time.Hour)) {
		t.Errorf("now = %s", got)
	}
	if err := gitgrant.Sleep(context.Background(), c, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if got := c.Now(); !got.Equal(t0.Add(time.Hour + 30*time.Second)) {
		t.Errorf("after a 30s wait now = %s", got)
	}
}

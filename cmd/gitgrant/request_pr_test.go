package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gitgrant/gitgrant/internal/ghfake"
	"github.com/gitgrant/gitgrant/internal/testing/gitserver"
)

// requestWorld is a requester's clone of an access repository served by
// git's own http-backend, which accepts the tokens the fake GitHub knows,
// as github.com does.
type requestWorld struct {
	gh   *ghfake.Server
	repo *ghfake.Repo
	git  *gitserver.Server
	work *gitserver.Work
	vars map[string]string
}

var requestWorldConfig = pgConfig("orders-db", "ORDERS_DSN", map[string]string{"alice": "alice", "bob": "bob"}, "readwrite: {max_duration: 4h, approvals: 1}")

// aliceRequest has a comment that an extension must keep.
const aliceRequest = `requester: alice
grants:
  - provider: orders-db
    role: readwrite
duration: 1h # the first estimate
reason: Repair stuck orders after INC-1234
`

func newRequestWorld(t *testing.T) *requestWorld {
	t.Helper()
	gh := ghfake.New(func() time.Time { return testNow })
	t.Cleanup(gh.Close)
	repo := gh.AddRepo("acme", "access", "main")
	gh.AddUserToken("alice-token", "alice")
	gh.AddUserToken("bob-token", "bob")
	srv := gitserver.StartAuth(t, "x-access-token", func(_, password string) bool { return gh.ValidToken(password) })
	srv.Password = "alice-token"
	srv.NewBare(t, "acme/access")
	work := gitserver.NewWork(t, srv.AuthURL("acme/access"), testNow.Add(-48*time.Hour))
	work.Write("gitgrant.yaml", requestWorldConfig)
	work.Write("requests/orders-db/alice-rw.yaml", aliceRequest)
	work.Commit("Set up the access repository")
	work.Git("push", "-q", "origin", "main")
	// From here on the clone holds no credential: gitgrant brings its own.
	work.Git("remote", "set-url", "origin", srv.URL("acme/access"))
	return &requestWorld{gh: gh, repo: repo, git: srv, work: work, vars: map[string]string{
		"GITHUB_TOKEN": "alice-token", "GITHUB_REPOSITORY": "acme/access", "GITHUB_API_URL": gh.BaseURL(),
		"XDG_CACHE_HOME": t.TempDir(),
	}}
}

// remote runs git in the server's bare repository.
func (w *requestWorld) remote(t *testing.T, args ...string) (string, error) {
	t.Helper()
	return gitserver.RunEnv(w.git.Path("acme/access"), nil, args...)
}

func TestRequestExtendOpensPullRequest(t *testing.T) {
	t.Parallel()
	gitserver.Git(t)
	w := newRequestWorld(t)
	mainBefore, _ := w.remote(t, "rev-parse", "main")

	r := runCLIAt(t, testNow, w.vars, "request", "--repo", w.work.Dir, "--extend", "requests/orders-db/alice-rw.yaml", "--for", "2h", "--open-pr")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	pulls := w.gh.Pulls(w.repo)
	if len(pulls) != 1 {
		t.Fatalf("pull requests %+v, want one", pulls)
	}
	var pr ghfake.Pull
	for _, p := range pulls {
		pr = p
	}
	if want := fmt.Sprintf("opened pull request #%d for requests/orders-db/alice-rw.yaml: https://github.example/acme/access/pull/%d\n", pr.Number, pr.Number); r.stdout != want {
		t.Errorf("stdout %q, want %q", r.stdout, want)
	}
	if pr.User != "alice" || pr.BaseRef != "main" || !strings.HasPrefix(pr.HeadRef, "access/extend-alice-rw-") {
		t.Errorf("pull request %+v: want alice's, from an access/extend- branch into main", pr)
	}
	if parent, _ := w.remote(t, "rev-parse", pr.HeadRef+"^"); parent != mainBefore {
		t.Errorf("the branch is on %s, want on main %s", parent, mainBefore)
	}
	got, err := w.remote(t, "show", pr.HeadRef+":requests/orders-db/alice-rw.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Replace(aliceRequest, "duration: 1h", "expires: \""+testNow.Add(2*time.Hour).Format(time.RFC3339)+"\"", 1)
	if got+"\n" != want {
		t.Errorf("extended file:\n%s\nwant:\n%s", got, want)
	}
	if author, _ := w.remote(t, "log", "-1", "--format=%an <%ae>|%cn", pr.HeadRef); !strings.HasSuffix(author, "|"+strings.SplitN(author, " <", 2)[0]) {
		t.Errorf("author and committer differ: %s", author)
	}
	// The work tree is left as it was.
	if data, _ := os.ReadFile(filepath.Join(w.work.Dir, "requests/orders-db/alice-rw.yaml")); string(data) != aliceRequest {
		t.Errorf("the work tree's file changed:\n%s", data)
	}
	if v := runCLIAt(t, testNow, nil, "validate", "--repo", w.work.Dir); v.code != 0 {
		t.Errorf("validate: %s%s", v.stdout, v.stderr)
	}
}

func TestRequestExtendRefused(t *testing.T) {
	t.Parallel()
	gitserver.Git(t)
	w := newRequestWorld(t)
	cases := []struct {
		name string
		vars map[string]string
		args []string
		code int
		want string
	}{
		{"over the role's maximum", nil, []string{"--for", "5h"}, 1,
			"over the 4h maximum of orders-db/readwrite: access can last until 2026-11-22T16:00:00Z at the latest (if the pull request merged now); ask for --for 4h or less"},
		{"until over the maximum", nil, []string{"--until", "2026-11-22T16:00:01Z"}, 1, "over the 4h maximum"},
		{"in the past", nil, []string{"--until", "2026-11-22T11:00:00Z"}, 1, "is not in the future"},
		{"someone else's token", map[string]string{"GITHUB_TOKEN": "bob-token"}, []string{"--for", "2h"}, 2,
			"the GitHub credentials are @bob's, but the requester is @alice"},
		{"no credentials", map[string]string{"GITHUB_TOKEN": ""}, []string{"--for", "2h"}, 2, "no GitHub credentials"},
		{"other fields", nil, []string{"--for", "2h", "--reason", "more"}, 2, "only --for or --until change"},
		{"not a request", nil, []string{"--for", "2h", "--extend", "gitgrant.yaml"}, 2, "is not a request file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			vars := map[string]string{}
			for k, v := range w.vars {
				vars[k] = v
			}
			for k, v := range c.vars {
				vars[k] = v
			}
			args := append([]string{"request", "--repo", w.work.Dir, "--extend", "requests/orders-db/alice-rw.yaml", "--open-pr"}, c.args...)
			r := runCLIAt(t, testNow, vars, args...)
			if r.code != c.code || !strings.Contains(r.stderr, c.want) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", r.code, r.stderr, c.code, c.want)
			}
		})
	}
	if pulls := w.gh.Pulls(w.repo); len(pulls) != 0 {
		t.Errorf("refused extensions opened pull requests: %+v", pulls)
	}
	if branches, _ := w.remote(t, "branch", "--list"); strings.TrimSpace(branches) != "* main" && strings.TrimSpace(branches) != "main" {
		t.Errorf("refused extensions pushed branches:\n%s", branches)
	}
}

// An extension's pull request starts from main's copy of the request: a
// local copy that differs from it (edited, or stale after main removed
// the file) is refused, not pushed over main's.
func TestRequestExtendNeedsMainsCopy(t *testing.T) {
	t.Parallel()
	gitserver.Git(t)
	const file = "requests/orders-db/alice-rw.yaml"
	for _, c := range []struct {
		name  string
		setup func(w *requestWorld)
		want  string
	}{
		{"edited locally", func(w *requestWorld) {
			w.work.Write(file, strings.Replace(aliceRequest, "after INC-1234", "after INC-1234 and INC-1300", 1))
		}, "is not the copy you extended"},
		{"gone from main", func(w *requestWorld) {
			w.work.Git("rm", "-q", file)
			w.work.Commit("Remove the expired request")
			w.work.Git("push", "-q", w.git.AuthURL("acme/access"), "main")
			w.work.Git("reset", "-q", "--hard", "HEAD^") // an old checkout
		}, "is not on main any more"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			w := newRequestWorld(t)
			c.setup(w)
			r := runCLIAt(t, testNow, w.vars, "request", "--repo", w.work.Dir, "--extend", file, "--for", "2h", "--open-pr")
			if r.code == 0 || !strings.Contains(r.stderr, c.want) {
				t.Errorf("exit %d, stderr %q; want a failure saying %q", r.code, r.stderr, c.want)
			}
			if pulls := w.gh.Pulls(w.repo); len(pulls) != 0 {
				t.Errorf("pull requests opened: %+v", pulls)
			}
			if branches, _ := w.remote(t, "branch", "--list"); strings.Contains(branches, "access/extend-") {
				t.Errorf("a branch was pushed:\n%s", branches)
			}
		})
	}
}

// Without --open-pr the file is edited in place, for the requester to
// commit.
func TestRequestExtendInPlace(t *testing.T) {
	t.Parallel()
	repo := templateRepo(t)
	file := filepath.Join(repo, "requests/orders-db/alice.yaml")
	os.MkdirAll(filepath.Dir(file), 0o755)
	os.WriteFile(file, []byte("# alice's\nrequester: alice\ngrants: [{provider: orders-db, role: readwrite}]\nexpires: 2026-11-22T13:00:00Z\nreason: Repair stuck orders for INC-77\nticket: INC-77\n"), 0o644)
	r := runCLIAt(t, testNow, nil, "request", "--repo", repo, "--extend", file, "--until", "2026-11-22T15:00:00Z")
	if r.code != 0 || !strings.Contains(r.stdout, "extended requests/orders-db/alice.yaml until 2026-11-22T15:00:00Z") {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	data, _ := os.ReadFile(file)
	if want := "# alice's\nrequester: alice\ngrants: [{provider: orders-db, role: readwrite}]\nexpires: \"2026-11-22T15:00:00Z\"\nreason: Repair stuck orders for INC-77\nticket: INC-77\n"; string(data) != want {
		t.Errorf("file:\n%s\nwant:\n%s", data, want)
	}
}

func TestRequestOpenPRForNewRequest(t *testing.T) {
	t.Parallel()
	gitserver.Git(t)
	w := newRequestWorld(t)
	r := runCLIAt(t, testNow, w.vars, "request", "--repo", w.work.Dir, "--requester", "alice", "--provider", "orders-db", "--role", "readwrite",
		"--for", "2h", "--reason", "Check refunds for INC-9", "--open-pr")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	const rel = "requests/orders-db/alice-readwrite-20261122.yaml"
	if !strings.Contains(r.stdout, "opened pull request #1 for "+rel+": https://github.example/acme/access/pull/1") {
		t.Errorf("stdout %q", r.stdout)
	}
	pr := w.gh.Pulls(w.repo)[1]
	if pr.HeadRef != "access/alice-readwrite-20261122" || pr.Title != "Request orders-db readwrite" || !strings.Contains(pr.Body, "Check refunds for INC-9") {
		t.Errorf("pull request %+v", pr)
	}
	if got, err := w.remote(t, "show", pr.HeadRef+":"+rel); err != nil || !strings.Contains(got, "duration: 2h") {
		t.Errorf("pushed file: %v\n%s", err, got)
	}
	if _, err := os.Stat(filepath.Join(w.work.Dir, rel)); err == nil {
		t.Error("--open-pr also wrote the file into the work tree")
	}
	// The same branch again is refused, never overwritten.
	r = runCLIAt(t, testNow, w.vars, "request", "--repo", w.work.Dir, "--requester", "alice", "--provider", "orders-db", "--role", "readwrite",
		"--for", "2h", "--reason", "Check refunds for INC-9", "--open-pr")
	if r.code == 0 || !strings.Contains(r.stderr, "branch already exists on the remote") {
		t.Errorf("second time: exit %d, %s", r.code, r.stderr)
	}
}

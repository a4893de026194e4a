package engine_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/approval"
	"github.com/gitgrant/gitgrant/internal/engine"
	"github.com/gitgrant/gitgrant/internal/ghapi"
	"github.com/gitgrant/gitgrant/internal/ghfake"
	"github.com/gitgrant/gitgrant/internal/gitrepo"
	"github.com/gitgrant/gitgrant/providers"
	"github.com/gitgrant/gitgrant/providers/fake"
)

var t0 = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func git(t *testing.T, dir string, at time.Time, who string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-c", "user.name=" + who, "-c", "user.email=" + who + "@example.com"}, args...)...)
	cmd.Dir = dir
	cmd.Env = os.Environ()
	if !at.IsZero() {
		cmd.Env = append(cmd.Env, "GIT_AUTHOR_DATE="+at.Format(time.RFC3339), "GIT_COMMITTER_DATE="+at.Format(time.RFC3339))
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// world is an access repository (a work tree whose origin is a bare
// repository) mirrored on the fake GitHub, with merged, approved pull
// requests.
type world struct {
	t            *testing.T
	work, remote string
	gh           *ghfake.Server
	repo         *ghfake.Repo
}

func newWorld(t *testing.T, config string) *world {
	t.Helper()
	root := t.TempDir()
	w := &world{t: t, work: filepath.Join(root, "work"), remote: filepath.Join(root, "remote.git")}
	git(t, root, time.Time{}, "admin", "init", "-q", "--bare", "-b", "main", w.remote)
	git(t, root, time.Time{}, "admin", "init", "-q", "-b", "main", w.work)
	git(t, w.work, time.Time{}, "admin", "remote", "add", "origin", w.remote)
	w.gh = ghfake.New(func() time.Time { return t0 })
	t.Cleanup(w.gh.Close)
	w.gh.AddToken("tok")
	w.repo = w.gh.AddRepo("acme", "access", "main")
	w.writeFiles(map[string]string{"gitgrant.yaml": config, ".github/CODEOWNERS": "/requests/ @owner\n"})
	git(t, w.work, t0.Add(-48*time.Hour), "admin", "add", "-A")
	git(t, w.work, t0.Add(-48*time.Hour), "admin", "commit", "-q", "-m", "init")
	sha := git(t, w.work, time.Time{}, "admin", "rev-parse", "HEAD")
	w.gh.AddCommit(w.repo, ghfake.Commit{SHA: sha, Author: "admin", Committer: "admin", Message: "init", Date: t0.Add(-48 * time.Hour)}, nil)
	return w
}

func (w *world) writeFiles(files map[string]string) {
	for p, c := range files {
		full := filepath.Join(w.work, p)
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			w.t.Fatal(err)
		}
	}
}

// merge brings a request in through pull request n, approved by owner.
func (w *world) merge(n int, who, path, content string, merged time.Time) {
	t := w.t
	base := git(t, w.work, time.Time{}, "admin", "rev-parse", "HEAD")
	br := fmt.Sprintf("r%d", n)
	git(t, w.work, time.Time{}, who, "checkout", "-q", "-b", br)
	w.writeFiles(map[string]string{path: content})
	git(t, w.work, merged.Add(-time.Minute), who, "add", "-A")
	git(t, w.work, merged.Add(-time.Minute), who, "commit", "-q", "-m", "request")
	head := git(t, w.work, time.Time{}, who, "rev-parse", "HEAD")
	git(t, w.work, time.Time{}, who, "checkout", "-q", "main")
	git(t, w.work, merged, "web-flow", "merge", "-q", "--no-ff", "-m", fmt.Sprintf("Merge pull request #%d from %s/%s", n, who, br), br)
	mc := git(t, w.work, time.Time{}, "admin", "rev-parse", "HEAD")
	w.gh.AddCommit(w.repo, ghfake.Commit{SHA: head, Parents: []string{base}, Author: who, Committer: who, Message: "request", Date: merged.Add(-time.Minute)}, map[string]string{path: content})
	w.gh.AddCommit(w.repo, ghfake.Commit{SHA: mc, Parents: []string{base, head}, Author: who, Committer: "web-flow", Message: "merge", Date: merged}, nil)
	w.gh.AddPull(w.repo, ghfake.Pull{Number: n, User: who, HeadSHA: head, BaseSHA: base, MergedAt: merged, MergeCommitSHA: mc, Commits: []string{head}})
	w.gh.Associate(w.repo, mc, n)
	w.gh.Associate(w.repo, head, n)
	w.gh.AddReview(w.repo, n, ghfake.Review{User: "owner", State: "APPROVED", CommitID: head, SubmittedAt: merged.Add(-30 * time.Second)})
}

// keepOpen shares one fake provider across passes: a pass closes what it
// opened, and the fake stands for a system that outlives any pass.
type keepOpen struct{ providers.Provider }

func (keepOpen) Close() error { return nil }

func (w *world) engine(p *fake.Provider, now time.Time) *engine.Engine {
	w.t.Helper()
	repo, err := gitrepo.Open(context.Background(), gitrepo.Options{Source: w.work})
	if err != nil {
		w.t.Fatal(err)
	}
	cl, err := ghapi.New(ghapi.Config{Token: "tok", APIURL: w.gh.BaseURL(), Repository: "acme/access"}, ghapi.Options{Sleep: func(ctx context.Context, d time.Duration) error { return ctx.Err() }})
	if err != nil {
		w.t.Fatal(err)
	}
	v := approval.New(cl, engine.FileReader{Repo: repo}, &approval.MemoryCache{})
	v.Now = func() time.Time { return now }
	return &engine.Engine{
		Repo: repo, GitHub: cl, Verifier: v, Deps: providers.DefaultDeps(), Now: func() time.Time { return now },
		Registry: providers.Registry{"exec": func(context.Context, gitgrant.ProviderConfig, providers.Deps) (providers.Provider, error) {
			return keepOpen{p}, nil
		}},
	}
}

const config = `identities:
%s
providers:
  db:
    type: exec
    command: [unused]
    roles:
      ro: {max_duration: 8h, approvals: 1}
`

// TestSteadyStateCostsNothing: once a pass has granted everything, the
// next pass of the same engine makes no GitHub calls, no provider writes
// and no commit (evidence is cached by path, blob and commit).
func TestSteadyStateCostsNothing(t *testing.T) {
	t.Parallel()
	const n = 20
	var ids strings.Builder
	for i := range n {
		fmt.Fprintf(&ids, "  user%d: {principals: {db: u%d}}\n", i, i)
	}
	w := newWorld(t, fmt.Sprintf(config, strings.TrimRight(ids.String(), "\n")))
	for i := range n {
		w.merge(i+1, fmt.Sprintf("user%d", i), fmt.Sprintf("requests/db/user%d.yaml", i),
			fmt.Sprintf("requester: user%d\ngrants: [{provider: db, role: ro}]\nduration: 4h\nreason: steady state test\n", i), t0.Add(-time.Hour))
	}
	git(t, w.work, time.Time{}, "admin", "push", "-q", "origin", "main")

	p := fake.New(fake.Options{Name: "db", Roles: []string{"ro"}})
	eng := w.engine(p, t0)
	ctx := context.Background()
	pass := func() (gitgrant.Plan, engine.Outcome) {
		t.Helper()
		ps, err := eng.Plan(ctx, false)
		if err != nil {
			t.Fatal(err)
		}
		defer ps.Close()
		if len(ps.Problems) > 0 {
			t.Fatalf("problems: %v", ps.Problems)
		}
		out, err := eng.Apply(ctx, ps, engine.ApplyOptions{Cleanup: true})
		if err != nil {
			t.Fatal(err)
		}
		return ps.Plan, out
	}

	plan, _ := pass()
	if got := len(plan.Actions); got != n {
		t.Fatalf("first pass: %d actions, want %d grants", got, n)
	}
	if ms, _ := p.Members(ctx, "ro"); len(ms) != n {
		t.Fatalf("%d members after the first pass, want %d", len(ms), n)
	}
	firstCalls := len(w.gh.Requests())
	head := git(t, w.remote, time.Time{}, "admin", "rev-parse", "main")

	w.gh.ResetRequests()
	before := len(p.Calls())
	plan, out := pass()
	if len(plan.Actions) != 0 || len(out.Result.Outcomes) != 0 {
		t.Errorf("steady state planned actions: %+v", plan.Actions)
	}
	if calls := w.gh.Requests(); len(calls) != 0 {
		t.Errorf("steady state made %d GitHub calls, e.g. %s %s", len(calls), calls[0].Method, calls[0].Path)
	}
	for _, c := range p.Calls()[before:] {
		if c.Op != fake.OpMembers {
			t.Errorf("steady state wrote to the provider: %+v", c)
		}
	}
	if again := git(t, w.remote, time.Time{}, "admin", "rev-parse", "main"); again != head {
		t.Errorf("steady state made a commit")
	}
	t.Logf("GitHub calls: first pass %d for %d requests, steady state 0", firstCalls, n)
}

// GitHub down: grants pause, expiry still revokes, and nothing is lost.
func TestGitHubDownPausesGrantsNotRevocations(t *testing.T) {
	t.Parallel()
	w := newWorld(t, fmt.Sprintf(config, "  alice: {principals: {db: alice}}\n  bob: {principals: {db: bob}}"))
	w.merge(1, "alice", "requests/db/alice.yaml", "requester: alice\ngrants: [{provider: db, role: ro}]\nduration: 1h\nreason: expired already\n", t0.Add(-3*time.Hour))
	w.merge(2, "bob", "requests/db/bob.yaml", "requester: bob\ngrants: [{provider: db, role: ro}]\nduration: 4h\nreason: active, unverifiable\n", t0.Add(-time.Hour))
	git(t, w.work, time.Time{}, "admin", "push", "-q", "origin", "main")
	w.gh.Inject(ghfake.Fault{Status: 503, Times: 1 << 20}) // down for the whole pass, retries included

	p := fake.New(fake.Options{Name: "db", Roles: []string{"ro"}})
	p.Set("ro", map[string]time.Time{"alice": {}})
	eng := w.engine(p, t0)
	ps, err := eng.Plan(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	defer ps.Close()
	if len(ps.Problems) == 0 {
		t.Errorf("GitHub being down was not reported")
	}
	out, err := eng.Apply(context.Background(), ps, engine.ApplyOptions{})
	if out.Result.Err() != nil {
		t.Fatalf("revocation failed: %v", out.Result.Err())
	}
	if err == nil || !strings.Contains(err.Error(), "commenting on pull request #1") {
		t.Errorf("the pull request could not be told, and that must be reported: %v", err)
	}
	ms, _ := p.Members(context.Background(), "ro")
	if len(ms) != 0 {
		t.Errorf("members = %+v: alice's expired access must be revoked and bob's unverified request granted nothing", ms)
	}
}

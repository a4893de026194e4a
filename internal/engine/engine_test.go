package engine_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gitgrant/gitgrant/internal/testing/fakeclock"
	"github.com/gitgrant/gitgrant/reconciler"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/approval"
	"github.com/gitgrant/gitgrant/internal/engine"
	"github.com/gitgrant/gitgrant/internal/ghapi"
	"github.com/gitgrant/gitgrant/internal/ghfake"
	"github.com/gitgrant/gitgrant/internal/gitrepo"
	"github.com/gitgrant/gitgrant/internal/testing/accesstest"
	"github.com/gitgrant/gitgrant/providers"
	"github.com/gitgrant/gitgrant/providers/fake"
)

var t0 = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

var git = accesstest.Git

// world is an access repository mirrored on the fake GitHub; CODEOWNERS
// makes @owner the owner of every request.
type world struct {
	*accesstest.Repo
	t testing.TB
}

func newWorld(t *testing.T, config string) *world {
	t.Helper()
	r := accesstest.New(t, func() time.Time { return t0 }, map[string]string{"gitgrant.yaml": config, ".github/CODEOWNERS": "/requests/ @owner\n"}, t0.Add(-48*time.Hour))
	return &world{Repo: r, t: t}
}

// merge brings a request in through pull request n, approved by owner.
func (w *world) merge(n int, who, path, content string, merged time.Time) {
	w.MergePR(n, who, map[string]string{path: content}, merged, "owner")
}

// keepOpen shares one fake provider across passes: a pass closes what it
// opened, and the fake stands for a system that outlives any pass.
type keepOpen struct{ *fake.Provider }

func (keepOpen) Close() error { return nil }

// roProvider is a fake db whose one managed role is ro.
func roProvider() *fake.Provider { return fake.New(fake.Options{Name: "db", Roles: []string{"ro"}}) }

func (w *world) engine(p *fake.Provider, now time.Time) *engine.Engine {
	w.t.Helper()
	repo, err := gitrepo.Open(context.Background(), gitrepo.Options{Source: w.Work})
	if err != nil {
		w.t.Fatal(err)
	}
	cl, err := ghapi.New(ghapi.Config{Token: accesstest.Token, APIURL: w.GH.BaseURL(), Repository: "acme/access"}, ghapi.Options{Clock: fakeclock.NewAuto(now)})
	if err != nil {
		w.t.Fatal(err)
	}
	v := approval.New(cl, engine.FileReader{Repo: repo}, &approval.MemoryCache{})
	v.Clock = fakeclock.New(now)
	return &engine.Engine{
		TrustRoot: engine.TrustFirst,
		Repo:      repo, GitHub: cl, Verifier: v, Deps: providers.DefaultDeps(), Clock: fakeclock.New(now),
		// Retries happen, at once: the pass's clock stands still.
		Retry: reconciler.Retry{Attempts: reconciler.DefaultRetry.Attempts, Base: time.Millisecond, Sleep: func(ctx context.Context, _ time.Duration) error { return ctx.Err() }},
		Registry: providers.Registry{"exec": func(context.Context, gitgrant.ProviderConfig, providers.Deps) (providers.Provider, error) {
			return keepOpen{p}, nil
		}},
	}
}

// mustPlan plans a pass of eng, failing the test when planning fails; the
// caller closes the pass.
func mustPlan(t testing.TB, eng *engine.Engine) *engine.Pass {
	t.Helper()
	ps, err := eng.Plan(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	return ps
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

	p := roProvider()
	eng := w.engine(p, t0)
	ctx := context.Background()
	pass := func() (gitgrant.Plan, engine.Outcome) {
		t.Helper()
		ps := mustPlan(t, eng)
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
	firstCalls := len(w.GH.Requests())
	head := git(t, w.Remote, time.Time{}, "admin", "rev-parse", "main")

	w.GH.ResetRequests()
	before := len(p.Calls())
	plan, out := pass()
	if len(plan.Actions) != 0 || len(out.Result.Outcomes) != 0 {
		t.Errorf("steady state planned actions: %+v", plan.Actions)
	}
	if calls := w.GH.Requests(); len(calls) != 0 {
		t.Errorf("steady state made %d GitHub calls, e.g. %s %s", len(calls), calls[0].Method, calls[0].Path)
	}
	for _, c := range p.Calls()[before:] {
		if c.Op != fake.OpMembers {
			t.Errorf("steady state wrote to the provider: %+v", c)
		}
	}
	if again := git(t, w.Remote, time.Time{}, "admin", "rev-parse", "main"); again != head {
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
	w.GH.Inject(ghfake.Fault{Status: 503, Times: 1 << 20}) // down for the whole pass, retries included

	p := roProvider()
	p.Set("ro", map[string]time.Time{"alice": {}})
	eng := w.engine(p, t0)
	ps := mustPlan(t, eng)
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

// The pull request comment after a grant quotes the principal, which
// gitgrant.yaml may spell with backticks and @: as code, never as markup
// that mentions a team.
func TestFeedbackQuotesPrincipal(t *testing.T) {
	t.Parallel()
	principal := "alice` ✅ approved by @org/security `"
	w := newWorld(t, fmt.Sprintf(config, "  alice: {principals: {db: \""+principal+"\"}}"))
	w.merge(1, "alice", "requests/db/alice.yaml", "requester: alice\ngrants: [{provider: db, role: ro}]\nduration: 4h\nreason: quoting test\n", t0.Add(-time.Hour))
	eng := w.engine(roProvider(), t0)
	ps := mustPlan(t, eng)
	defer ps.Close()
	if _, err := eng.Apply(context.Background(), ps, engine.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	comments := w.GH.Comments(w.Repo.Repo)
	if len(comments) != 1 {
		t.Fatalf("%d comments, want 1: %+v", len(comments), comments)
	}
	want := "gitgrant: `requests/db/alice.yaml`\n\n- granted `db/ro` for `` alice` ✅ approved by @org/security ` `` until 2026-11-22T15:00:00Z\n"
	if got := comments[0].Body; got != want {
		t.Errorf("comment\n got %q\nwant %q", got, want)
	}
}

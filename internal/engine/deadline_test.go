package engine_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/engine"
	"github.com/gitgrant/gitgrant/internal/gitrepo"
	"github.com/gitgrant/gitgrant/providers"
	"github.com/gitgrant/gitgrant/providers/fake"
)

// A provider that never answers is left out of the pass after its
// call_timeout, and the other providers' revocations and grants still go
// ahead (rule 15: nothing stops expiry).
func TestHungProviderHoldsUpNobody(t *testing.T) {
	t.Parallel()
	cfg := `identities:
  alice: {principals: {db: alice, wiki: alice}}
  bob: {principals: {db: bob, wiki: bob}}
providers:
  db:
    type: exec
    command: [unused]
    call_timeout: 200ms
    roles:
      ro: {max_duration: 8h, approvals: 1}
  wiki:
    type: exec
    command: [unused]
    roles:
      editor: {max_duration: 8h, approvals: 1}
`
	w := newWorld(t, cfg)
	w.merge(1, "alice", "requests/wiki/alice.yaml", "requester: alice\ngrants: [{provider: wiki, role: editor}]\nduration: 1h\nreason: expired already\n", t0.Add(-3*time.Hour))
	w.merge(2, "bob", "requests/wiki/bob.yaml", "requester: bob\ngrants: [{provider: wiki, role: editor}]\nduration: 4h\nreason: active now\n", t0.Add(-time.Hour))

	hung := fake.New(fake.Options{Name: "db", Roles: []string{"ro"}, FailContext: func(ctx context.Context, _ fake.Call) error {
		<-ctx.Done() // a system that accepts the call and never answers
		return ctx.Err()
	}})
	wiki := fake.New(fake.Options{Name: "wiki", Roles: []string{"editor"}})
	wiki.Set("editor", map[string]time.Time{"alice": {}})

	eng := w.engine(nil, t0)
	eng.Registry = providers.Registry{"exec": func(_ context.Context, pc gitgrant.ProviderConfig, _ providers.Deps) (providers.Provider, error) {
		if pc.Name == "db" {
			return keepOpen{hung}, nil
		}
		return keepOpen{wiki}, nil
	}}
	ctx := context.Background()
	ps := mustPlan(t, eng)
	defer ps.Close()
	var timedOut bool
	for _, p := range ps.Problems {
		timedOut = timedOut || (errors.Is(p, context.DeadlineExceeded) && strings.Contains(p.Error(), "provider db"))
	}
	if !timedOut {
		t.Errorf("problems %v, want provider db's deadline", ps.Problems)
	}
	if !containsString(ps.Plan.Unobserved, "db/ro") {
		t.Errorf("unobserved %v, want db/ro", ps.Plan.Unobserved)
	}
	if _, err := eng.Apply(ctx, ps, engine.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	ms, _ := wiki.Members(ctx, "editor")
	if len(ms) != 1 || ms[0].Principal != "bob" {
		t.Errorf("wiki editors = %+v, want bob only (alice's access expired)", ms)
	}
}

func containsString(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// Rule 7 in the engine, for every command: with the remote unreachable a
// pass plans from the last fetch and only revokes — `reconcile --repo URL`
// as much as `serve`.
func TestRemoteDownStillRevokes(t *testing.T) {
	t.Parallel()
	w := newWorld(t, strings.Replace(config, "%s", "  alice: {principals: {db: alice}}\n  bob: {principals: {db: bob}}", 1))
	w.merge(1, "alice", "requests/db/alice.yaml", "requester: alice\ngrants: [{provider: db, role: ro}]\nduration: 1h\nreason: short access\n", t0.Add(-30*time.Minute))
	p := roProvider()
	cache := t.TempDir()
	engineAt := func(now time.Time) *engine.Engine {
		eng := w.engine(p, now)
		repo, err := gitrepo.Open(context.Background(), gitrepo.Options{Source: "file://" + w.Remote, CacheDir: cache})
		if err != nil {
			t.Fatal(err)
		}
		eng.Repo = repo
		return eng
	}
	ctx := context.Background()
	eng := engineAt(t0)
	ps := mustPlan(t, eng)
	if _, err := eng.Apply(ctx, ps, engine.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	ps.Close()
	if ms, _ := p.Members(ctx, "ro"); len(ms) != 1 {
		t.Fatalf("setup: members %+v", ms)
	}

	// bob merges while the remote is reachable; then it goes away.
	w.merge(2, "bob", "requests/db/bob.yaml", "requester: bob\ngrants: [{provider: db, role: ro}]\nduration: 4h\nreason: later access\n", t0.Add(10*time.Minute))
	if err := os.Rename(w.Remote, w.Remote+".away"); err != nil {
		t.Fatal(err)
	}
	defer os.Rename(w.Remote+".away", w.Remote)
	eng = engineAt(t0.Add(2 * time.Hour)) // a new process with the cached clone, as `reconcile --repo URL` runs
	ps, err := eng.Plan(ctx, false)
	if err != nil {
		t.Fatalf("plan from the cached clone: %v", err)
	}
	defer ps.Close()
	if ps.Stale == nil {
		t.Fatalf("the unreachable remote went unnoticed")
	}
	_, err = eng.Apply(ctx, ps, engine.ApplyOptions{Cleanup: true})
	if err == nil || !strings.Contains(err.Error(), "only revocations") {
		t.Errorf("apply error %v, want the stale read reported", err)
	}
	if ms, _ := p.Members(ctx, "ro"); len(ms) != 0 {
		t.Errorf("members %+v: alice's expired access must be revoked, bob (not yet fetched) granted nothing", ms)
	}
}

package engine_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/engine"
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
	ps, err := eng.Plan(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
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

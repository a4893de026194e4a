package engine_test

import (
	"context"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gitgrant/gitgrant/internal/engine"
	"github.com/gitgrant/gitgrant/providers/fake"
)

// Faults during a pass: each row says what broke, and the test checks what
// happened and that nothing was lost once the fault is gone.
func TestFaultsLoseNothing(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		fault func(w *world, failing *atomic.Bool) (heal func())
	}{
		{"provider rejects every write", func(w *world, failing *atomic.Bool) func() {
			failing.Store(true)
			return func() { failing.Store(false) }
		}},
		{"git remote unreachable during cleanup", func(w *world, failing *atomic.Bool) func() {
			if err := os.Rename(w.Remote, w.Remote+".away"); err != nil {
				t.Fatal(err)
			}
			return func() { os.Rename(w.Remote+".away", w.Remote) }
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, strings.Replace(config, "%s", "  alice: {principals: {db: alice}}\n  bob: {principals: {db: bob}}", 1))
			w.merge(1, "alice", "requests/db/alice.yaml", "requester: alice\ngrants: [{provider: db, role: ro}]\nduration: 1h\nreason: expired already\n", t0.Add(-3*time.Hour))
			w.merge(2, "bob", "requests/db/bob.yaml", "requester: bob\ngrants: [{provider: db, role: ro}]\nduration: 4h\nreason: active\n", t0.Add(-time.Hour))
			var failing atomic.Bool
			p := fake.New(fake.Options{Name: "db", Roles: []string{"ro"}, Fail: func(c fake.Call) error {
				if failing.Load() && c.Op != fake.OpMembers {
					return fake.Down("db")
				}
				return nil
			}})
			p.Set("ro", map[string]time.Time{"alice": {}})
			ctx := context.Background()

			// A pass under the fault, to planned and applied state.
			plan := func() *engine.Pass {
				ps, err := w.engine(p, t0).Plan(ctx, false)
				if err != nil {
					t.Fatal(err)
				}
				return ps
			}
			heal := tc.fault(w, &failing)
			ps := plan()
			_, err := w.engine(p, t0).Apply(ctx, ps, engine.ApplyOptions{Cleanup: true})
			ps.Close()
			if err == nil {
				t.Errorf("the fault went unreported")
			}
			heal()

			// Passes after the fault converge to the right state.
			for range 2 {
				ps := plan()
				if _, err := w.engine(p, t0).Apply(ctx, ps, engine.ApplyOptions{Cleanup: true}); err != nil {
					t.Fatalf("after healing: %v", err)
				}
				ps.Close()
			}
			ms, _ := p.Members(ctx, "ro")
			if len(ms) != 1 || ms[0].Principal != "bob" {
				t.Errorf("members = %+v, want bob only", ms)
			}
			files := git(t, w.Remote, time.Time{}, "admin", "ls-tree", "-r", "--name-only", "main", "requests/")
			if files != "requests/db/bob.yaml" {
				t.Errorf("requests on the remote: %q; alice's expired file must be cleaned up, once", files)
			}
			log := git(t, w.Remote, time.Time{}, "admin", "log", "--format=%s", "main")
			if n := strings.Count(log, "gitgrant:"); n != 1 {
				t.Errorf("%d cleanup commits, want exactly 1:\n%s", n, log)
			}
		})
	}
}

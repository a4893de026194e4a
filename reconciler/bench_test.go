package reconciler

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/providers"
)

// benchWorld builds a config with 50 roles over 5 providers and n active,
// approved requests spread over them, plus the observed state and the
// ledger that match (the steady state: every grant exists and is recorded).
func benchWorld(n int) (*gitgrant.Config, []Source, Observed, gitgrant.Ledger) {
	cfg := &gitgrant.Config{Identities: map[string]gitgrant.Identity{}, Providers: map[string]gitgrant.ProviderConfig{}}
	for p := range 5 {
		pc := gitgrant.ProviderConfig{Name: fmt.Sprintf("p%d", p), Type: "postgres", Roles: map[string]gitgrant.RoleConfig{}, Drift: gitgrant.DriftRevoke}
		for r := range 10 {
			pc.Roles[fmt.Sprintf("r%d", r)] = gitgrant.RoleConfig{MaxDuration: gitgrant.Duration(8 * time.Hour), Approvals: 1}
		}
		cfg.Providers[pc.Name] = pc
	}
	users := 2000
	for u := range users {
		id := gitgrant.Identity{Principals: map[string]string{}}
		for p := range 5 {
			id.Principals[fmt.Sprintf("p%d", p)] = fmt.Sprintf("user%d", u)
		}
		cfg.Identities[fmt.Sprintf("user%d", u)] = id
	}
	observed := Observed{}
	ledger := gitgrant.Ledger{}
	sources := make([]Source, n)
	for i := range n {
		u, p, r := i%users, (i/users)%5, i%10
		req := &gitgrant.Request{Path: fmt.Sprintf("requests/p%d/req-%06d.yaml", p, i), Requester: fmt.Sprintf("user%d", u), Reason: "bench",
			Duration: gitgrant.Duration(4 * time.Hour), Grants: []gitgrant.GrantRef{{Provider: fmt.Sprintf("p%d", p), Role: fmt.Sprintf("r%d", r)}}}
		sources[i] = Source{Request: req, Evidence: &gitgrant.Evidence{Approved: true, MergedAt: t0.Add(-time.Duration(i%180) * time.Minute), Approvers: []gitgrant.Approver{{Login: "owner"}}}}
		sources[i].Blob = fmt.Sprintf("blob%d", i)
		key := RoleKey{fmt.Sprintf("p%d", p), fmt.Sprintf("r%d", r)}
		observed[key] = append(observed[key], providers.Member{Principal: fmt.Sprintf("user%d", u)})
	}
	// The ledger holds each membership as the request with the latest end
	// backs it, as the pass that granted or recorded it left it.
	for _, e := range Evaluate(cfg, sources, t0, Options{}) {
		for _, g := range e.Grants {
			k := gitgrant.MemberKey{Provider: g.Provider, Role: g.Role, Principal: g.Principal}
			if h, ok := ledger[k]; !ok || g.Window.End.After(h.End) {
				ledger[k] = gitgrant.Holding{MemberKey: k, Target: g.Role, End: g.Window.End, Request: e.Path, Blob: e.Blob, GrantedAt: g.Window.Start}
			}
		}
	}
	for p := range 5 {
		for r := range 10 {
			key := RoleKey{fmt.Sprintf("p%d", p), fmt.Sprintf("r%d", r)}
			if _, ok := observed[key]; !ok {
				observed[key] = nil
			}
		}
	}
	return cfg, sources, observed, ledger
}

// BenchmarkPlan10k is planning 10,000 active requests over 50 roles once
// the files are parsed and approvals known: Evaluate + Diff, steady state.
// The goal is 20 ms.
func BenchmarkPlan10k(b *testing.B) { benchPlan(b, 10_000) }

// BenchmarkPlan1k is the same at 1,000 requests: how planning grows.
func BenchmarkPlan1k(b *testing.B) { benchPlan(b, 1_000) }

func benchPlan(b *testing.B, n int) {
	cfg, sources, observed, ledger := benchWorld(n)
	b.ReportAllocs()
	for b.Loop() {
		plan := Diff(cfg, Evaluate(cfg, sources, t0, Options{}), observed, ledger, t0)
		if len(plan.Actions) != 0 || len(plan.Record) != 0 {
			b.Fatalf("steady state planned %d actions and %d records, e.g. %+v", len(plan.Actions), len(plan.Record), plan.Actions)
		}
	}
}

// BenchmarkPlan100kMemory reports the heap held by a plan of 100,000
// requests with its inputs (the memory goal is 100 MB).
func BenchmarkPlan100kMemory(b *testing.B) { benchPlanMemory(b, 100_000) }

// BenchmarkPlan10kMemory is the same at 10,000 requests.
func BenchmarkPlan10kMemory(b *testing.B) { benchPlanMemory(b, 10_000) }

func benchPlanMemory(b *testing.B, n int) {
	for b.Loop() {
		cfg, sources, observed, ledger := benchWorld(n)
		plan := Diff(cfg, Evaluate(cfg, sources, t0, Options{}), observed, ledger, t0)
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		b.ReportMetric(float64(m.HeapAlloc)/(1<<20), "heap-MB")
		runtime.KeepAlive(plan)
		runtime.KeepAlive(sources)
		runtime.KeepAlive(ledger)
	}
}

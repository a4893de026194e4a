// Package engine runs one reconcile pass: it reads the access repository's
// main branch from git, verifies approvals through GitHub, asks providers
// for their members, and plans with the pure reconciler; applying then
// grants and revokes, records grant-time notes, and removes expired files
// in a cleanup commit. Commands and `serve` drive it; it owns no clock,
// flags or output of its own.
package engine

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/approval"
	"github.com/gitgrant/gitgrant/internal/ghapi"
	"github.com/gitgrant/gitgrant/internal/gitrepo"
	"github.com/gitgrant/gitgrant/internal/trust"
	"github.com/gitgrant/gitgrant/providers"
	"github.com/gitgrant/gitgrant/reconciler"
	"github.com/gitgrant/gitgrant/schema"
)

// Engine holds what passes share.
type Engine struct {
	Repo *gitrepo.Repo
	// GitHub and Verifier are nil without GitHub credentials: then nothing
	// can be verified, so nothing new is granted (a dry run may plan
	// no-approval roles offline) while revocations go ahead.
	GitHub   *ghapi.Client
	Verifier *approval.Verifier
	Registry providers.Registry
	Deps     providers.Deps
	Logger   *slog.Logger
	// Clock is the one clock of a pass; nil is the wall clock. Providers
	// opened without a clock of their own in Deps get this one.
	Clock gitgrant.Clock
	// Retry is passed to the applier; zero means reconciler.DefaultRetry.
	Retry reconciler.Retry
	// GitHubBudget, when set, bounds each part of a pass that waits on
	// GitHub: verifying approvals in Plan, and pull request feedback in
	// Apply. When it runs out, the remaining requests are unverified
	// (their grants wait for a later pass) and the pass goes on, so a
	// GitHub that hangs never holds up revocations (rule 7) or the next
	// pass. Zero: no bound beyond the context.
	GitHubBudget time.Duration
	// Parsed keeps parsed request files across passes, so a long-running
	// process parses only files that changed. Nil: no cache.
	Parsed *schema.ParseCache
	// TrustRoot names the policy trusted without a pull request (rule 13,
	// docs/trust.md): "first" (the first policy commit of main), a commit
	// of main, or "" for a recorded `gitgrant trust --root first`.
	TrustRoot string

	trustMu    sync.Mutex
	trust      *trust.Resolver
	trustSrc   *gitSource             // trust's view of main, pinned during a plan
	followedUp map[string]int         // emergency follow-up issues ensured, by path@commit
	expired    map[string]fastRevoked // the fast path's revocations, by request, for the next Apply
}

func (e *Engine) now() time.Time { return gitgrant.ClockOr(e.Clock).Now() }

// deps are the providers' dependencies, on the engine's clock unless they
// name their own.
func (e *Engine) deps() providers.Deps {
	d := e.Deps
	if d.Clock == nil {
		d.Clock = e.Clock
	}
	return d
}

func (e *Engine) logger() *slog.Logger {
	if e.Logger != nil {
		return e.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// gitHubContext bounds a part of a pass that waits on GitHub.
func (e *Engine) gitHubContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if e.GitHubBudget > 0 {
		return context.WithTimeout(ctx, e.GitHubBudget)
	}
	return ctx, func() {}
}

// input describes a request file for verification, with the commit's
// parents from git: the verifier decides from them and from GitHub which
// commit a pull request was merged onto.
func (e *Engine) input(req *gitgrant.Request, prov gitrepo.Provenance) approval.Input {
	in := approval.Input{Path: req.Path, Blob: prov.Blob.String(), Commit: prov.Commit.String(), Request: req, Parents: []string{}}
	for _, h := range prov.Parents {
		in.Parents = append(in.Parents, h.String())
	}
	return in
}

// observe opens every provider and lists every managed role, providers
// side by side and each call under the provider's own deadline, so that
// one system that hangs or fails is left out (recorded in Problems) and
// never holds up the others (rule 15).
func (e *Engine) observe(ctx context.Context, p *Pass) reconciler.Observed {
	type result struct {
		name     string
		prov     providers.Provider
		members  map[string][]providers.Member
		problems []error
	}
	names := make([]string, 0, len(p.Config.Providers))
	for name := range p.Config.Providers {
		names = append(names, name)
	}
	sort.Strings(names)
	results := make([]result, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pc := p.Config.Providers[name]
			res := result{name: name, members: map[string][]providers.Member{}}
			octx, cancel := context.WithTimeout(ctx, pc.Timeout())
			prov, err := e.Registry.Open(octx, pc, e.deps())
			cancel()
			if err != nil {
				res.problems = append(res.problems, err) // factories name the provider
				results[i] = res
				return
			}
			res.prov = prov
			roles := make([]string, 0, len(pc.Roles))
			for r := range pc.Roles {
				roles = append(roles, r)
			}
			sort.Strings(roles)
			for _, role := range roles {
				mctx, cancel := context.WithTimeout(ctx, pc.Timeout())
				ms, err := members(mctx, prov, pc, role)
				cancel()
				if err != nil {
					res.problems = append(res.problems, fmt.Errorf("provider %s, role %s: %w", name, role, err))
					continue
				}
				res.members[role] = ms
			}
			results[i] = res
		}()
	}
	wg.Wait()
	observed := reconciler.Observed{}
	for _, res := range results {
		if res.prov != nil {
			p.open[res.name] = res.prov
		}
		p.Problems = append(p.Problems, res.problems...)
		for role, ms := range res.members {
			observed[reconciler.RoleKey{Provider: res.name, Role: role}] = ms
		}
	}
	return observed
}

// FileReader reads files at a commit from the local clone, so that
// verification reads base and head commits without API calls. A commit
// the clone does not have is an error (not fs.ErrNotExist), which makes
// the verifier ask GitHub instead.
type FileReader struct{ Repo *gitrepo.Repo }

// ReadFile implements approval.FileReader.
func (g FileReader) ReadFile(ctx context.Context, rev, path string) ([]byte, error) {
	return g.Repo.ReadFileAt(ctx, rev, path)
}

// Parents implements approval.ParentReader: parents from git cost no API
// call.
func (g FileReader) Parents(_ context.Context, rev string) ([]string, error) {
	c, err := g.Repo.CommitAt(gitrepo.ParseHash(rev))
	if err != nil {
		return nil, err
	}
	out := make([]string, len(c.Parents))
	for i, h := range c.Parents {
		out[i] = h.String()
	}
	return out, nil
}

var (
	_ approval.FileReader   = FileReader{}
	_ approval.ParentReader = FileReader{}
)

func texts(ds gitgrant.Diagnostics) []string {
	out := make([]string, 0, len(ds))
	for _, d := range ds {
		if d.Severity != gitgrant.SeverityWarning {
			out = append(out, d.String())
		}
	}
	return out
}

// members lists who holds role: its members, or for an ephemeral role the
// accounts with its prefix.
func members(ctx context.Context, prov providers.Provider, pc gitgrant.ProviderConfig, role string) ([]providers.Member, error) {
	if pc.Roles[role].Mode != gitgrant.ModeEphemeral {
		return prov.Members(ctx, role)
	}
	ep, ok := prov.(providers.Ephemeral)
	if !ok {
		return nil, fmt.Errorf("provider %s (type %s) cannot make ephemeral accounts for role %s", pc.Name, pc.Type, role)
	}
	names, err := ep.Accounts(ctx, role)
	if err != nil {
		return nil, err
	}
	out := make([]providers.Member, 0, len(names))
	for _, n := range names {
		out = append(out, providers.Member{Principal: n})
	}
	return out, nil
}

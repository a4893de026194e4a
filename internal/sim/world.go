// Package sim is a deterministic simulation of gitgrant: one seeded random
// source drives people (pull requests of every kind, direct pushes, policy
// changes, emergencies, drift), faults (a provider down or hanging, GitHub
// down, the remote down, a kill -9 of the reconciler mid-pass, clock jumps)
// and the real engine's passes, on real git, the fake GitHub and the
// in-memory provider, through days of simulated time; after every step it
// checks the promise (docs/simulation.md) against its own ground truth.
// The same seed replays the same run exactly.
package sim

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"maps"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/approval"
	"github.com/gitgrant/gitgrant/internal/engine"
	"github.com/gitgrant/gitgrant/internal/ghapi"
	"github.com/gitgrant/gitgrant/internal/gitrepo"
	"github.com/gitgrant/gitgrant/internal/testing/fakeclock"
	"github.com/gitgrant/gitgrant/providers"
	"github.com/gitgrant/gitgrant/providers/fake"
	"github.com/gitgrant/gitgrant/reconciler"
)

// Epoch is when every run starts.
var Epoch = time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC)

// Options say which run to make.
type Options struct {
	Seed uint64
	// Steps is how many steps to run; each step moves the clock by up to
	// two hours, lets people act, and runs a pass.
	Steps int
	// Postgres puts provider db on the PostgreSQL server of
	// internal/testing/testenv (the real postgres provider, drift by SQL,
	// the server down or hung), not in memory.
	Postgres bool
	// Log, when set, receives one line per step.
	Log func(format string, args ...any)
}

// Result is what a run did.
type Result struct {
	Seed  uint64
	Steps int
	// Trace is a hash of every step's actions and the state after it:
	// equal traces mean equal runs.
	Trace string
	// Violation is the first broken invariant, nil when none broke.
	Violation *Violation
	// Counts are how often each action and fault happened.
	Counts map[string]int
	// Checks are how often each invariant was checked.
	Checks map[string]int
	// Waited is the wall time the run spent waiting for deadlines (a hung
	// provider, a slow GitHub), for sizing the CI set: time no CPU works.
	Waited time.Duration
}

// Violation is a broken invariant.
type Violation struct {
	Step      int
	At        time.Time
	Invariant string
	Detail    string
}

func (v *Violation) Error() string {
	return fmt.Sprintf("step %d (%s): %s: %s", v.Step, v.At.Format(time.RFC3339), v.Invariant, v.Detail)
}

// world is one run: the repository and its twin on the fake GitHub, the
// providers, the reconciler process, the faults in force, and the truth.
type world struct {
	t     testing.TB
	opts  Options
	rng   *rand.Rand
	clock *fakeclock.Clock
	hub   *hub
	cache string
	provs map[string]system
	// pg is provider db on a real PostgreSQL server, nil for the
	// in-memory one.
	pg    *pgSystem
	eng   *engine.Engine
	truth *truth

	step   int
	trace  hash.Hash
	res    *Result
	faults faults
	// the kill of the current pass
	cancel     context.CancelFunc
	killAt     int // write number that kills the pass; 0: none
	writes     int
	killed     bool
	ghRequests []string // method and path of GitHub requests, this pass
	nextPR     int
	open       []*openPR
	merged     []int // numbers of the merged pull requests
	// granted is what the reconciler granted and did not revoke since,
	// by "provider/role/principal".
	granted map[string]bool
	// firstGrant is when gitgrant first granted anything: its first
	// ledger line.
	firstGrant time.Time
	// unrecorded are grants revoked in a pass that may not have recorded
	// it, by "provider/role/principal".
	unrecorded map[string]bool
	started    time.Time
	// dry: a dry run is under way.
	dry bool
	// unbounded are GitHub requests of this pass with no deadline while
	// GitHub was slow.
	unbounded []string
	waitMu    sync.Mutex
	// seen is the latest time the clock showed.
	seen time.Time
}

type faults struct {
	ghDown bool
	// ghSlow: GitHub answers, but from the slowAfter-th request of a pass
	// on, later than any deadline the reconciler sets.
	ghSlow     bool
	slowAfter  int
	remoteDown bool
	down, hung map[string]bool
}

// Run runs one simulation.
func Run(t testing.TB, o Options) *Result {
	t.Helper()
	w := &world{t: t, opts: o, rng: rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15)),
		clock: fakeclock.New(Epoch), trace: sha256.New(), nextPR: 1, granted: map[string]bool{}, unrecorded: map[string]bool{},
		res:    &Result{Seed: o.Seed, Counts: map[string]int{}, Checks: map[string]int{}},
		faults: faults{down: map[string]bool{}, hung: map[string]bool{}}}
	w.truth = newTruth()
	w.started = time.Now()
	w.setup()
	for w.step = 1; w.step <= o.Steps; w.step++ {
		if err := w.runStep(); err != nil {
			var v *Violation
			if errors.As(err, &v) {
				w.res.Violation = v
			} else {
				w.res.Violation = &Violation{Step: w.step, At: w.now(), Invariant: "no panic", Detail: err.Error()}
			}
			break
		}
		w.res.Steps = w.step
	}
	if w.res.Violation == nil && w.res.Steps > 0 {
		w.step = w.res.Steps
		if err := w.checkAudit(); err != nil {
			w.res.Violation = err.(*Violation)
		} else if err := w.checkSecretsInGit(); err != nil {
			w.res.Violation = err.(*Violation)
		}
	}
	if w.pg != nil {
		w.res.Counts["ephemeral accounts made by gitgrant"] = len(w.pg.accounts)
	}
	w.res.Trace = hex.EncodeToString(w.trace.Sum(nil))
	return w.res
}

func (w *world) now() time.Time { return w.clock.Now() }

func (w *world) logf(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	fmt.Fprintf(w.trace, "%d %s\n", w.step, line)
	if w.opts.Log != nil {
		w.opts.Log("step %d %s: %s [%s]", w.step, w.now().Format("Jan 2 15:04"), line, time.Since(w.started).Round(time.Millisecond))
	}
}

func (w *world) count(what string) { w.res.Counts[what]++ }

func (w *world) violate(invariant, format string, args ...any) error {
	return &Violation{Step: w.step, At: w.now(), Invariant: invariant, Detail: fmt.Sprintf(format, args...)}
}

func (w *world) setup() {
	prefix := ""
	if w.opts.Postgres {
		w.pg = newPGSystem(w)
		prefix = w.pg.prefix
	}
	// Even seeds clean up by pull request.
	pol := initialPolicy(prefix, w.opts.Seed%2 == 0)
	w.truth.verified, w.truth.main = pol, pol
	w.hub = newHub(w.t, w.now, map[string]string{"gitgrant.yaml": pol.config(), ".github/CODEOWNERS": pol.codeowners()}, Epoch.Add(-time.Hour))
	w.hub.gh.AddTeamMember("acme", "approvers", teamMember)
	w.truth.teamState = "active"
	w.cache = filepath.Join(w.t.TempDir(), "cache")
	w.provs = map[string]system{}
	for name, roles := range providerRoles {
		if name == "db" && w.pg != nil {
			w.provs[name] = w.pg
			continue
		}
		w.provs[name] = fakeSystem{fake.New(fake.Options{Name: name, Roles: roles, Fail: w.providerFault(name), FailContext: w.providerHang(name)})}
	}
}

// providerFault is the in-memory provider's failure hook: down, or killed
// mid-pass, or the write that kills the pass.
func (w *world) providerFault(name string) func(fake.Call) error {
	return func(c fake.Call) error {
		if w.killed {
			return errors.New("the reconciler was killed")
		}
		if w.faults.down[name] {
			return fake.Down(name)
		}
		if c.Op == fake.OpGrant || c.Op == fake.OpRevoke {
			if w.tick() {
				return errors.New("the reconciler was killed")
			}
		}
		return nil
	}
}

func (w *world) providerHang(name string) func(context.Context, fake.Call) error {
	return func(ctx context.Context, _ fake.Call) error {
		if w.faults.hung[name] {
			w.wait(ctx)
			return ctx.Err()
		}
		return nil
	}
}

// tick counts a write of the pass and kills the pass at the chosen one.
func (w *world) tick() bool {
	w.writes++
	if w.killAt > 0 && w.writes >= w.killAt && !w.killed {
		w.killed = true
		w.cancel()
	}
	return w.killed
}

// transport is the reconciler's way to GitHub: down, killed, or the write
// that kills the pass.
type transport struct{ w *world }

func (t transport) RoundTrip(r *http.Request) (*http.Response, error) {
	w := t.w
	if w.killed {
		return nil, errors.New("the reconciler was killed")
	}
	if w.faults.ghDown {
		return nil, errors.New("dial tcp: connection refused (GitHub is down, simulated)")
	}
	w.ghRequests = append(w.ghRequests, r.Method+" "+r.URL.Path)
	if r.Method != http.MethodGet && w.tick() {
		return nil, errors.New("the reconciler was killed")
	}
	if w.faults.ghSlow && len(w.ghRequests) > w.faults.slowAfter {
		if err := w.late(r); err != nil {
			return nil, err
		}
	}
	return http.DefaultTransport.RoundTrip(r)
}

// late is GitHub answering r late: after any deadline of the request's
// context (the reconciler's GitHub budget), so that which calls answer
// never depends on the machine's speed. A request with no deadline is
// answered at once and noted as a wait a GitHub slower still would hold
// (rule 15), in a pass or a dry run (`gitgrant plan --github-budget`).
func (w *world) late(r *http.Request) error {
	if _, ok := r.Context().Deadline(); !ok {
		w.unbounded = append(w.unbounded, r.Method+" "+r.URL.Path)
		return nil
	}
	w.wait(r.Context())
	return r.Context().Err()
}

// wait waits for ctx to end, adding the time to Result.Waited.
func (w *world) wait(ctx context.Context) {
	t0 := time.Now()
	<-ctx.Done()
	w.waitMu.Lock()
	w.res.Waited += time.Since(t0)
	w.waitMu.Unlock()
}

// keepOpen shares one provider across passes: a pass closes what it
// opened, the system outlives it.
type keepOpen struct{ providers.Provider }

func (keepOpen) Close() error { return nil }

// newEngine starts a reconciler process: nothing carries over from the
// last one but git (its clone) and the providers.
func (w *world) newEngine(cache string) (*engine.Engine, error) {
	ctx := context.Background()
	repo, err := gitrepo.Open(ctx, gitrepo.Options{Source: w.hub.url(), CacheDir: cache, Token: token})
	if err != nil {
		return nil, err
	}
	cl, err := ghapi.New(ghapi.Config{Token: token, APIURL: w.hub.gh.BaseURL(), Repository: "acme/access"},
		ghapi.Options{Base: transport{w}, Clock: fakeclock.NewAuto(w.now())})
	if err != nil {
		w.t.Fatal(err)
	}
	v := approval.New(cl, engine.FileReader{Repo: repo}, &approval.MemoryCache{})
	v.Clock = w.clock
	return &engine.Engine{
		TrustRoot: engine.TrustFirst, Repo: repo, GitHub: cl, Verifier: v, Deps: providers.DefaultDeps(), Clock: w.clock,
		Retry: reconciler.Retry{Attempts: 2, Base: time.Millisecond, Sleep: func(ctx context.Context, _ time.Duration) error { return ctx.Err() }},
		Registry: providers.Registry{
			"exec": func(_ context.Context, pc gitgrant.ProviderConfig, _ providers.Deps) (providers.Provider, error) {
				if w.killed {
					return nil, errors.New("the reconciler was killed")
				}
				return keepOpen{w.provs[pc.Name].(fakeSystem).Provider}, nil
			},
			"postgres": func(ctx context.Context, pc gitgrant.ProviderConfig, _ providers.Deps) (providers.Provider, error) {
				if w.killed {
					return nil, errors.New("the reconciler was killed")
				}
				return w.pg.open(ctx, pc)
			},
		},
	}, nil
}

// members is who holds each managed role now, sorted, by "provider/role".
func (w *world) members() map[string][]string {
	out := map[string][]string{}
	for _, name := range slices.Sorted(maps.Keys(w.provs)) {
		for _, role := range providerRoles[name] {
			ms := w.provs[name].holders(role)
			sort.Strings(ms)
			out[name+"/"+role] = ms
		}
	}
	return out
}

func (w *world) faultsString() string {
	var on []string
	if w.faults.ghDown {
		on = append(on, "github-down")
	}
	if w.faults.ghSlow {
		on = append(on, "github-slow")
	}
	if w.faults.remoteDown {
		on = append(on, "remote-down")
	}
	for _, n := range slices.Sorted(maps.Keys(w.faults.down)) {
		if w.faults.down[n] {
			on = append(on, n+"-down")
		}
	}
	for _, n := range slices.Sorted(maps.Keys(w.faults.hung)) {
		if w.faults.hung[n] {
			on = append(on, n+"-hung")
		}
	}
	return strings.Join(on, ",")
}

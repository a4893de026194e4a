package sim

import (
	"context"
	"maps"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/gitgrant/gitgrant/internal/engine"
	"github.com/gitgrant/gitgrant/internal/gitrepo"
	"github.com/gitgrant/gitgrant/providers/fake"
)

// runStep moves the clock, lets the world change, runs a pass and checks
// the invariants. A panic anywhere is a violation.
func (w *world) runStep() (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = w.violate("no panic", "%v\n%s", r, debug.Stack())
		}
	}()
	adv := time.Duration(20+w.rng.IntN(200)) * time.Minute // two hours on average
	switch {
	case w.rng.IntN(40) == 0:
		adv += time.Duration(1+w.rng.IntN(12)) * time.Hour
		w.logf("clock jumps forward %s", adv)
		w.count("clock jump forward")
	case w.rng.IntN(60) == 0:
		adv = -time.Duration(1+w.rng.IntN(10)) * time.Minute
		w.logf("clock jumps back %s", -adv)
		w.count("clock jump back")
	}
	w.clock.Set(w.now().Add(adv))
	if w.now().After(w.seen) {
		w.seen = w.now()
	}
	if w.step%8 == 0 && !w.faults.remoteDown {
		repack(w.t, w.hub.dir)
	}
	w.toggleFaults()
	for range w.rng.IntN(3) {
		w.act(&w.open)
	}
	if w.rng.IntN(8) == 0 {
		if err := w.dryRun(); err != nil {
			return err
		}
	}
	return w.pass()
}

// toggleFaults starts and ends outages.
func (w *world) toggleFaults() {
	f := &w.faults
	flip := func(on bool, start, end int, what string) bool {
		if on && w.rng.IntN(100) < end || !on && w.rng.IntN(100) < start {
			w.logf("%s: %v", what, !on)
			if !on {
				w.count(what)
			}
			return !on
		}
		return on
	}
	f.ghDown = flip(f.ghDown, 8, 50, "github down")
	f.ghSlow = flip(f.ghSlow, 5, 50, "github slow")
	if f.ghSlow {
		f.slowAfter = w.rng.IntN(12)
	}
	remote := flip(f.remoteDown, 4, 50, "remote down")
	if remote != f.remoteDown {
		w.hub.away(remote)
		f.remoteDown = remote
	}
	for _, name := range slices.Sorted(maps.Keys(w.provs)) {
		f.down[name] = flip(f.down[name], 5, 50, name+" down")
		f.hung[name] = flip(f.hung[name], 1, 70, name+" hung")
	}
}

// gitHubAnswers: GitHub answers in time and the remote is there.
func (w *world) gitHubAnswers() bool {
	return !w.faults.ghDown && !w.faults.ghSlow && !w.faults.remoteDown
}

func (w *world) reachable(provider string) bool {
	return !w.faults.down[provider] && !w.faults.hung[provider]
}

// pass runs one reconcile pass, now and then in a fresh process, now and
// then killed at a random write (kill -9: the process is abandoned, and
// the next pass starts from git and the providers alone).
func (w *world) pass() error {
	if w.eng == nil || w.rng.IntN(8) == 0 {
		repackCache(w.t, w.cache) // between processes, like git gc
		eng, err := w.newEngine(w.cache)
		if err != nil {
			if w.faults.remoteDown {
				// Never cloned, and the remote is away: the process cannot
				// start (nothing to plan from), and changes nothing.
				w.logf("pass: the reconciler cannot start: %v", err)
				return nil
			}
			w.t.Fatalf("seed %d: opening the repository: %v", w.opts.Seed, err)
		}
		w.eng = eng
		w.logf("a fresh reconciler process starts")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w.cancel, w.writes, w.killed, w.killAt = cancel, 0, false, 0
	w.ghRequests, w.unbounded = nil, nil
	// serve bounds each part of a pass that waits on GitHub (30s by
	// default): a bound no answer in time comes near, except a slow
	// GitHub's late ones.
	w.eng.GitHubBudget = w.gitHubBudget()
	if w.rng.IntN(20) == 0 {
		w.killAt = 1 + w.rng.IntN(6)
	}
	before := map[string]int{}
	for name, p := range w.provs {
		before[name] = len(p.calls())
	}
	if !w.faults.remoteDown {
		w.truth.fetch()
	}
	at := w.now()
	refs := w.remoteRefs()
	var held map[string]bool
	t0 := time.Now()
	ps, err := w.eng.Plan(ctx, false)
	planTook := time.Since(t0)
	var applyErr error
	if err == nil {
		_, applyErr = w.eng.Apply(ctx, ps, engine.ApplyOptions{Cleanup: true, Commit: gitrepo.CommitOptions{Clock: w.clock}})
		ps.Close()
		if os.Getenv("SIM_DEBUG") != "" && w.opts.Log != nil {
			w.opts.Log("policy %+v", ps.Plan.Policy)
			for _, en := range ps.Plan.Entries {
				w.opts.Log("entry %s %s %v approvers %v grants %+v", en.Path, en.Status, en.Reasons, en.Approvers, en.Grants)
			}
			for _, pr := range ps.Problems {
				w.opts.Log("problem %v", pr)
			}
			for _, a := range ps.Plan.Actions {
				w.opts.Log("action %s %s/%s %s (%s)", a.Op, a.Provider, a.Role, a.Principal, a.Request)
			}
			w.opts.Log("apply error %v", applyErr)
		}
		held = map[string]bool{}
		for _, a := range ps.Plan.Held {
			held[a.Provider+"/"+a.Role+"/"+w.person(a.Provider, a.Principal)] = true
		}
	}
	killed := w.killed
	w.killed, w.killAt = false, 0
	ms := w.members()
	if w.opts.Log != nil {
		w.opts.Log("plan %s, pass %s", planTook, time.Since(t0))
	}
	w.logf("pass (faults %q, killed %v, plan error %v): %v", w.faultsString(), killed, err != nil, ms)
	if killed {
		w.eng = nil
		w.count("kill -9")
	}
	if err != nil && w.faultsString() == "" && !killed {
		return w.violate("a pass plans", "plan failed with nothing down: %v", err)
	}
	_ = applyErr
	if err := w.checkRefs(refs); err != nil {
		return err
	}
	if w.faults.ghSlow {
		w.res.Checks["a pass bounds its waits on GitHub"]++
		if len(w.unbounded) > 0 {
			return w.violate("a pass bounds its waits on GitHub", "with GitHub slow, the pass sent %d requests under no deadline: %v", len(w.unbounded), w.unbounded)
		}
	}
	if err := w.checkRevocations(before, at); err != nil {
		return err
	}
	if err := w.syncTruth(); err != nil {
		return err
	}
	if err := w.checkFollowUps(); err != nil {
		return err
	}
	if err := w.checkSecretsOnGitHub(); err != nil {
		return err
	}
	w.track(before, at, ms, killed || w.faults.remoteDown)
	if w.firstGrant.IsZero() && len(w.granted) > 0 {
		w.firstGrant = at
	}
	w.truth.history = append(w.truth.history, holders{at: at, members: ms, granted: w.grantedSnapshot()})
	if killed || err != nil {
		return nil
	}
	if err := w.checkSafety(at, ms, held); err != nil {
		return err
	}
	if err := w.checkAccounts(at); err != nil {
		return err
	}
	if w.gitHubAnswers() {
		// With GitHub and the remote answering, gitgrant verified what it
		// saw on main.
		if err := w.checkLiveness(at, ms); err != nil {
			return err
		}
		clear(w.truth.standingGrace)
		for _, r := range w.truth.records {
			if w.truth.visible(r) {
				r.verified = true
			}
		}
	}
	return nil
}

// dryRun is `gitgrant plan` in a process of its own: it must write
// nothing (rule 16).
func (w *world) dryRun() error {
	repackCache(w.t, w.cache+"-plan")
	eng, err := w.newEngine(w.cache + "-plan")
	if err != nil {
		if w.faults.remoteDown {
			return nil // never cloned: `plan` fails, writing nothing
		}
		w.t.Fatal(err)
	}
	eng.GitHubBudget = w.gitHubBudget() // `plan --github-budget`
	before := map[string]int{}
	for name, p := range w.provs {
		before[name] = len(p.calls())
	}
	refs := w.remoteRefs()
	w.ghRequests, w.unbounded = nil, nil
	w.dry = true
	ps, err := eng.Plan(context.Background(), false)
	w.dry = false
	if err == nil {
		ps.Close()
	}
	if w.faults.ghSlow {
		w.res.Checks["a pass bounds its waits on GitHub"]++
		if len(w.unbounded) > 0 {
			return w.violate("a pass bounds its waits on GitHub", "with GitHub slow, the dry run sent %d requests under no deadline: %v", len(w.unbounded), w.unbounded)
		}
	}
	w.res.Checks["a dry run writes nothing"]++
	w.logf("dry run (error %v)", err != nil)
	for name, p := range w.provs {
		for _, c := range p.calls()[before[name]:] {
			if c.Op != fake.OpMembers && c.Op != opAccounts {
				return w.violate("a dry run writes nothing", "plan called %s %s %s on %s", c.Op, c.Role, c.Principal, name)
			}
		}
	}
	for _, r := range w.ghRequests {
		if !strings.HasPrefix(r, "GET ") {
			return w.violate("a dry run writes nothing", "plan sent %s to GitHub", r)
		}
	}
	if after := w.remoteRefs(); after != refs {
		return w.violate("a dry run writes nothing", "plan moved refs of the remote:\n%s\n->\n%s", refs, after)
	}
	return nil
}

// remoteRefs lists the remote's refs (empty while it is away).
func (w *world) remoteRefs() string { return w.hub.refs() }

// grantedSnapshot is what the reconciler granted and has not revoked,
// by "provider/role/principal".
func (w *world) grantedSnapshot() map[string]bool {
	out := make(map[string]bool, len(w.granted))
	for k, v := range w.granted {
		if v {
			out[k] = true
		}
	}
	return out
}

// track follows the reconciler's grants and revocations in the calls the
// providers received since before; a call counts when it took effect
// (members ms after the pass): one to a provider that was down did not.
func (w *world) track(before map[string]int, at time.Time, ms map[string][]string, unrecorded bool) {
	for _, name := range slices.Sorted(maps.Keys(w.provs)) {
		for _, c := range w.provs[name].calls()[before[name]:] {
			k := name + "/" + c.Role + "/" + c.Principal
			holds := slices.Contains(ms[name+"/"+c.Role], c.Principal)
			if c.Op == fake.OpGrant && !holds || c.Op == fake.OpRevoke && holds {
				continue
			}
			switch c.Op {
			case fake.OpGrant:
				w.granted[k] = true
				if r := w.truth.covering(name+"/"+c.Role, c.Principal, at); r != nil && !unrecorded {
					r.granted = true
				}
			case fake.OpRevoke:
				if unrecorded && w.granted[k] {
					w.unrecorded[k] = true
				}
				delete(w.granted, k)
			}
		}
	}
}

// gitHubBudget is the reconciler's bound on each wait for GitHub (serve's
// default is 30s): a bound no answer in time comes near, except a slow
// GitHub's late ones.
func (w *world) gitHubBudget() time.Duration {
	if w.faults.ghSlow {
		return 200 * time.Millisecond
	}
	return 30 * time.Second
}

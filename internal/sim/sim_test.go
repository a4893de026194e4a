package sim_test

import (
	"flag"
	"fmt"
	"maps"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gitgrant/gitgrant/internal/sim"
	"github.com/gitgrant/gitgrant/internal/testing/testenv"
)

var (
	seedFlag  = flag.Uint64("sim.seed", 0, "run only this seed (0: the CI set, or the soak)")
	stepsFlag = flag.Int("sim.steps", 0, "steps per seed (0: from -sim.days)")
	seedsFlag = flag.Int("sim.seeds", 0, "how many seeds (0: the CI set; GITGRANT_SIM_SOAK=N also sets it)")
	daysFlag  = flag.Float64("sim.days", 0, "simulated days per seed (0: 2)")
	verbose   = flag.Bool("sim.v", false, "log every step")
	// parallelFlag: seeds run at once; twice the CPUs by default.
	parallelFlag = flag.Int("sim.parallel", 2*runtime.GOMAXPROCS(0), "seeds run at once")
)

// ciSeeds and ciDays are what `go test ./internal/sim` runs;
// ciPostgresSeeds of them also run with provider db on PostgreSQL.
const (
	ciSeeds         = 250
	ciPostgresSeeds = 30
	ciDays          = 2.0
)

// defectKey is a seed, in memory or on PostgreSQL.
type defectKey struct {
	seed     uint64
	postgres bool
}

// knownDefects are seeds that find a defect not fixed yet
// (docs/simulation.md, "What it found"), with the step it breaks at: a
// run of that many steps or more skips them, saying why; -sim.seed runs
// them.
var knownDefects = map[defectKey]knownDefect{}

type knownDefect struct {
	step int
	why  string
}

// stepsPerDay: a step moves the clock by about two hours.
const stepsPerDay = 12

func plan(ci int) (seeds []uint64, steps int) {
	days := *daysFlag
	if days == 0 {
		days = ciDays
	}
	steps = *stepsFlag
	if steps == 0 {
		steps = int(days * stepsPerDay)
	}
	if *seedFlag != 0 {
		return []uint64{*seedFlag}, steps
	}
	n := *seedsFlag
	if v := os.Getenv("GITGRANT_SIM_SOAK"); v != "" && n == 0 {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			panic("GITGRANT_SIM_SOAK must be a number of seeds: " + v)
		}
	}
	if n == 0 {
		n = ci
	}
	for i := range n {
		seeds = append(seeds, uint64(i+1))
	}
	return seeds, steps
}

// TestSimulation runs the seeds with the in-memory providers; a failing
// one prints its shortest failing prefix and the command that replays it.
func TestSimulation(t *testing.T) {
	t.Parallel()
	seeds, steps := plan(ciSeeds)
	runSeeds(t, "TestSimulation", seeds, steps, false)
}

// TestSimulationPostgres runs a smaller set of seeds with provider db on
// the real PostgreSQL server (the postgres provider, pg_auth_members as
// the ground truth). Without a server it skips, loudly, and under CI=true
// it fails.
func TestSimulationPostgres(t *testing.T) {
	t.Parallel()
	testenv.PostgresDSN(t) // once for the set: skip, or fail under CI=true
	seeds, steps := plan(ciPostgresSeeds)
	runSeeds(t, "TestSimulationPostgres", seeds, steps, true)
}

func runSeeds(t *testing.T, test string, seeds []uint64, steps int, pg bool) {
	var mu sync.Mutex
	total := map[string]int{}
	checks := map[string]int{}
	ran := 0
	var waited time.Duration
	// A seed waits now and then (a hung provider until its call_timeout,
	// a slow GitHub until the pass's budget): more seeds run at once than
	// there are CPUs, so that the waits overlap with work.
	sem := make(chan struct{}, *parallelFlag)
	var wg sync.WaitGroup
	t.Run("seeds", func(t *testing.T) {
		for _, seed := range seeds {
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				runSeed(t, test, seed, steps, pg, &mu, &ran, &waited, total, checks)
			}()
		}
		wg.Wait()
	})
	var b strings.Builder
	fmt.Fprintf(&b, "%d seeds x %d steps: %d steps run, %s waiting for deadlines\n", len(seeds), steps, ran, waited.Round(time.Second))
	for _, k := range slices.Sorted(maps.Keys(checks)) {
		fmt.Fprintf(&b, "  checked %-40s %d\n", k, checks[k])
	}
	for _, k := range slices.Sorted(maps.Keys(total)) {
		fmt.Fprintf(&b, "  happened %-40s %d\n", k, total[k])
	}
	t.Log(b.String())
}

// runSeed runs one seed as a subtest of t.
func runSeed(t *testing.T, test string, seed uint64, steps int, pg bool, mu *sync.Mutex, ran *int, waited *time.Duration, total, checks map[string]int) {
	t.Run(strconv.FormatUint(seed, 10), func(t *testing.T) {
		if d, ok := knownDefects[defectKey{seed, pg}]; ok && *seedFlag == 0 && steps >= d.step {
			t.Skipf("seed %d finds a known defect at step %d, not fixed yet: %s (replay with -run '^%s$' -sim.seed=%d -sim.steps=%d -sim.v)", seed, d.step, d.why, test, seed, d.step)
		}
		o := sim.Options{Seed: seed, Steps: steps, Postgres: pg}
		if *verbose {
			o.Log = t.Logf
		}
		res := sim.Run(t, o)
		mu.Lock()
		*ran += res.Steps
		*waited += res.Waited
		for k, v := range res.Counts {
			total[k] += v
		}
		for k, v := range res.Checks {
			checks[k] += v
		}
		mu.Unlock()
		if v := res.Violation; v != nil {
			t.Errorf("seed %d broke %q at step %d (%s):\n%s\nshortest failing prefix: %d steps; replay with\n  go test ./internal/sim -run '^%s$' -sim.seed=%d -sim.steps=%d -sim.v",
				seed, v.Invariant, v.Step, v.At.Format("2006-01-02 15:04"), v.Detail, v.Step, test, seed, v.Step)
		}
	})
}

// TestSameSeedSameRun: a seed replays exactly.
func TestSameSeedSameRun(t *testing.T) {
	t.Parallel()
	const seed, steps = 7, 30
	a := sim.Run(t, sim.Options{Seed: seed, Steps: steps})
	b := sim.Run(t, sim.Options{Seed: seed, Steps: steps})
	if a.Trace != b.Trace {
		t.Errorf("seed %d ran differently twice: trace %s, then %s", seed, a.Trace, b.Trace)
	}
	c := sim.Run(t, sim.Options{Seed: seed + 1, Steps: steps})
	if c.Trace == a.Trace {
		t.Errorf("seeds %d and %d ran the same: the seed drives nothing", seed, seed+1)
	}
}

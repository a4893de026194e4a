package sim

import (
	"context"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/gitgrant/gitgrant/internal/audit"
	"github.com/gitgrant/gitgrant/internal/gitrepo"
	"github.com/gitgrant/gitgrant/providers/fake"
)

// checkRefs: no ref of the remote moved except forward (no force push).
func (w *world) checkRefs(before string) error {
	if w.faults.remoteDown || before == "" {
		return nil
	}
	w.res.Checks["no force push"]++
	old := refMap(before)
	for name, sha := range refMap(w.remoteRefs()) {
		was, ok := old[name]
		if !ok || was == sha || name == cleanupRef {
			continue // gitgrant rebuilds its own cleanup branch on main
		}
		if !w.hub.descends(was, sha) {
			return w.violate("no force push", "%s moved from %s to %s, which does not descend from it", name, was, sha)
		}
	}
	return nil
}

func refMap(s string) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(s, "\n") {
		if sha, name, ok := strings.Cut(line, " "); ok {
			out[name] = sha
		}
	}
	return out
}

// checkRevocations: nothing a verified active window covers was revoked
// (drift of members gitgrant did not grant aside, which no window
// covers).
func (w *world) checkRevocations(before map[string]int, at time.Time) error {
	for _, name := range slices.Sorted(maps.Keys(w.provs)) {
		for _, c := range w.provs[name].calls()[before[name]:] {
			if c.Op != fake.OpRevoke {
				continue
			}
			w.res.Checks["no wrongful revocation"]++
			r := w.truth.covering(name+"/"+c.Role, c.Principal, at)
			if r != nil && r.verified && (w.gitHubAnswers() || r.granted) {
				return w.violate("no wrongful revocation", "revoked %s from %s/%s while %s covers it", c.Principal, name, c.Role, r)
			}
		}
	}
	return nil
}

// syncTruth notes the request files the reconciler's cleanup removed
// from main; it may remove only what no verified window keeps.
func (w *world) syncTruth() error {
	if w.faults.remoteDown {
		return nil
	}
	onMain := map[string]bool{}
	_, files := w.hub.main()
	for p := range files {
		onMain[p] = true
	}
	for _, r := range w.truth.live() {
		if onMain[r.path] {
			continue
		}
		w.res.Checks["cleanup removes only ended requests"]++
		if r.ok(true) && w.seen.Before(r.end) {
			return w.violate("cleanup removes only ended requests", "the cleanup removed %s", r)
		}
		w.truth.remove(r.path)
	}
	return nil
}

var markerRE = regexp.MustCompile(`gitgrant:emergency path=(\S+) commit=(\S+)`)

// checkFollowUps: one follow-up issue per emergency, never two.
func (w *world) checkFollowUps() error {
	seen := map[string]int{}
	for _, is := range w.hub.gh.Issues(w.hub.api) {
		m := markerRE.FindStringSubmatch(is.Body)
		if m == nil {
			continue
		}
		w.res.Checks["no duplicate follow-up issue"]++
		key := m[1] + "@" + m[2]
		if n, ok := seen[key]; ok {
			return w.violate("no duplicate follow-up issue", "issues #%d and #%d both follow up %s", n, is.Number, key)
		}
		seen[key] = is.Number
	}
	return nil
}

// checkSafety: after a pass, every member of a managed role on a
// reachable provider is standing or holds a verified active window the
// reconciler could see; the brake may hold only drift.
func (w *world) checkSafety(at time.Time, ms map[string][]string, held map[string]bool) error {
	for _, key := range slices.Sorted(maps.Keys(ms)) {
		provider, _, _ := strings.Cut(key, "/")
		if !w.reachable(provider) {
			continue
		}
		for _, m := range ms[key] {
			w.res.Checks["safety"]++
			switch {
			case w.truth.coveringSeen(key, m, at, w.seen, false) != nil, w.truth.standing(key, m):
				continue
			case held[key+"/"+m] && w.truth.drift[key+"/"+m] && !w.granted[key+"/"+m]:
				continue // the brake holds drift back, and only drift
			}
			return w.violate("safety", "%s holds %s after the pass; no verified active window covers it; %s", m, key, w.why(key, m, at))
		}
	}
	return nil
}

// checkLiveness: with GitHub, the remote and the provider answering, a
// verified active window is granted within the pass.
func (w *world) checkLiveness(at time.Time, ms map[string][]string) error {
	for _, r := range w.truth.records {
		if !r.active(at, true) || !w.truth.visible(r) || !w.reachable(r.provider) || r.role == ephemeralRole {
			continue
		}
		w.res.Checks["liveness"]++
		if !slices.Contains(ms[r.key()], r.requester) {
			return w.violate("liveness", "%s does not hold %s after the pass: %s is active", r.requester, r.key(), r)
		}
	}
	return nil
}

// why explains a member: the records that name it.
func (w *world) why(key, principal string, at time.Time) string {
	var out []string
	for _, r := range w.truth.records {
		if r.key() == key && r.requester == principal {
			out = append(out, r.String())
		}
	}
	if w.truth.drift[key+"/"+principal] {
		out = append(out, "added out of band")
	}
	if w.granted[key+"/"+principal] {
		out = append(out, "granted by gitgrant")
	}
	if len(out) == 0 {
		return "nothing names it"
	}
	return strings.Join(out, "; ")
}

// checkAudit: `audit --at T` agrees with what happened, for sampled T
// after passes: it lists every verified window gitgrant had granted and
// the provider held at T, and lists nothing that was neither held nor
// legitimate.
func (w *world) checkAudit() error {
	h := w.truth.history
	if w.faults.remoteDown || len(h) < 2 {
		return nil
	}
	repo, err := gitrepo.Open(context.Background(), gitrepo.Options{Source: w.hub.url(), CacheDir: w.cache + "-audit", Token: token})
	if err != nil {
		w.t.Fatal(err)
	}
	trail, err := audit.Build(context.Background(), repo, audit.Options{Now: w.now()})
	if err != nil {
		return w.violate("audit --at agrees", "building the trail: %v", err)
	}
	// After the clock stepped back, the trail (ordered by the clock) and
	// the passes (ordered as they ran) disagree about what came first:
	// only times no pass came back to are sampled.
	// ok[i]: no pass before i ran later than it, and none after i+1 ran
	// before i+1.
	ok := make([]bool, len(h))
	var latest time.Time
	for i := range h {
		ok[i] = !h[i].at.Before(latest)
		latest = maxTime(latest, h[i].at)
	}
	earliest := h[len(h)-1].at
	for i := len(h) - 2; i >= 0; i-- {
		ok[i] = ok[i] && !earliest.Before(h[i+1].at)
		if h[i+1].at.Before(earliest) {
			earliest = h[i+1].at
		}
	}
	for range 4 {
		i := w.rng.IntN(len(h) - 1)
		at := h[i].at.Add(time.Second)
		if !at.Before(h[i+1].at) || !ok[i] {
			continue
		}
		w.res.Checks["audit --at agrees"]++
		listed := map[string]bool{}
		for _, hd := range trail.At(at, audit.Filter{}) {
			who := hd.Principal
			if who == "" {
				who = hd.Beneficiary
			}
			who = w.person(hd.Provider, who)
			if hd.Role == ephemeralRole {
				who = hd.Beneficiary // an account, for its requester
			}
			k := hd.Provider + "/" + hd.Role + "/" + who
			listed[k] = true
			key := hd.Provider + "/" + hd.Role
			// Before gitgrant's first ledger line the trail can only infer
			// windows from request files (docs/audit.md): not checked.
			preLedger := w.firstGrant.IsZero() || hd.From.Before(w.firstGrant)
			// A revocation whose record was lost (the pass was killed, or the
			// remote was away) leaves the ledger holding open until a later
			// record ends it: the trail then errs on the side of access
			// held, by design.
			lost := hd.Source == audit.FromLedger && w.unrecorded[k]
			if !preLedger && !lost && !slices.Contains(h[i].members[key], who) && !w.legitAt(key, who, at, false) {
				return w.violate("audit --at agrees", "audit --at %s lists %s holding %s (%s, from %s, until %s, source %s, ended %q), which it neither held nor had a verified window for",
					at.Format(time.RFC3339), who, key, hd.Request, hd.From.Format(time.RFC3339), hd.Until.Format(time.RFC3339), hd.Source, hd.Ended)
			}
		}
		for _, key := range slices.Sorted(maps.Keys(h[i].members)) {
			for _, m := range h[i].members[key] {
				if h[i].granted[key+"/"+m] && w.legitAt(key, m, at, true) && !listed[key+"/"+m] {
					return w.violate("audit --at agrees", "audit --at %s leaves out %s holding %s, granted by gitgrant for a verified window", at.Format(time.RFC3339), m, key)
				}
			}
		}
	}
	return nil
}

func (w *world) legitAt(key, principal string, at time.Time, strict bool) bool {
	for _, r := range w.truth.records {
		if r.key() == key && r.requester == principal && r.active(at, strict) {
			return true
		}
	}
	return false
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

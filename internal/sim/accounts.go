package sim

import (
	"maps"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"
)

// checkAccounts: after a pass that reached PostgreSQL, every account with
// the ephemeral role's prefix is one gitgrant made for a request whose
// window is active and whose file it could see on main; nothing made by
// hand survives (docs/ephemeral.md, drift). With GitHub answering too,
// every legitimate active window of the role has its account.
func (w *world) checkAccounts(at time.Time) error {
	s := w.pg
	if s == nil || !w.reachable("db") {
		return nil
	}
	live := s.liveAccounts()
	s.mu.Lock()
	accounts := make(map[string]time.Time, len(s.accounts))
	for k, v := range s.accounts {
		accounts[k] = v
	}
	s.mu.Unlock()
	key := "db/" + ephemeralRole
	for _, name := range live {
		w.res.Checks["no ephemeral account outlives its window"]++
		until, ok := accounts[name]
		if !ok {
			return w.violate("no ephemeral account outlives its window", "%s, which gitgrant did not make, is still there after the pass", name)
		}
		if w.accountFor(key, until, at, false) == nil {
			return w.violate("no ephemeral account outlives its window", "%s (until %s) is still there after the pass; no active window it could see on main is for it: %s",
				name, until.Format(time.RFC3339), w.whyRole(key))
		}
	}
	if !w.gitHubAnswers() {
		return nil
	}
	// One account per person and role: the window that ends last.
	best := map[string]*record{}
	unsure := map[string]bool{}
	for _, r := range w.truth.records {
		if r.key() != key || !r.active(at, false) || !w.truth.visible(r) {
			continue
		}
		if !r.ok(true) {
			unsure[r.requester] = true
		}
		if b := best[r.requester]; b == nil || r.end.After(b.end) {
			best[r.requester] = r
		}
	}
	for _, who := range slices.Sorted(maps.Keys(best)) {
		r := best[who]
		if unsure[who] {
			continue
		}
		w.res.Checks["liveness"]++
		found := false
		for _, name := range live {
			if accounts[name].Equal(r.end) {
				found = true
			}
		}
		if !found {
			return w.violate("liveness", "no account for %s after the pass (accounts %v)", r, live)
		}
	}
	return nil
}

// accountFor is a visible record of role key, active at at, whose window
// ends at until.
func (w *world) accountFor(key string, until, at time.Time, strict bool) *record {
	for _, r := range w.truth.records {
		if r.key() == key && r.ok(strict) && !w.seen.Before(r.start) && at.Before(r.end) && r.end.Equal(until) && w.truth.visible(r) {
			return r
		}
	}
	return nil
}

// whyRole lists the records of a role.
func (w *world) whyRole(key string) string {
	var out []string
	for _, r := range w.truth.records {
		if r.key() == key {
			out = append(out, r.String())
		}
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, "; ")
}

// checkSecretsOnGitHub: no ephemeral account's password is on GitHub in
// clear (the hand-off is sealed to the requester's keys).
func (w *world) checkSecretsOnGitHub() error {
	secrets := w.secrets()
	if len(secrets) == 0 {
		return nil
	}
	var texts []string
	for _, c := range w.hub.gh.Comments(w.hub.api) {
		texts = append(texts, c.Body)
	}
	for _, is := range w.hub.gh.Issues(w.hub.api) {
		texts = append(texts, is.Title+"\n"+is.Body)
	}
	w.res.Checks["no secret in git or on GitHub"]++
	for _, t := range texts {
		if i := slices.IndexFunc(secrets, func(s string) bool { return strings.Contains(t, s) }); i >= 0 {
			return w.violate("no secret in git or on GitHub", "an account's password is on GitHub in clear:\n%s", t)
		}
	}
	return nil
}

// checkSecretsInGit: no object of the remote (commits, request files, the
// ledger's notes, unreachable ones too) holds an account's password.
func (w *world) checkSecretsInGit() error {
	secrets := w.secrets()
	if len(secrets) == 0 {
		return nil
	}
	dir := w.hub.dir
	if _, err := os.Stat(dir); err != nil {
		dir += ".away"
	}
	cmd := exec.Command("git", "cat-file", "--batch-all-objects", "--batch")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		w.t.Fatalf("reading the remote's objects: %v", err)
	}
	w.res.Checks["no secret in git or on GitHub"]++
	for _, s := range secrets {
		if strings.Contains(string(out), s) {
			return w.violate("no secret in git or on GitHub", "an account's password is in a git object of the remote")
		}
	}
	return nil
}

func (w *world) secrets() []string {
	if w.pg == nil {
		return nil
	}
	w.pg.mu.Lock()
	defer w.pg.mu.Unlock()
	return slices.Clone(w.pg.secrets)
}

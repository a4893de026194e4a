package sim

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/gitgrant/gitgrant/internal/ghfake"
)

// openPR is a pull request waiting to be merged, with what the
// simulation decided about it.
type openPR struct {
	pr        *pull
	rec       *record
	duration  time.Duration
	approver  string // "" for none
	pushAfter bool   // approved, then pushed to
	base      policy // the verified policy at its base
	opened    time.Time
}

// act lets one person (or the world) do one thing.
func (w *world) act(open *[]*openPR) {
	if w.faults.remoteDown {
		// Nobody can push or merge: only drift happens.
		if w.rng.IntN(4) == 0 {
			w.drift()
		}
		return
	}
	if w.truth.main.cleanupPR && w.rng.IntN(3) == 0 {
		w.mergeCleanup()
	}
	switch n := w.rng.IntN(100); {
	case n < 30:
		w.openRequest(open)
	case n < 50 && len(*open) > 0:
		i := w.rng.IntN(len(*open))
		pr := (*open)[i]
		*open = slices.Delete(*open, i, i+1)
		w.merge(pr)
	case n < 56:
		w.directPush()
	case n < 64:
		w.emergency()
	case n < 70:
		w.deleteRequest()
	case n < 76:
		w.extend()
	case n < 84:
		w.policyChange()
	case n < 92:
		w.drift()
	case n < 95:
		w.teamChange()
	case n < 97 && len(w.merged) > 0:
		w.editTitle()
	default:
		w.openRequest(open)
	}
}

func (w *world) pick(xs []string) string { return xs[w.rng.IntN(len(xs))] }

// requestTarget picks a provider and role to request: on PostgreSQL now
// and then the ephemeral role.
func (w *world) requestTarget() (string, string) {
	if w.pg != nil && w.rng.IntN(4) == 0 {
		return "db", ephemeralRole
	}
	return w.grantTarget()
}

// grantTarget picks a provider and a role its members hold.
func (w *world) grantTarget() (string, string) {
	switch w.rng.IntN(3) {
	case 0:
		return "db", "ro"
	case 1:
		return "db", "rw"
	default:
		return "wiki", "editor"
	}
}

// requestYAML is a request file; tag makes its content unique (a change
// that leaves the content as it was is no new request).
func requestYAML(who, provider, role string, d time.Duration, extra, tag string) string {
	return fmt.Sprintf("requester: %s\ngrants: [{provider: %s, role: %s}]\nduration: %s\nreason: Simulated work (%s)\n%s",
		who, provider, role, fmtDuration(d), tag, extra)
}

func fmtDuration(d time.Duration) string {
	if d%time.Hour == 0 {
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dm", int(d.Minutes()))
}

// duration draws a request's duration: now and then over the role's cap.
func (w *world) duration(key string) time.Duration {
	if w.rng.IntN(10) == 0 {
		return roleCaps[key] + time.Hour
	}
	return time.Duration(1+w.rng.IntN(int(roleCaps[key]/(30*time.Minute)))) * 30 * time.Minute
}

// openRequest opens a pull request for access, of a kind drawn at random.
func (w *world) openRequest(open *[]*openPR) {
	who := w.pick(requesters)
	provider, role := w.requestTarget()
	key := provider + "/" + role
	d := w.duration(key)
	n := w.nextPR
	w.nextPR++
	path := fmt.Sprintf("requests/%s/%s-%d.yaml", provider, who, n)
	extra := ""
	var starts time.Time
	if w.rng.IntN(8) == 0 {
		starts = w.now().Add(time.Duration(1+w.rng.IntN(4)) * time.Hour).Truncate(time.Minute)
		extra = "starts: " + starts.Format(time.RFC3339) + "\n"
	}
	content := requestYAML(who, provider, role, d, extra, fmt.Sprintf("#%d", n))
	o := &openPR{duration: d, base: w.truth.verified.clone(), opened: w.now()}
	kind := ""
	switch k := w.rng.IntN(10); {
	case k < 5:
		kind, o.approver = "approved", w.approverFor(who)
	case k < 6:
		kind = "unapproved"
	case k < 7:
		kind = "self-approved"
		who, o.approver = "owner1", "owner1"
		path = fmt.Sprintf("requests/%s/%s-%d.yaml", provider, who, n)
		content = requestYAML(who, provider, role, d, extra, fmt.Sprintf("#%d", n))
	case k < 8:
		kind, o.approver, o.pushAfter = "approved-then-pushed", w.approverFor(who), true
	case k < 9:
		kind, o.approver = "approved-by-non-owner", "mallory"
	default:
		kind, o.approver = "approved-by-new-owner", "owner3"
	}
	o.rec = &record{path: path, content: content, requester: who, provider: provider, role: role, kind: kind}
	o.rec.start = starts
	o.pr = w.hub.open(n, who, map[string]string{path: content}, w.now())
	w.logf("open #%d %s %s for %s", n, kind, path, fmtDuration(d))
	w.count("open " + kind)
	*open = append(*open, o)
}

func (w *world) approverFor(who string) string {
	var cands []string
	for _, o := range w.truth.verified.owners {
		if o == team {
			o = teamMember
		}
		if o != who {
			cands = append(cands, o)
		}
	}
	return w.pick(cands)
}

// merge lands an open pull request by merge, squash (sometimes with the
// title edited) or rebase, and decides whether it legitimately grants.
func (w *world) merge(o *openPR) {
	at := w.now()
	pr, rec := o.pr, o.rec
	if o.pushAfter {
		// The approval is on the first head; the requester pushes again.
		pr.review(o.approver, "APPROVED", at.Add(-2*time.Minute))
		rec.content = strings.Replace(rec.content, "reason: ", "reason: (edited) ", 1)
		pr.pushTo(at.Add(-time.Minute), rec.requester, map[string]string{rec.path: rec.content})
	} else if o.approver != "" {
		pr.review(o.approver, "APPROVED", at.Add(-time.Minute))
	}
	how := []string{byMerge, bySquash, bySquashTitle, byRebase}[w.rng.IntN(4)]
	pr.land(at, how)
	// Rule 4 against the verified policy at its base and where it landed.
	approved := o.approver != "" && !o.pushAfter && o.approver != rec.requester &&
		o.base.owns(o.approver) && w.truth.verified.owns(o.approver)
	if o.approver == teamMember && !slices.Contains(o.base.owners, teamMember) {
		// Approved through the team: as long as its member stays active.
		rec.team, rec.maybe = true, approved && o.duration <= roleCaps[rec.key()]
		approved = approved && w.truth.teamState == "active"
		w.count(fmt.Sprintf("merge approved through the team (member %q)", w.truth.teamState))
	}
	start := at
	if !rec.start.IsZero() && rec.start.After(at) {
		start = rec.start
	}
	rec.legit = approved && o.duration <= roleCaps[rec.key()]
	rec.start, rec.end = start, start.Add(o.duration)
	w.truth.put(rec)
	w.logf("merge #%d by %s, approved by %q: %s", pr.n, how, o.approver, rec)
	w.count("merge " + how)
	w.merged = append(w.merged, pr.n)
}

// directPush writes a request file straight to main: it grants nothing.
func (w *world) directPush() {
	who := w.pick(requesters)
	provider, role := w.requestTarget()
	d := w.duration(provider + "/" + role)
	id := w.nextPR
	w.nextPR++
	path := fmt.Sprintf("requests/%s/%s-push-%d.yaml", provider, who, id)
	content := requestYAML(who, provider, role, d, "", fmt.Sprintf("push %d", id))
	w.push(who, "Direct push", map[string]string{path: content})
	rec := &record{path: path, content: content, requester: who, provider: provider, role: role, kind: "direct push"}
	w.truth.put(rec)
	w.logf("direct push %s", rec)
	w.count("direct push")
}

// push commits files to main as who at now ("" deletes a file).
func (w *world) push(who, msg string, files map[string]string) string {
	return w.hub.push(w.now(), who, msg, files)
}

// emergency: a break-glass request pushed to main, by a member or not,
// with an honest or a future commit date.
func (w *world) emergency() {
	who := "alice"
	if w.rng.IntN(4) == 0 {
		who = "bob" // not a break-glass member
	}
	provider, role := w.requestTarget()
	d := time.Duration(1+w.rng.IntN(2)) * 30 * time.Minute
	date := w.now()
	future := w.rng.IntN(4) == 0
	if future {
		date = date.Add(2 * time.Hour)
	}
	id := w.nextPR
	w.nextPR++
	path := fmt.Sprintf("requests/%s/%s-emergency-%d.yaml", provider, who, id)
	content := requestYAML(who, provider, role, d, "emergency: true\n", fmt.Sprintf("emergency %d", id))
	w.hub.push(date, who, "Break glass", map[string]string{path: content})
	kind := "emergency"
	if future {
		kind += ", future date"
	}
	if role == ephemeralRole {
		kind += ", ephemeral role" // refused: break-glass cannot hand an account over
	}
	legit := who == "alice" && !future && role != ephemeralRole
	rec := &record{path: path, content: content, requester: who, provider: provider, role: role, kind: kind,
		legit: legit, start: w.now(), end: w.now().Add(min(d, breakGlassCap, roleCaps[provider+"/"+role]))}
	w.truth.put(rec)
	w.logf("%s %s", kind, rec)
	w.count(kind)
}

// deleteRequest removes a request file from main early: revocation
// needs no approval.
func (w *world) deleteRequest() {
	live := w.present()
	if len(live) == 0 {
		return
	}
	rec := live[w.rng.IntN(len(live))]
	w.push(rec.requester, "Done with access", map[string]string{rec.path: ""})
	w.truth.remove(rec.path)
	w.logf("delete %s", rec.path)
	w.count("delete")
}

// present are the records on main whose file the work tree has (the
// reconciler's cleanups may have removed expired ones).
func (w *world) present() []*record {
	w.syncTruth()
	return w.truth.live()
}

// extend changes an existing request's duration through an approved (or
// not) pull request: a new window from the merge.
func (w *world) extend() {
	live := w.present()
	if len(live) == 0 {
		return
	}
	old := live[w.rng.IntN(len(live))]
	if strings.Contains(old.path, "emergency") || strings.Contains(old.path, "-push-") {
		return
	}
	d := w.duration(old.key())
	n := w.nextPR
	w.nextPR++
	content := requestYAML(old.requester, old.provider, old.role, d, "", fmt.Sprintf("#%d", n))
	o := &openPR{duration: d, base: w.truth.verified.clone(), opened: w.now()}
	kind := "extension"
	if w.rng.IntN(3) == 0 {
		kind = "unapproved extension"
	} else {
		o.approver = w.approverFor(old.requester)
	}
	o.rec = &record{path: old.path, content: content, requester: old.requester, provider: old.provider, role: old.role, kind: kind}
	o.pr = w.hub.open(n, old.requester, map[string]string{old.path: content}, w.now())
	w.logf("open #%d %s of %s for %s", n, kind, old.path, fmtDuration(d))
	w.merge(o)
	w.count(kind)
}

// policyChange changes gitgrant.yaml or CODEOWNERS: verified through a
// pull request the security team approved, or not.
func (w *world) policyChange() {
	t := w.truth
	next := t.verified.clone()
	verified := w.rng.IntN(2) == 0
	what := ""
	if verified {
		switch w.rng.IntN(2) {
		case 0:
			what = "toggle standing svc"
			if i := slices.Index(next.standing, "svc"); i >= 0 {
				next.standing = slices.Delete(next.standing, i, i+1)
			} else {
				next.standing = append(next.standing, "svc")
			}
		default:
			what = "swap owner2/owner3"
			if i := slices.Index(next.owners, "owner3"); i >= 0 {
				next.owners = slices.Delete(next.owners, i, i+1)
				next.owners = append(next.owners, "owner2")
			} else if i := slices.Index(next.owners, "owner2"); i >= 0 {
				next.owners = slices.Delete(next.owners, i, i+1)
				next.owners = append(next.owners, "owner3")
			}
		}
	} else {
		next = t.main.clone()
		switch w.rng.IntN(4) {
		case 0:
			what = "standing mallory"
			next.standing = append(next.standing, "mallory")
		case 1:
			what = "approvals: 0"
			next.approvalsZero = true
		case 2:
			what = "typo"
			next.typo = true
		default:
			what = "mallory owns requests"
			next.owners = append(next.owners, "mallory")
		}
	}
	if next.config() == t.main.config() && next.codeowners() == t.main.codeowners() {
		return // nothing to change
	}
	files := map[string]string{"gitgrant.yaml": next.config(), ".github/CODEOWNERS": next.codeowners()}
	n := w.nextPR
	w.nextPR++
	how := ""
	switch {
	case verified:
		how = "pull request approved by security"
		if t.main.config() != t.verified.config() || t.main.codeowners() != t.verified.codeowners() {
			// A change is judged at its base, which must hold only verified
			// policy: the unverified change is reverted first (docs/trust.md).
			w.mergePolicy(n, map[string]string{"gitgrant.yaml": t.verified.config(), ".github/CODEOWNERS": t.verified.codeowners()}, "security")
			n = w.nextPR
			w.nextPR++
			how = "revert of the unverified policy, then " + how
		}
		w.mergePolicy(n, files, "security")
		for _, s := range t.verified.standing {
			if !slices.Contains(next.standing, s) {
				t.standingGrace[s] = true
			}
		}
		t.verified = next
	case w.rng.IntN(2) == 0:
		how = "pull request approved by owner1 only"
		w.mergePolicy(n, files, "owner1")
	default:
		how = "direct push"
		w.push("admin", "Policy change", files)
	}
	t.main = next
	w.logf("policy change %q (%s, verified %v)", what, how, verified)
	w.count("policy " + what)
}

// cleanupRef is gitgrant's cleanup branch, in cleanup.mode pull-request.
const cleanupRef = "refs/heads/gitgrant/cleanup"

// mergeCleanup merges gitgrant's open cleanup pull request, approved by
// a code owner, when it is up to date with main (as a protected main
// requires; gitgrant rebuilds it on main every pass).
func (w *world) mergeCleanup() {
	h := w.hub
	var pr *ghfake.Pull
	for _, p := range h.gh.Pulls(h.api) {
		if p.State == "open" && p.HeadRef == strings.TrimPrefix(cleanupRef, "refs/heads/") {
			pr = &p
		}
	}
	sha, files, err := h.bare.Branch(strings.TrimPrefix(cleanupRef, "refs/heads/"))
	if err != nil {
		w.t.Fatal(err)
	}
	if pr == nil || sha == "" {
		return
	}
	c, err := h.bare.CommitAt(sha)
	if err != nil {
		w.t.Fatal(err)
	}
	head, onMain := h.main()
	if len(c.Parents) == 0 || c.Parents[0] != head {
		w.logf("cleanup pull request #%d is out of date with main: not merged", pr.Number)
		w.count("cleanup pull request out of date")
		return
	}
	gone := map[string]string{}
	for p := range onMain {
		if _, ok := files[p]; !ok {
			gone[p] = ""
		}
	}
	h.gh.AddReview(h.api, pr.Number, ghfake.Review{User: "owner1", State: "APPROVED", CommitID: sha, SubmittedAt: w.now().Add(-time.Minute)})
	merge, _ := h.commit([]string{head, sha}, onMain, gone, "owner1", "web-flow", fmt.Sprintf("Merge pull request #%d from acme/gitgrant/cleanup", pr.Number), w.now())
	h.setMain(merge)
	pr.State, pr.MergedAt, pr.MergeCommitSHA, pr.HeadSHA, pr.Commits = "closed", w.now(), merge, sha, []string{sha}
	h.gh.AddPull(h.api, *pr)
	h.gh.Associate(h.api, merge, pr.Number)
	w.logf("merge cleanup pull request #%d, removing %v", pr.Number, slices.Sorted(maps.Keys(gone)))
	w.count("merge a cleanup pull request")
}

// editTitle edits the title of a merged pull request, as its author may:
// gitgrant takes nothing from a title, so nothing changes.
func (w *world) editTitle() {
	n := w.merged[w.rng.IntN(len(w.merged))]
	title := w.pick([]string{"[emergency] Request access", "Request access (approved by security)", "Revert \"Request access\""})
	w.hub.gh.EditPullTitle(w.hub.api, n, title)
	w.logf("edit the title of merged #%d: %q", n, title)
	w.count("edit a merged title")
}

// teamChange moves teamMember in or out of team on GitHub, or leaves an
// invitation pending: approvals through the team that gitgrant has yet
// to verify (or verifies again, in a fresh process) may then judge
// either way.
func (w *world) teamChange() {
	states := []string{"active", "pending", ""}
	next := states[w.rng.IntN(len(states))]
	if next == w.truth.teamState {
		return
	}
	w.truth.teamState = next
	w.hub.gh.SetTeamMembership("acme", "approvers", teamMember, next)
	for _, r := range w.truth.records {
		if r.team {
			r.unsure = true
		}
	}
	w.logf("team %s: %s is %q", team, teamMember, next)
	w.count(fmt.Sprintf("team membership %q", next))
}

// drift grants access out of band in a provider.
func (w *world) drift() {
	provider, role := w.grantTarget()
	who := []string{w.pick([]string{"mallory", "svc", "x1"})}
	if w.rng.IntN(6) == 0 {
		who = []string{"x1", "x2", "x3", "x4", "x5"} // enough to trip the brake
	}
	for _, pr := range who {
		w.truth.drift[provider+"/"+role+"/"+pr] = true
	}
	w.provs[provider].drift(role, who)
	w.logf("drift: %v on %s/%s", who, provider, role)
	w.count("drift")
	if w.pg != nil && w.rng.IntN(3) == 0 {
		// A login named like the ephemeral role's accounts, made by hand.
		name := w.pg.accountPrefix()
		for range 12 {
			name += string("abcdefghijklmnopqrstuvwxyz0123456789"[w.rng.IntN(36)])
		}
		w.pg.rogue(name)
		w.logf("drift: account %s made by hand", name)
		w.count("drift: an account made by hand")
	}
}

// mergePolicy brings a policy change in through pull request n by carol,
// approved by approver.
func (w *world) mergePolicy(n int, files map[string]string, approver string) {
	pr := w.hub.open(n, "carol", files, w.now().Add(-30*time.Minute))
	pr.review(approver, "APPROVED", w.now().Add(-time.Minute))
	pr.land(w.now(), byMerge)
}

package sim

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// people who request access; owner1 is also a code owner of requests.
var requesters = []string{"alice", "bob", "carol", "owner1"}

// providerRoles are the managed roles, by provider.
var providerRoles = map[string][]string{"db": {"ro", "rw"}, "wiki": {"editor"}}

// roleCaps are the roles' max_duration.
var roleCaps = map[string]time.Duration{"db/" + ephemeralRole: 4 * time.Hour, "db/ro": 4 * time.Hour, "db/rw": 8 * time.Hour, "wiki/editor": 8 * time.Hour}

const breakGlassCap = time.Hour

// policy is gitgrant.yaml and CODEOWNERS as the simulation writes them.
type policy struct {
	// owners are the code owners of requests/.
	owners []string
	// standing are the standing members of provider db.
	standing []string
	// approvalsZero and typo only ever reach main unverified.
	approvalsZero, typo bool
	// cleanupPR: cleanup.mode pull-request (gitgrant opens a pull request
	// from gitgrant/cleanup; people merge it), not push.
	cleanupPR bool
	// pg, when set, puts provider db on PostgreSQL: the prefix of the
	// run's roles there (pgSystem).
	pg string
}

func initialPolicy(pg string, cleanupPR bool) policy {
	return policy{owners: []string{"owner1", "owner2", team}, pg: pg, cleanupPR: cleanupPR}
}

// team is the team that owns requests/ with owner1 and owner2; its one
// member, teamMember, comes and goes.
const (
	team       = "acme/approvers"
	teamMember = "owner4"
)

// owns reports whether the policy names who a code owner of requests/,
// directly or (for the team's member) through the team.
func (p policy) owns(who string) bool {
	return slices.Contains(p.owners, who) || who == teamMember && slices.Contains(p.owners, team)
}

// dbPrincipal is who's principal in provider db.
func (p policy) dbPrincipal(who string) string {
	if p.pg == "" {
		return who
	}
	return p.pg + "_" + who
}

func (p policy) config() string {
	if p.typo {
		return "version: 1\nproviders: [this is not a map\n"
	}
	approvals := 1
	if p.approvalsZero {
		approvals = 0
	}
	var b strings.Builder
	b.WriteString("version: 1\npolicy:\n  max_duration: 8h\n  break_glass: {members: [alice], max_duration: 1h}\n")
	if p.cleanupPR {
		b.WriteString("cleanup: {mode: pull-request}\n")
	}
	b.WriteString("identities:\n")
	for _, who := range []string{"alice", "bob", "carol", "owner1", "owner2", "owner3", "mallory"} {
		fmt.Fprintf(&b, "  %s: {principals: {db: %s, wiki: %s}", who, p.dbPrincipal(who), who)
		if p.pg != "" {
			fmt.Fprintf(&b, ", ssh_keys: [%q]", sshKey)
		}
		b.WriteString("}\n")
	}
	if p.pg == "" {
		fmt.Fprintf(&b, "providers:\n  db:\n    type: exec\n    command: [unused]\n    call_timeout: 100ms\n    roles:\n")
		fmt.Fprintf(&b, "      ro: {max_duration: 4h, approvals: %d}\n      rw: {max_duration: 8h, approvals: %d}\n", approvals, approvals)
	} else {
		// A real server answers in milliseconds, but a shared test machine
		// may take longer: call_timeout leaves room for that.
		fmt.Fprintf(&b, "providers:\n  db:\n    type: postgres\n    dsn_env: %s\n    call_timeout: %s\n    roles:\n", pgDSNEnv, pgCallTimeout)
		fmt.Fprintf(&b, "      ro: {max_duration: 4h, approvals: %d, target: %s_ro}\n      rw: {max_duration: 8h, approvals: %d, target: %s_rw}\n", approvals, p.pg, approvals, p.pg)
		fmt.Fprintf(&b, "      %s: {max_duration: 4h, approvals: %d, target: %s_%s, mode: ephemeral, account_prefix: %s_eph_}\n", ephemeralRole, approvals, p.pg, ephemeralRole, p.pg)
	}
	if len(p.standing) > 0 {
		var ss []string
		for _, s := range p.standing {
			ss = append(ss, p.dbPrincipal(s))
		}
		fmt.Fprintf(&b, "    standing: [%s]\n", strings.Join(ss, ", "))
	}
	fmt.Fprintf(&b, "  wiki:\n    type: exec\n    command: [unused]\n    call_timeout: 100ms\n    roles:\n      editor: {max_duration: 8h, approvals: %d}\n", approvals)
	return b.String()
}

func (p policy) codeowners() string {
	return "/gitgrant.yaml @security\n/.github/ @security\n/requests/ @" + strings.Join(p.owners, " @") + "\n"
}

func (p policy) clone() policy {
	p.owners = slices.Clone(p.owners)
	p.standing = slices.Clone(p.standing)
	return p
}

// record is one version of a request file's content on main, as the
// simulation knows it: who it is for, and the window it legitimately
// grants (legit false: it grants nothing).
type record struct {
	path, content  string
	requester      string
	provider, role string
	kind           string
	legit          bool
	start, end     time.Time
	// added and removed order when the content reached main and when it
	// left (a deletion, an extension, a cleanup; 0 while on main) among
	// the reconciler's fetches: a sequence, since the clock may jump back.
	added, removed int
	// verified: a pass with GitHub and the remote answering saw it on
	// main. Until then gitgrant cannot know the content is legitimate,
	// and revoking what an earlier content of the file granted is
	// failing closed (docs/requesting.md: a changed file revokes early).
	verified bool
	// granted: gitgrant granted the access for this content in a pass
	// that recorded it (its ledger names this file and content). While
	// GitHub does not answer, an unverified request keeps only access its
	// ledger records for it.
	granted bool
	// team: a team member's approval decides it; maybe: it would be legit
	// were the approver an active member; unsure: the membership changed
	// since the approval, so that gitgrant may judge it either way (it
	// reads membership when it verifies).
	team, maybe, unsure bool
}

func (r *record) key() string { return r.provider + "/" + r.role }

// ok reports whether the content grants: strictly (legit, and whatever
// time gitgrant reads a team's membership at) or leniently (legit at some
// time it could read it).
func (r *record) ok(strict bool) bool {
	if strict {
		return r.legit && !r.unsure
	}
	return r.legit || r.unsure && r.maybe
}

func (r *record) active(at time.Time, strict bool) bool {
	return r.ok(strict) && !at.Before(r.start) && at.Before(r.end)
}

func (r *record) String() string {
	return fmt.Sprintf("%s (%s by %s, %s/%s, legit %v, window %s..%s)", r.path, r.kind, r.requester, r.provider, r.role, r.legit,
		r.start.Format("Jan 2 15:04"), r.end.Format("Jan 2 15:04"))
}

// truth is the simulation's own account of what is legitimate.
type truth struct {
	verified, main policy
	records        []*record
	// drift are members added out of band, "provider/role/principal".
	drift map[string]bool
	// standingGrace: principals whose standing entry a verified change
	// removed, until a pass with GitHub up verifies that change.
	standingGrace map[string]bool
	// seq numbers changes to main and fetches; fetched is the seq of the
	// last pass that could fetch main.
	seq, fetched int
	// teamState is teamMember's membership of team: "active", "pending"
	// (invited, not accepted) or "" (none).
	teamState string
	// history is who held what after each pass, for audit --at.
	history []holders
}

type holders struct {
	at      time.Time
	members map[string][]string
	granted map[string]bool
}

func newTruth() *truth {
	return &truth{drift: map[string]bool{}, standingGrace: map[string]bool{}}
}

// onMain is the current content at path, nil when none.
func (t *truth) onMain(path string) *record {
	for _, r := range t.records {
		if r.path == path && r.removed == 0 {
			return r
		}
	}
	return nil
}

// visible reports whether the reconciler's last fetch saw r on main.
func (t *truth) visible(r *record) bool {
	return t.fetched >= r.added && (r.removed == 0 || t.fetched < r.removed)
}

// covering is a visible record with a legitimate window over at that
// gives principal role key, nil when none; strictly legitimate (ok).
func (t *truth) covering(key, principal string, at time.Time) *record {
	return t.coveringSeen(key, principal, at, at, true)
}

// coveringSeen is covering, for a window that began by seen (the latest
// time the clock showed) and has not ended at at: after the clock steps
// back, access granted at the later time is kept, not revoked until the
// clock catches up.
func (t *truth) coveringSeen(key, principal string, at, seen time.Time, strict bool) *record {
	for _, r := range t.records {
		if r.key() == key && r.requester == principal && r.ok(strict) && !seen.Before(r.start) && at.Before(r.end) && t.visible(r) {
			return r
		}
	}
	return nil
}

// standing reports whether principal may hold key permanently.
func (t *truth) standing(key, principal string) bool {
	if !strings.HasPrefix(key, "db/") {
		return false
	}
	return slices.Contains(t.verified.standing, principal) || t.standingGrace[principal]
}

// put records content arriving at path at time at, replacing what was
// there.
func (t *truth) put(r *record) {
	t.remove(r.path)
	t.seq++
	r.added = t.seq
	t.records = append(t.records, r)
}

func (t *truth) remove(path string) {
	if old := t.onMain(path); old != nil {
		t.seq++
		old.removed = t.seq
	}
}

// fetch notes a pass that reads main as it is now.
func (t *truth) fetch() {
	t.seq++
	t.fetched = t.seq
}

// live are the paths on main.
func (t *truth) live() []*record {
	var out []*record
	for _, r := range t.records {
		if r.removed == 0 {
			out = append(out, r)
		}
	}
	return out
}

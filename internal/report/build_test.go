package report

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/google/go-cmp/cmp"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/gitrepo"
	"github.com/gitgrant/gitgrant/internal/testing/fakeclock"
	"github.com/gitgrant/gitgrant/internal/testing/gitserver"
)

var start = time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)

const config = `version: 1
providers:
  orders-db:
    type: postgres
    dsn_env: ORDERS_DSN
    roles:
      readonly: {approvals: 1}
      readwrite: {approvals: 1}
    standing:
      - principal: dba
        roles: [readwrite]
      - principal: oncall
`

func request(requester, role, duration string, emergency bool) string {
	return fmt.Sprintf("requester: %s\ngrants:\n  - provider: orders-db\n    role: %s\nduration: %s\nreason: Repair stuck orders after INC-1234\nemergency: %t\n", requester, role, duration, emergency)
}

// scenario lands one request of every kind the report counts and
// records what gitgrant would have recorded about them.
type scenario struct {
	repo    *gitrepo.Repo
	commits map[string]string
	times   map[string]time.Time
	end     time.Time
	legacy  time.Time // the first ledger line
}

func newScenario(t *testing.T) *scenario {
	t.Helper()
	srv, w := gitserver.NewAccess(t, "token", start, map[string]string{"gitgrant.yaml": config})
	s := &scenario{commits: map[string]string{}, times: map[string]time.Time{}}
	s.commits["root"] = w.Git("rev-parse", "HEAD")
	path := func(who string) string { return "requests/orders-db/" + who + ".yaml" }
	s.commits["alice"] = w.MergePR(1, "alice", path("alice"), request("alice", "readwrite", "1h", false))
	s.commits["bob"] = w.SquashPR(2, "bob", path("bob"), request("bob", "readonly", "2h", false))
	w.Write(path("carol"), request("carol", "readonly", "1h", false))
	s.commits["carol"] = w.Commit("Give myself access") // a direct push
	w.Write(path("broken"), "requester: [\n")
	s.commits["broken"] = w.Commit("Add a broken file (#5)")
	w.Write(path("erin"), request("erin", "readwrite", "30m", true))
	s.commits["erin"] = w.Commit("Break glass for INC-9") // an emergency, pushed directly
	w.Git("rm", "-q", path("bob"))
	s.commits["bob-gone"] = w.Commit("Remove bob's refused request")
	w.Git("push", "-q", "origin", "main")
	for k, c := range s.commits {
		s.times[k] = w.CommitTime(c)
	}
	blob := w.Git("rev-parse", s.commits["root"]+":gitgrant.yaml")
	s.end = s.times["bob-gone"].Add(24 * time.Hour)

	r, err := gitrepo.Open(context.Background(), gitrepo.Options{Source: srv.URL("access"), Token: "token", CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	s.repo = r
	key := func(who, role string) gitgrant.MemberKey {
		return gitgrant.MemberKey{Provider: "orders-db", Role: role, Principal: who}
	}
	holding := func(who, role string, end time.Time, emergency bool) gitgrant.Holding {
		return gitgrant.Holding{MemberKey: key(who, role), End: end, Request: path(who), Commit: s.commits[who],
			Blob: w.Git("rev-parse", s.commits[who]+":"+path(who)), Emergency: emergency}
	}
	ta, te := s.times["alice"], s.times["erin"]
	// The ledger began before these requests, with a grant of 6 minutes
	// to someone who needed readonly while gitgrant was installed.
	s.legacy = start.Add(-time.Hour)
	notes := []gitrepo.Note{
		{Commit: plumbing.NewHash(s.commits["root"]), Record: gitrepo.NoteRecord{Event: gitrepo.EventGranted, Request: path("legacy"), Requester: "legacy",
			GrantedAt: s.legacy, RecordedAt: s.legacy, Holdings: []gitgrant.Holding{{MemberKey: key("legacy", "readonly"), End: s.legacy.Add(time.Hour), Request: path("legacy")}}}},
		{Commit: plumbing.NewHash(s.commits["root"]), Record: gitrepo.NoteRecord{Event: gitrepo.EventRevoked, Request: path("legacy"),
			RevokedAt: s.legacy.Add(6 * time.Minute), RecordedAt: s.legacy.Add(6 * time.Minute), Ended: []gitgrant.MemberKey{key("legacy", "readonly")}}},
		{Commit: plumbing.NewHash(s.commits["root"]), Record: gitrepo.NoteRecord{Event: gitrepo.EventPolicyTrusted, RecordedAt: start,
			Policy: &gitrepo.PolicyTrust{Commit: s.commits["root"], State: map[string]string{gitgrant.ConfigPath: blob}, How: gitrepo.TrustBootstrap}}},
		// alice: approved 5 minutes before the merge, granted 2 minutes after, used, expired.
		{Commit: plumbing.NewHash(s.commits["alice"]), Record: gitrepo.NoteRecord{Event: gitrepo.EventGranted, Request: path("alice"), Requester: "alice",
			PullRequest: 1, ApprovedBy: []string{"dana"}, Approvals: []gitrepo.Approval{{Reviewer: "dana", SubmittedAt: ta.Add(-time.Minute)}},
			GrantedAt: ta.Add(2 * time.Minute), ExpiresAt: ta.Add(62 * time.Minute), RecordedAt: ta.Add(2 * time.Minute),
			Holdings: []gitgrant.Holding{holding("alice", "readwrite", ta.Add(62*time.Minute), false)}}},
		{Commit: plumbing.NewHash(s.commits["alice"]), Record: gitrepo.NoteRecord{Event: gitrepo.EventUsage, RecordedAt: ta.Add(10 * time.Minute),
			Usage: []gitrepo.UsageSighting{{MemberKey: key("alice", "readwrite"), GrantedAt: ta.Add(2 * time.Minute), Sessions: 2, FirstSession: ta.Add(4 * time.Minute)}}}},
		{Commit: plumbing.NewHash(s.commits["alice"]), Record: gitrepo.NoteRecord{Event: gitrepo.EventRevoked, Request: path("alice"),
			RevokedAt: ta.Add(62 * time.Minute), RecordedAt: ta.Add(62 * time.Minute), Ended: []gitgrant.MemberKey{key("alice", "readwrite")}}},
		// bob: merged, refused, told why.
		{Commit: plumbing.NewHash(s.commits["bob"]), Record: gitrepo.NoteRecord{Event: gitrepo.EventNotified, Request: path("bob"), Notice: "refused:0011223344556677",
			RecordedAt: s.times["bob"].Add(time.Minute)}},
		// erin: break glass, granted at once with a follow-up issue, looked at and not seen using it.
		{Commit: plumbing.NewHash(s.commits["erin"]), Record: gitrepo.NoteRecord{Event: gitrepo.EventGranted, Request: path("erin"), Requester: "erin", Emergency: true,
			Marker: "0123456789abcdef0123", GrantedAt: te.Add(time.Minute), ExpiresAt: te.Add(31 * time.Minute), RecordedAt: te.Add(time.Minute),
			Holdings: []gitgrant.Holding{holding("erin", "readwrite", te.Add(31*time.Minute), true)}}},
		{Commit: plumbing.NewHash(s.commits["erin"]), Record: gitrepo.NoteRecord{Event: gitrepo.EventUsage, RecordedAt: te.Add(5 * time.Minute),
			Usage: []gitrepo.UsageSighting{{MemberKey: key("erin", "readwrite"), GrantedAt: te.Add(time.Minute)}}}},
		// mallory held readwrite by hand; gitgrant removed it as drift.
		{Commit: plumbing.NewHash(s.commits["bob-gone"]), Record: gitrepo.NoteRecord{Event: gitrepo.EventDriftRemoved, RevokedAt: s.times["bob-gone"].Add(time.Hour),
			RecordedAt: s.times["bob-gone"].Add(time.Hour), Ended: []gitgrant.MemberKey{key("mallory", "readwrite")}}},
		{Commit: plumbing.NewHash(s.commits["erin"]), Record: gitrepo.NoteRecord{Event: gitrepo.EventRevoked, Request: path("erin"),
			RevokedAt: te.Add(31 * time.Minute), RecordedAt: te.Add(31 * time.Minute), Ended: []gitgrant.MemberKey{key("erin", "readwrite")}}},
	}
	if err := r.RecordNotes(context.Background(), notes, true, gitrepo.CommitOptions{Clock: fakeclock.New(s.end)}); err != nil {
		t.Fatal(err)
	}
	return s
}

func f(v float64) *float64 { return &v }

func TestBuild(t *testing.T) {
	t.Parallel()
	s := newScenario(t)
	rep, err := Build(context.Background(), s.repo, Options{Now: s.end})
	if err != nil {
		t.Fatal(err)
	}
	ta := s.times["alice"]
	if want := s.legacy; !rep.Since.Equal(want) {
		t.Errorf("since = %s, want the first event, %s", rep.Since, want)
	}
	if rep.Sources.Policy != "trusted" || !rep.Sources.LedgerSince.Equal(s.legacy) {
		t.Errorf("sources = %+v", rep.Sources)
	}

	// alice's numbers are the only recorded ones; erin's emergency has no approval.
	var rw Latency
	for _, l := range rep.TimeToAccess {
		if l.Provider == "orders-db" && l.Role == "readwrite" {
			rw = l
		}
	}
	want := Latency{Provider: "orders-db", Role: "readwrite", Granted: 2,
		WrittenToApproved: Stat{Count: 1, P50: f(ta.Add(-time.Minute).Sub(s.aliceWritten(t)).Seconds()), P90: f(ta.Add(-time.Minute).Sub(s.aliceWritten(t)).Seconds())},
		ApprovedToMerged:  Stat{Count: 1, P50: f(60), P90: f(60)},
		MergedToGranted:   Stat{Count: 2, P50: f(60), P90: f(120)},
		WrittenToGranted:  Stat{Count: 2, P50: f(ta.Add(2 * time.Minute).Sub(s.aliceWritten(t)).Seconds()), P90: f(ta.Add(2 * time.Minute).Sub(s.aliceWritten(t)).Seconds())},
	}
	if s.times["erin"].Add(time.Minute).Sub(s.erinWritten(t)) > ta.Add(2*time.Minute).Sub(s.aliceWritten(t)) {
		t.Fatal("the scenario assumes erin's emergency is granted faster than alice's request")
	}
	want.WrittenToGranted.P50 = f(s.times["erin"].Add(time.Minute).Sub(s.erinWritten(t)).Seconds())
	if diff := cmp.Diff(want, rw); diff != "" {
		t.Errorf("readwrite time to access (-want +got):\n%s", diff)
	}

	// Privilege: alice 1h and erin 30m just in time; dba and oncall
	// stand on readwrite, oncall alone on readonly, the whole period.
	period := rep.Until.Sub(rep.Since).Hours()
	got := map[string]Privilege{}
	for _, p := range rep.Privilege {
		got[p.Role] = p
	}
	if p := got["readwrite"]; p.JITHours != 1.5 || p.JITGrants != 2 || p.JITPeople != 2 || p.StandingHours != hours(time.Duration(2*period*float64(time.Hour))) ||
		len(p.Standing) != 1 || p.Standing[0].Members != 2 {
		t.Errorf("readwrite privilege = %+v", p)
	}
	if p := got["readonly"]; p.JITHours != 0.1 || p.JITGrants != 1 || len(p.Standing) != 1 || p.Standing[0].Members != 1 || p.StandingHours != hours(time.Duration(period*float64(time.Hour))) {
		t.Errorf("readonly privilege = %+v", p)
	}

	if diff := cmp.Diff([]Usage{{Provider: "orders-db", Role: "readonly", Grants: 1, Unknown: 1}, {Provider: "orders-db", Role: "readwrite", Grants: 2, Used: 1, NotSeen: 1, Rate: f(0.5)}}, rep.Usage); diff != "" {
		t.Errorf("usage (-want +got):\n%s", diff)
	}

	wantCounts := map[string]int{RefusedUnreviewed: 1, RefusedInvalid: 1, RefusedAfterMerge: 1, RefusedNotGranted: 0, RefusedCommitTime: 0, RefusedDriftRemove: 1}
	if diff := cmp.Diff(wantCounts, rep.Refusals.Counts); diff != "" {
		t.Errorf("refusal counts (-want +got):\n%s", diff)
	}
	var kinds []string
	for _, x := range rep.Refusals.Items {
		kinds = append(kinds, x.Kind+" "+x.Requester)
	}
	if diff := cmp.Diff([]string{"refused bob", "unreviewed carol", "invalid ", "drift mallory"}, kinds); diff != "" {
		t.Errorf("refusals (-want +got):\n%s", diff)
	}

	month := ta.Format("2006-01")
	if diff := cmp.Diff([]string{"orders-db/readonly " + month + " 1/1 refused", "orders-db/readwrite " + month + " 1/1 granted"}, approvalLines(rep.Approvals)); diff != "" {
		t.Errorf("approvals (-want +got):\n%s", diff)
	}

	if len(rep.Emergencies) != 1 || rep.Emergencies[0].Requester != "erin" || !rep.Emergencies[0].Granted || rep.Emergencies[0].FollowUp != FollowUpOpened {
		t.Errorf("emergencies = %+v", rep.Emergencies)
	}

	// The filters: readonly alone has no grants, and a period before
	// anything happened has nothing.
	ro, err := Build(context.Background(), s.repo, Options{Now: s.end, Filter: Filter{Role: "readonly"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(ro.Usage) != 1 || ro.Usage[0].Unknown != 1 || len(ro.Emergencies) != 0 || ro.Refusals.Counts[RefusedUnreviewed] != 1 || ro.Refusals.Counts[RefusedInvalid] != 0 || ro.Refusals.Counts[RefusedDriftRemove] != 0 {
		t.Errorf("readonly report: usage %+v emergencies %+v refusals %+v", ro.Usage, ro.Emergencies, ro.Refusals.Counts)
	}
	early, err := Build(context.Background(), s.repo, Options{Now: s.end, Filter: Filter{Since: start.Add(-48 * time.Hour), Until: start}})
	if err != nil {
		t.Fatal(err)
	}
	if len(early.TimeToAccess) != 0 || len(early.Approvals) != 0 || len(early.Refusals.Items) != 0 || early.Privilege[1].JITHours != 0 {
		t.Errorf("a period before any request: %+v", early)
	}
}

func approvalLines(as []ApprovalStat) []string {
	var out []string
	for _, a := range as {
		verdict := "granted"
		if a.Refused > 0 {
			verdict = "refused"
		}
		out = append(out, fmt.Sprintf("%s/%s %s %d/%d %s", a.Provider, a.Role, a.Month, a.Granted+a.Refused, a.Merged, verdict))
	}
	return out
}

// aliceWritten is her branch commit's author time: the merge's second parent.
func (s *scenario) aliceWritten(t *testing.T) time.Time {
	t.Helper()
	c, err := s.repo.CommitAt(gitrepo.ParseHash(s.commits["alice"]))
	if err != nil {
		t.Fatal(err)
	}
	head, err := s.repo.CommitAt(c.Parents[1])
	if err != nil {
		t.Fatal(err)
	}
	return head.AuthorTime.UTC()
}

func (s *scenario) erinWritten(t *testing.T) time.Time { return s.times["erin"] }

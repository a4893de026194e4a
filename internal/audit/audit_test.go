package audit

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gitgrant/gitgrant/internal/testing/fakeclock"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/google/go-cmp/cmp"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/gitrepo"
	"github.com/gitgrant/gitgrant/internal/testing/gitserver"
)

var start = time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)

func request(requester, role, duration string) string {
	return fmt.Sprintf("requester: %s\ngrants:\n  - provider: orders-db\n    role: %s\nduration: %s\nreason: Repair stuck orders after INC-1234\n", requester, role, duration)
}

type scenario struct {
	server *gitserver.Server
	work   *gitserver.Work
	repo   *gitrepo.Repo
	commit map[string]string // name -> hash
}

// openAccess opens the server's access repository as gitgrant does, a
// cached clone, closed when the test ends.
func openAccess(t *testing.T, srv *gitserver.Server) *gitrepo.Repo {
	t.Helper()
	r, err := gitrepo.Open(context.Background(), gitrepo.Options{Source: srv.URL("access"), Token: "token", CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// buildTrail builds the trail of r with o.
func buildTrail(t *testing.T, r *gitrepo.Repo, o Options) *Trail {
	t.Helper()
	trail, err := Build(context.Background(), r, o)
	if err != nil {
		t.Fatal(err)
	}
	return trail
}

// newScenario lands requests through every kind of merge, extends one,
// reverts one, renames one, and lets gitgrant clean one up.
func newScenario(t *testing.T) *scenario {
	t.Helper()
	s := &scenario{commit: map[string]string{}}
	s.server, s.work = gitserver.NewAccess(t, "token", start, map[string]string{"gitgrant.yaml": "version: 1\n"})
	w := s.work

	s.commit["alice"] = w.MergePR(1, "alice", "requests/orders-db/alice.yaml", request("alice", "readwrite", "1h"))
	s.commit["bob"] = w.SquashPR(2, "bob", "requests/orders-db/bob.yaml", request("bob", "readonly", "2h"))
	s.commit["carol"] = w.RebasePR("carol", "requests/orders-db/carol.yaml", request("carol", "readonly", "30m"), request("carol", "readonly", "45m"))
	s.commit["carol-1"] = w.Git("rev-parse", "HEAD~1")
	s.commit["extend"] = w.SquashPR(3, "alice", "requests/orders-db/alice.yaml", request("alice", "readwrite", "3h"))
	w.Git("revert", "--no-edit", s.commit["bob"])
	s.commit["revert"] = w.Git("rev-parse", "HEAD")
	s.commit["dave"] = w.SquashPR(4, "dave", "requests/orders-db/dave.yaml", request("dave", "readonly", "2d"))
	w.Git("mv", "requests/orders-db/dave.yaml", "requests/orders-db/dave-readonly.yaml")
	s.commit["rename"] = w.Commit("Rename dave's request")
	w.Write("requests/orders-db/broken.yaml", "requester: [\n")
	s.commit["broken"] = w.Commit("Add a broken file (#5)")
	w.Push()

	r := openAccess(t, s.server)
	s.repo = r
	// gitgrant granted carol's rebase-merged request and recorded it.
	carolAt := w.CommitTime(s.commit["carol"])
	note := gitrepo.Note{Commit: plumbing.NewHash(s.commit["carol"]), Record: gitrepo.NoteRecord{Event: "granted", Request: "requests/orders-db/carol.yaml",
		Requester: "carol", Grants: []gitgrant.GrantRef{{Provider: "orders-db", Role: "readonly"}}, PullRequest: 9, ApprovedBy: []string{"dana"},
		GrantedAt: carolAt, ExpiresAt: carolAt.Add(45 * time.Minute)}}
	// Alice's access ran out; gitgrant cleans her request up.
	aliceAt := w.CommitTime(s.commit["alice"])
	rm := gitrepo.Removal{Path: "requests/orders-db/alice.yaml", Requester: "alice", Grants: []gitgrant.GrantRef{{Provider: "orders-db", Role: "readwrite"}},
		ApprovedBy: []string{"erin"}, PullRequest: 1, GrantedAt: aliceAt, ExpiredAt: aliceAt.Add(3 * time.Hour), RevokedAt: aliceAt.Add(3*time.Hour + time.Minute)}
	res, err := r.Cleanup(context.Background(), func(*gitrepo.Snapshot) ([]gitrepo.Removal, error) { return []gitrepo.Removal{rm}, nil },
		gitrepo.CommitOptions{Clock: fakeclock.New(aliceAt.Add(3*time.Hour + 2*time.Minute)), Notes: []gitrepo.Note{note}})
	if err != nil {
		t.Fatal(err)
	}
	s.commit["cleanup"] = res.Commit.String()
	w.Git("pull", "-q", "--rebase=merges", "origin", "main")
	return s
}

func TestTrail(t *testing.T) {
	t.Parallel()
	s := newScenario(t)
	now := start.Add(6 * time.Hour)
	trail := buildTrail(t, s.repo, Options{Now: now})
	names := map[string]string{}
	for k, v := range s.commit {
		names[v] = k
	}
	var got []string
	for _, e := range trail.Events {
		got = append(got, fmt.Sprintf("%s %s %s pr=%d by=%s src=%s", e.Event, strings.TrimPrefix(e.Request, "requests/orders-db/"), names[e.Commit], e.PullRequest, e.Actor, e.Source))
	}
	want := []string{
		"requested alice.yaml alice pr=1 by=alice src=commit",
		"approved alice.yaml alice pr=1 by=erin src=commit", // approvers from the cleanup trailers
		"granted alice.yaml alice pr=1 by= src=trailer",
		"requested bob.yaml bob pr=2 by=bob src=commit",
		"approved bob.yaml bob pr=2 by= src=commit",
		"granted bob.yaml bob pr=2 by= src=inferred",
		"requested carol.yaml carol-1 pr=0 by=carol src=commit",
		"approved carol.yaml carol pr=9 by=dana src=note",
		"granted carol.yaml carol pr=0 by= src=note",
		"changed carol.yaml carol pr=0 by=carol src=commit",
		"extended alice.yaml extend pr=3 by=alice src=inferred",
		"revoked bob.yaml revert pr=2 by=Test Author src=commit",
		"requested dave.yaml dave pr=4 by=dave src=commit",
		"approved dave.yaml dave pr=4 by= src=commit",
		"granted dave.yaml dave pr=4 by= src=inferred",
		"renamed dave-readonly.yaml rename pr=4 by= src=commit",
		"requested broken.yaml broken pr=5 by=Test Author src=commit",
		"invalid broken.yaml broken pr=5 by= src=commit",
		"expired carol.yaml carol pr=0 by= src=inferred",
		"expired alice.yaml cleanup pr=1 by=gitgrant src=trailer",
		"cleaned-up alice.yaml cleanup pr=1 by=gitgrant src=trailer",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("trail (-want +got):\n%s", diff)
	}
	checkAgainstGitLog(t, s.work.Dir, trail)

	// Who held what, at three moments.
	aliceAt := s.work.CommitTime(s.commit["alice"])
	revertAt := s.work.CommitTime(s.commit["revert"])
	for _, tt := range []struct {
		at   time.Time
		want []string
	}{
		{aliceAt.Add(-time.Second), nil},
		{revertAt.Add(-time.Second), []string{"alice orders-db/readwrite", "bob orders-db/readonly", "carol orders-db/readonly"}},
		{revertAt, []string{"alice orders-db/readwrite", "carol orders-db/readonly"}},
		{aliceAt.Add(2 * time.Hour), []string{"alice orders-db/readwrite", "dave orders-db/readonly"}},
		{aliceAt.Add(3 * time.Hour), []string{"dave orders-db/readonly"}},
	} {
		var held []string
		for _, h := range trail.At(tt.at, Filter{}) {
			held = append(held, h.Beneficiary+" "+h.Provider+"/"+h.Role)
		}
		if diff := cmp.Diff(tt.want, held); diff != "" {
			t.Errorf("At(%s) (-want +got):\n%s", tt.at.Format(time.RFC3339), diff)
		}
	}
	if got := trail.Filter(Filter{Who: "ALICE", Since: aliceAt.Add(time.Hour)}); len(got) != 2 || got[0].Event != Expired {
		t.Errorf("Filter(alice, since +1h) = %+v, want her expiry and cleanup", got)
	}
	if got := trail.Filter(Filter{Role: "readwrite"}); len(got) != 6 {
		t.Errorf("Filter(readwrite) = %d events, want alice's 6", len(got))
	}
}

// checkAgainstGitLog checks that every change git log shows under
// requests/ on the first-parent history is an event of the trail at that
// commit, and that every event at a commit is one git log shows.
func checkAgainstGitLog(t *testing.T, dir string, trail *Trail) {
	t.Helper()
	out := gitserver.Run(t, dir, "log", "--first-parent", "--no-renames", "--name-status", "--format=commit %H", "main", "--", "requests/")
	wantKinds := map[string][]Kind{
		"A": {Requested, Approved, Unreviewed, Invalid, Renamed},
		"M": {Extended, Shortened, Invalid, Approved, Granted}, // a note may grant a later version
		"D": {Revoked, CleanedUp, Removed, Renamed},
	}
	seen := map[string]bool{}
	commit := ""
	for _, l := range strings.Split(out, "\n") {
		if c, ok := strings.CutPrefix(l, "commit "); ok {
			commit = c
			continue
		}
		status, path, ok := strings.Cut(l, "\t")
		if !ok {
			continue
		}
		found := false
		for _, e := range trail.Events {
			if e.Commit != commit {
				continue
			}
			for _, k := range wantKinds[status] {
				if e.Event == k && (e.Request == path || (k == Renamed && strings.HasPrefix(e.Detail, path+" "))) {
					found = true
				}
			}
		}
		if !found {
			t.Errorf("git log shows %s %s at %.12s; the trail has no matching event", status, path, commit)
		}
		seen[commit] = true
	}
	for _, e := range trail.Events {
		if e.Source == FromCommit || e.Source == FromTrailer {
			if !seen[e.Commit] && e.Event != Requested && e.Event != Approved && e.Event != Unreviewed && e.Event != Invalid {
				t.Errorf("event %s %s at %.12s: git log shows no change of requests/ there", e.Event, e.Request, e.Commit)
			}
		}
	}
}

// TestIndexIsIncremental checks that a trail built from the index plus new
// commits equals one built from scratch, also after a force-push rewrote
// the indexed commit away.
func TestIndexIsIncremental(t *testing.T) {
	t.Parallel()
	s := newScenario(t)
	index := t.TempDir()
	now := start.Add(6 * time.Hour)
	build := func(indexDir string) *Trail {
		t.Helper()
		if err := s.repo.Fetch(context.Background()); err != nil {
			t.Fatal(err)
		}
		trail := buildTrail(t, s.repo, Options{Now: now, IndexDir: indexDir})
		return trail
	}
	build(index)
	w := s.work
	tests := []struct {
		name   string
		change func()
	}{
		{"new commits", func() {
			w.SquashPR(20, "erin", "requests/orders-db/erin.yaml", request("erin", "readonly", "1h"))
			w.Git("rm", "-q", "requests/orders-db/dave-readonly.yaml")
			w.Commit("Done with dave's access")
			w.Push()
		}},
		{"force-push", func() {
			w.Git("reset", "-q", "--hard", "HEAD~2")
			w.SquashPR(21, "fred", "requests/orders-db/fred.yaml", request("fred", "readonly", "1h"))
			w.Git("push", "-q", "--force", "origin", "main")
		}},
		{"nothing new", func() {}},
	}
	for _, tt := range tests {
		tt.change()
		incremental, fresh := build(index), build("")
		if diff := cmp.Diff(fresh, incremental); diff != "" {
			t.Errorf("%s: indexed trail differs from a fresh one (-fresh +indexed):\n%s", tt.name, diff)
		}
		if head := w.Git("rev-parse", "HEAD"); incremental.Head != head {
			t.Errorf("%s: head = %s, want %s", tt.name, incremental.Head, head)
		}
	}
}

// TestEmergencyAndUnreviewed: a direct push grants nothing, unless it is an
// emergency request, which the trail shows as granted at once.
func TestEmergencyAndUnreviewed(t *testing.T) {
	t.Parallel()
	srv, w := gitserver.NewAccess(t, "token", start, map[string]string{"gitgrant.yaml": "version: 1\n"})
	w.Write("requests/orders-db/eve.yaml", request("eve", "readwrite", "1h")+"emergency: true\n")
	w.Commit("Break glass: INC-9")
	w.Write("requests/orders-db/mallory.yaml", request("mallory", "readwrite", "1h"))
	w.Commit("Sneak in")
	w.Git("push", "-q", "origin", "main")
	r := openAccess(t, srv)
	trail := buildTrail(t, r, Options{Now: start.Add(30 * time.Minute)})
	var got []string
	for _, e := range trail.Events {
		got = append(got, string(e.Event)+" "+e.Requester)
	}
	want := []string{"requested eve", "unreviewed eve", "granted eve", "requested mallory", "unreviewed mallory"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if held := trail.At(start.Add(10*time.Minute), Filter{}); len(held) != 1 || held[0].Beneficiary != "eve" {
		t.Errorf("held = %+v, want eve's emergency access only", held)
	}
}

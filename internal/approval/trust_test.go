package approval_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/approval"
	"github.com/gitgrant/gitgrant/internal/ghapi"
	"github.com/gitgrant/gitgrant/internal/ghfake"
	"github.com/gitgrant/gitgrant/internal/testing/fakeclock"
)

// A request is judged by the policy the PolicySource says is in force at
// its base, not by raw files an unverified push left there; reasons say
// which commit's policy judged.
func TestPolicySourceJudges(t *testing.T) {
	t.Parallel()
	rw := request("alice", "readwrite")
	tests := []struct {
		name  string
		build func(w *world) approval.Input
		want  verdict
	}{
		{
			name:  "an unverified CODEOWNERS push makes nobody an owner",
			build: afterPush("mallory", map[string]string{".github/CODEOWNERS": "/requests/ @mallory\n"}, approvedMerge("alice", rw, "mallory")),
			want:  rejected(noApprovalRW, "@mallory is not a code owner of requests/orders-db/alice.yaml at the base commit's verified policy (from <sha>) (review 1)"),
		},
		{
			name:  "the verified owners still approve after an unverified push removed them",
			build: afterPush("mallory", map[string]string{".github/CODEOWNERS": "/requests/ @mallory\n"}, approvedMerge("alice", rw, "bob")),
			want:  approved("bob via @bob"),
		},
		{
			name: "an unverified gitgrant.yaml push does not lower approvals",
			build: func(w *world) approval.Input {
				lowered := strings.Replace(readTestdata(w.t, "gitgrant.yaml"), "approvals: 2", "approvals: 1", 1)
				w.pushMain("mallory", map[string]string{"gitgrant.yaml": lowered})
				return w.approvedMerge("alice", request("alice", "admin"), "carol")
			},
			want: rejected(
				"grants.0: orders-db/admin needs 2 code-owner approval(s) on the final head commit, has 1 (@carol); approvers: @acme/dba, carol",
			).counting("carol via @carol"),
		},
		{
			name: "an unverified break-glass member is none",
			build: func(w *world) approval.Input {
				w.pushMain("mallory", map[string]string{"gitgrant.yaml": strings.Replace(readTestdata(w.t, "gitgrant.yaml"), "members: [erin,", "members: [mallory, erin,", 1)})
				return w.input(path, w.pushMain("mallory", file(request("mallory", "readwrite", "emergency: true\n"))))
			},
			want: rejected(
				"commit <sha> reached main without a merged pull request (a direct push or a bypass): it grants nothing",
				"emergency: @mallory is not a break-glass member in policy.break_glass.members at the base commit's verified policy (from <sha>)",
			),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			in := tt.build(w)
			judge(t, w.trustingVerifier(), in, tt.want)
		})
	}
}

// A cached verdict is judged again when the policy it was judged by is no
// longer the one in force (a policy change verified late), and costs no
// API calls while it is.
func TestCachedVerdictFollowsThePolicy(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	in := w.approvedMerge("alice", request("alice", "readwrite"), "bob")
	cache := &approval.MemoryCache{}
	src := &trusted{w: w}
	verify := func() approval.Input {
		v := w.verifier(cache)
		v.Policy = src
		ev, err := v.Verify(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		if !ev.Approved {
			in.Request = nil // mark: rejected
		}
		return in
	}
	if got := verify(); got.Request == nil {
		t.Fatal("approved by the verified owners: want approved")
	}
	before := len(w.gh.Requests())
	verify()
	if n := len(w.gh.Requests()) - before; n != 0 {
		t.Errorf("steady state with a policy source made %d API calls, want 0", n)
	}
	// A CODEOWNERS change that removed bob before the pull request's base
	// is verified now: the policy in force at the base is another.
	tightened := w.gh.AddCommit(w.repo, ghfake.Commit{Parents: []string{w.root}, Author: "admin", Committer: "admin", Message: "owners"},
		map[string]string{".github/CODEOWNERS": "/requests/orders-db/ @carol\n"})
	src.set(w.gh.Commit(w.repo, in.Commit).Parents[0], tightened.SHA)
	if got := verify(); got.Request != nil {
		t.Error("after the policy at the base changed, the cached approval still stood")
	}
}

// The commit a pull request was merged onto comes from GitHub's merge
// commit and git's parents, whatever the commit message says.
func TestMergedOntoFromTheAPI(t *testing.T) {
	t.Parallel()
	rw := request("alice", "readwrite")
	removeBob := map[string]string{".github/CODEOWNERS": "/requests/orders-db/ @carol\n"}
	refused := rejected(
		"at the commit it was merged onto (<sha>): grants.0: orders-db/readwrite needs 1 code-owner approval(s) on the final head commit, has 0",
		"@bob is not a code owner of requests/orders-db/alice.yaml at the commit it was merged onto (<sha>) (review 1)",
	).counting("bob via @bob")
	tests := []struct {
		name string
		// build returns the input and the commit it was merged onto.
		build func(w *world) (approval.Input, string)
		want  verdict
	}{
		{
			name: "a squash whose title lost its (#N), with an owner removed on main meanwhile",
			build: func(w *world) (approval.Input, string) {
				p := w.proposal("alice", rw).review("bob", gitgrant.ReviewApproved)
				onto := w.pushMain("admin", removeBob)
				return w.input(path, p.mergeWith("squash", path, "Add alice's access")), onto
			},
			want: refused,
		},
		{
			name: "a squash of two commits",
			build: func(w *world) (approval.Input, string) {
				p := w.proposal("alice", rw).push("alice", "alice", map[string]string{"requests/orders-db/README.md": "x"}).review("bob", gitgrant.ReviewApproved)
				onto := w.pushMain("admin", removeBob)
				return w.input(path, p.mergeWith("squash", path, "Access")), onto
			},
			want: refused,
		},
		{
			name: "a rebase of three commits whose first restores the removed owner",
			build: func(w *world) (approval.Input, string) {
				p := w.openPR("alice").push("alice", "alice", map[string]string{".github/CODEOWNERS": "/requests/orders-db/ @bob @carol\n"}).
					push("alice", "alice", map[string]string{"requests/orders-db/README.md": "x"}).
					push("alice", "alice", file(rw)).review("bob", gitgrant.ReviewApproved)
				onto := w.pushMain("admin", removeBob)
				return w.input(path, p.merge("rebase", path)), onto
			},
			want: refused,
		},
		{
			name: "a rebase of three commits, nothing changed on main",
			build: func(w *world) (approval.Input, string) {
				p := w.openPR("alice").push("alice", "alice", map[string]string{"requests/orders-db/README.md": "x"}).
					push("alice", "alice", map[string]string{"requests/orders-db/NOTES.md": "y"}).
					push("alice", "alice", file(rw)).review("bob", gitgrant.ReviewApproved)
				onto := w.main
				return w.input(path, p.merge("rebase", path)), onto
			},
			want: approved("bob via @bob"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			in, onto := tt.build(w)
			ev := judge(t, w.verifier(nil), in, tt.want)
			if ev.MergedOnto != onto {
				t.Errorf("merged onto %s, want %s", ev.MergedOnto, onto)
			}
		})
	}
}

// Verification is what plan runs: it only reads from GitHub. Opening the
// follow-up issue is a separate step.
func TestVerifyOnlyReads(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ins := []approval.Input{
		w.approvedMerge("alice", request("alice", "readwrite"), "bob"),
		w.input("requests/orders-db/grace.yaml", w.openPR("grace").push("grace", "grace", map[string]string{"requests/orders-db/grace.yaml": request("grace", "readwrite", "emergency: true\n")}).merge("squash", "requests/orders-db/grace.yaml")),
		w.input("requests/orders-db/erin.yaml", w.pushMain("erin", map[string]string{"requests/orders-db/erin.yaml": request("erin", "readwrite", "emergency: true\n")})),
		w.input("requests/orders-db/mallory.yaml", w.pushMain("mallory", map[string]string{"requests/orders-db/mallory.yaml": request("mallory", "readwrite")})),
	}
	w.gh.ResetRequests()
	v := w.verifier(&approval.MemoryCache{})
	var emergencies []int
	for i, in := range ins {
		ev, err := v.Verify(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		if ev.Emergency {
			emergencies = append(emergencies, i)
			if ev.FollowUpIssue != 0 {
				t.Errorf("%s: verification named follow-up issue %d", in.Path, ev.FollowUpIssue)
			}
		}
	}
	if diff := cmp.Diff([]int{1, 2}, emergencies); diff != "" {
		t.Fatalf("emergencies (-want +got):\n%s", diff)
	}
	for _, r := range w.gh.Requests() {
		if r.Method != "GET" {
			t.Errorf("verification sent %s %s", r.Method, r.Path)
		}
	}
	if n := len(w.gh.Issues(w.repo)); n != 0 {
		t.Errorf("verification opened %d issues", n)
	}
}

// Only an issue gitgrant's own identity wrote, with the marker holding the
// nonce it was given, is the follow-up issue: one the requester opened in
// advance (with the old, predictable marker, or even the exact one) and
// then closed never stands in for it.
func TestFollowUpCannotBePreempted(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	in := w.input(path, w.pushMain("erin", file(request("erin", "readwrite", "emergency: true\n"))))
	const nonce = "a3f1c2d4e5b6a7980a1b2c3d"
	planted := []ghfake.Issue{
		{Title: "Review emergency access by @erin", Labels: []string{ghapi.FollowUpLabel}, User: "erin", State: "closed",
			Body: "<!-- gitgrant:emergency path=" + path + " commit=" + in.Commit + " -->\nreviewed, all fine"},
		{Title: "Review emergency access by @erin", Labels: []string{ghapi.FollowUpLabel}, User: "erin", State: "closed",
			Body: "<!-- gitgrant:emergency path=" + path + " commit=" + in.Commit + " nonce=" + nonce + " -->\nreviewed, all fine"},
		{Title: "Review emergency access by @erin", Labels: []string{ghapi.FollowUpLabel}, User: "gitgrant", State: "closed",
			Body: "<!-- gitgrant:emergency path=" + path + " commit=" + in.Commit + " nonce=" + nonce + " -->\na look-alike account"},
	}
	for _, is := range planted {
		w.gh.AddIssue(w.repo, is)
	}
	ev, err := w.verifier(nil).Verify(context.Background(), in)
	if err != nil || !ev.Emergency {
		t.Fatalf("%+v %v", ev, err)
	}
	first, err := w.verifier(nil).EnsureFollowUp(context.Background(), in, ev, nonce)
	if err != nil {
		t.Fatal(err)
	}
	again, err := w.verifier(nil).EnsureFollowUp(context.Background(), in, ev, nonce)
	if err != nil {
		t.Fatal(err)
	}
	issues := w.gh.Issues(w.repo)
	if len(issues) != len(planted)+1 || first != issues[len(planted)].Number || again != first {
		t.Fatalf("follow-up issue %d then %d; issues %+v: want one new issue by gitgrant, found again", first, again, issues)
	}
	if got := issues[len(planted)].User; got != ghfake.DefaultActor {
		t.Errorf("follow-up issue written by %q", got)
	}
	if _, err := w.verifier(nil).EnsureFollowUp(context.Background(), in, ev, "short"); err == nil {
		t.Error("a guessable nonce was accepted")
	}
}

// The window of an emergency direct push starts when gitgrant first saw
// it, or at an earlier commit date; a commit date after the first sighting
// (by more than MaxCommitDateSkew) is refused, however often it is judged.
func TestEmergencyWindowStartsAtFirstSeen(t *testing.T) {
	t.Parallel()
	now := t0.Add(48 * time.Hour)
	future := "emergency: the commit date 2026-11-22T12:00:00Z is in the future of when gitgrant first saw the commit (2026-11-22T10:00:00Z) by more than 5m0s, so its window cannot be trusted: commit the request again with a true date"
	tests := []struct {
		name       string
		date       time.Time
		firstSeen  time.Time
		checked    time.Time
		wantStart  time.Time
		wantReason string
	}{
		{name: "dated two hours ahead, seen now", date: now.Add(2 * time.Hour), firstSeen: now, checked: now, wantReason: future},
		{name: "the same, judged again three hours later", date: now.Add(2 * time.Hour), firstSeen: now, checked: now.Add(3 * time.Hour), wantReason: future},
		{name: "the same, first sighting not supplied", date: now.Add(2 * time.Hour), checked: now, wantReason: future},
		{name: "honest: seen ten minutes after its date", date: now.Add(-10 * time.Minute), firstSeen: now, checked: now.Add(time.Hour), wantStart: now.Add(-10 * time.Minute)},
		{name: "clock skew within the bound", date: now.Add(3 * time.Minute), firstSeen: now, checked: now.Add(time.Hour), wantStart: now},
		{name: "a first sighting after now counts as now", date: now.Add(-time.Hour), firstSeen: now.Add(5 * time.Hour), checked: now, wantStart: now.Add(-time.Hour)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			c := w.gh.AddCommit(w.repo, ghfake.Commit{Parents: []string{w.main}, Author: "erin", Committer: "erin", Date: tt.date},
				file(request("erin", "readwrite", "emergency: true\n")))
			in := w.input(path, c.SHA)
			in.FirstSeen = tt.firstSeen
			v := w.verifier(nil)
			v.Clock = fakeclock.New(tt.checked)
			ev, err := v.Verify(context.Background(), in)
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantReason != "" {
				if ev.Approved || !contains(ev.Reasons, tt.wantReason) {
					t.Errorf("want refused with %q, got %+v", tt.wantReason, ev)
				}
				return
			}
			if !ev.Approved || !ev.Emergency || !ev.MergedAt.Equal(tt.wantStart) {
				t.Errorf("want an emergency starting %v, got %+v", tt.wantStart, ev)
			}
		})
	}
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

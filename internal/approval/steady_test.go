package approval_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gitgrant/gitgrant/internal/ghapi"
	"github.com/gitgrant/gitgrant/internal/testing/fakeclock"

	"github.com/google/go-cmp/cmp"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/approval"
	"github.com/gitgrant/gitgrant/internal/ghfake"
)

func TestSteadyStateCostsNoCalls(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	in := w.approvedMerge("alice", request("alice", "readwrite"), "dave")
	cache := &approval.MemoryCache{}
	v := w.verifier(cache)
	first, err := v.Verify(context.Background(), in)
	if err != nil || !first.Approved {
		t.Fatalf("first verification: %+v, %v", first, err)
	}
	before := len(w.gh.Requests())
	second, err := w.verifier(cache).Verify(context.Background(), in) // a new pass, same cache
	if err != nil {
		t.Fatal(err)
	}
	if got := len(w.gh.Requests()) - before; got != 0 {
		t.Errorf("second verification of the same blob made %d API calls, want 0", got)
	}
	if diff := cmp.Diff(first, second); diff != "" {
		t.Errorf("cached evidence differs (-first +second):\n%s", diff)
	}
	want := gitgrant.Evidence{
		Path: path, Blob: in.Blob, PullRequest: 1, Author: "alice", MergedAt: t0.Add(24 * time.Hour),
		MergeCommit: in.Commit, BaseCommit: first.BaseCommit, HeadCommit: first.HeadCommit, MergedOnto: in.Parents[0],
		Approvers: []gitgrant.Approver{{Login: "dave", ReviewID: 1, SubmittedAt: t0.Add(2 * time.Minute), Via: "@acme/dba"}},
		Approved:  true, CheckedAt: t0.Add(48 * time.Hour),
	}
	if diff := cmp.Diff(want, first); diff != "" {
		t.Errorf("evidence (-want +got):\n%s", diff)
	}
	if first.BaseCommit == "" || first.HeadCommit == "" || first.BaseCommit == first.HeadCommit {
		t.Errorf("base %q and head %q must both be set and differ", first.BaseCommit, first.HeadCommit)
	}
}

// The same blob brought back to main later by a direct push must not
// inherit the approval of the pull request that first brought it.
func TestCacheIsKeyedByCommit(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	content := request("alice", "readwrite", "expires: 2027-01-01T00:00:00Z\n")
	content = strings.Replace(content, "duration: 1h\n", "", 1)
	approved := w.approvedMerge("alice", content, "bob")
	cache := &approval.MemoryCache{}
	if ev, err := w.verifier(cache).Verify(context.Background(), approved); err != nil || !ev.Approved {
		t.Fatalf("approved pull request: %+v %v", ev, err)
	}
	w.pushMain("alice", map[string]string{path: ""}) // "I'm done": file removed
	again := w.input(path, w.pushMain("alice", file(content)))
	if again.Blob != approved.Blob {
		t.Fatal("test setup: the blob should be identical")
	}
	ev, err := w.verifier(cache).Verify(context.Background(), again)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Approved {
		t.Errorf("identical content re-pushed directly was approved from the cache: %+v", ev)
	}
}

// A commit GitHub has not linked to its pull request yet is re-checked
// for a while, so that the lag right after a merge does not deny forever.
func TestNoPullRequestVerdictIsRechecked(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	p := w.proposal("alice", request("alice", "readwrite")).review("bob", gitgrant.ReviewApproved)
	// The merge commit exists on main, but GitHub has not associated it.
	merge := w.gh.AddCommit(w.repo, ghfake.Commit{Parents: []string{w.main, p.head}, Author: "alice", Committer: "web-flow", Date: t0,
		Files: copyFiles(w.gh.Commit(w.repo, p.head).Files)}, nil)
	in := w.input(path, merge.SHA)
	now := t0.Add(48 * time.Hour)
	cache := &approval.MemoryCache{}
	v := w.verifier(cache)
	clk := fakeclock.New(now)
	v.Clock = clk
	ev, err := v.Verify(context.Background(), in)
	if err != nil || ev.Approved {
		t.Fatalf("before association: %+v %v", ev, err)
	}
	p.landedAs(merge.SHA)
	if ev, _ := v.Verify(context.Background(), in); ev.Approved {
		t.Fatal("re-checked before RecheckInterval passed")
	}
	clk.Advance(approval.RecheckInterval)
	ev, err = v.Verify(context.Background(), in)
	if err != nil || !ev.Approved {
		t.Fatalf("after association and recheck: %+v %v", ev, err)
	}
}

func TestEmergencyOpensOneFollowUpIssue(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	in := w.input(path, w.pushMain("erin", file(request("erin", "readwrite", "emergency: true\nticket: INC-7\n"))))
	const nonce = "5f0c1d7e9a8b4c3d2e1f0a9b"
	for i := range 2 { // no cache: the second pass must find the issue, not open another
		ev, err := w.verifier(nil).Verify(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		if !ev.Approved || !ev.Emergency || ev.FollowUpIssue != 0 {
			t.Fatalf("pass %d: %+v", i, ev)
		}
		if want := t0.Add(30 * time.Hour); !ev.MergedAt.Equal(want) {
			t.Errorf("clock start %v, want the push's date %v (earlier than now)", ev.MergedAt, want)
		}
		n, err := w.verifier(nil).EnsureFollowUp(context.Background(), in, ev, nonce)
		if err != nil || n == 0 {
			t.Fatalf("pass %d: follow-up issue %d, %v", i, n, err)
		}
	}
	issues := w.gh.Issues(w.repo)
	if len(issues) != 1 {
		t.Fatalf("%d follow-up issues, want 1", len(issues))
	}
	is := issues[0]
	for _, want := range []string{"https://github.example/acme/access/commit/" + in.Commit, "requester: @erin", "`" + path + "`", "ticket: INC-7", "orders-db/readwrite", "nonce=" + nonce} {
		if !strings.Contains(is.Body, want) {
			t.Errorf("follow-up issue body lacks %q:\n%s", want, is.Body)
		}
	}
	if diff := cmp.Diff([]string{ghapi.FollowUpLabel}, is.Labels); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}
}

// When GitHub keeps failing, verification fails closed with an error (no
// evidence, nothing cached), never with an approval or an empty answer.
func TestGitHubOutageFailsClosed(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	in := w.approvedMerge("alice", request("alice", "readwrite"), "bob")
	w.gh.Inject(ghfake.Fault{PathContains: "/reviews", Status: 502, Times: 100})
	cache := &approval.MemoryCache{}
	_, err := w.verifier(cache).Verify(context.Background(), in)
	var sys *gitgrant.SystemError
	if !errors.As(err, &sys) || !sys.Retryable {
		t.Fatalf("error %v, want a retryable SystemError", err)
	}
	if cache.Len() != 0 {
		t.Errorf("a failed verification was cached")
	}
}

// Rate limits and server errors on the way are waited out and retried; the
// verdict is the same as without them.
func TestVerificationSurvivesRateLimitsAndErrors(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	in := w.approvedMerge("alice", request("alice", "readwrite"), "dave")
	w.gh.Inject(ghfake.Fault{PathContains: "/pulls", Status: 429, Header: map[string]string{"Retry-After": "3"}})
	w.gh.Inject(ghfake.Fault{PathContains: "/reviews", Status: 403, Header: map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": fmt.Sprint(w.clk.Now().Add(20 * time.Second).Unix())}})
	w.gh.Inject(ghfake.Fault{PathContains: "/memberships/", Status: 503, Times: 2})
	ev, err := w.verifier(nil).Verify(context.Background(), in)
	if err != nil || !ev.Approved {
		t.Fatalf("%+v %v", ev, err)
	}
	st := w.cl.Transport.Stats()
	if st.RateLimitWaits != 2 || st.ServerErrors != 2 || st.Retries != 4 {
		t.Errorf("stats %+v, want 2 rate-limit waits and 2 retried server errors", st)
	}
}

// Reviews on several pages are all read: the deciding change request is
// on the last page.
func TestReviewsAcrossPages(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	p := w.proposal("alice", request("alice", "readwrite")).review("bob", gitgrant.ReviewApproved)
	for range 150 {
		p.review("mallory", gitgrant.ReviewCommented)
	}
	p.review("carol", gitgrant.ReviewChangesRequested)
	ev, err := w.verifier(nil).Verify(context.Background(), w.input(path, p.merge("merge", path)))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"code owner @carol requested changes (review 152) and has not approved or been dismissed since"}
	if diff := cmp.Diff(want, ev.Reasons); diff != "" {
		t.Errorf("reasons (-want +got):\n%s", diff)
	}
	if got := w.gh.Count("GET", "/reviews"); got != 2 {
		t.Errorf("%d review pages fetched, want 2 (per_page=100)", got)
	}
}

// TestFigures measures API calls for a first verification of 100 active
// requests and for a steady-state pass, with base-commit files read from
// git (as the reconciler does) and through the contents API.
func TestFigures(t *testing.T) {
	t.Parallel()
	for _, viaGit := range []bool{true, false} {
		t.Run(fmt.Sprintf("git=%v", viaGit), func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			var ins []approval.Input
			for i := range 100 {
				p := fmt.Sprintf("requests/orders-db/r%03d.yaml", i)
				reviewer := []string{"bob", "carol", "dave", "frank"}[i%4]
				pr := w.openPR("alice").push("alice", "alice", map[string]string{p: request("alice", "readwrite")}).review(reviewer, gitgrant.ReviewApproved)
				ins = append(ins, w.input(p, pr.merge([]string{"merge", "squash", "rebase"}[i%3], p)))
			}
			cache := &approval.MemoryCache{}
			v := w.verifier(cache)
			if viaGit {
				v.Files = gitReader{w}
			}
			first := len(w.gh.Requests())
			for _, in := range ins {
				ev, err := v.Verify(context.Background(), in)
				if err != nil || !ev.Approved {
					t.Fatalf("%s: %+v %v", in.Path, ev, err)
				}
			}
			firstPass := len(w.gh.Requests()) - first
			steady := len(w.gh.Requests())
			v2 := w.verifier(cache)
			for _, in := range ins {
				if _, err := v2.Verify(context.Background(), in); err != nil {
					t.Fatal(err)
				}
			}
			steadyPass := len(w.gh.Requests()) - steady
			t.Logf("FIGURES git=%v: first pass of 100 requests: %d API calls (%.1f per request; transport counted %d); steady state: %d",
				viaGit, firstPass, float64(firstPass)/100, w.cl.Transport.Stats().Requests, steadyPass)
			if steadyPass != 0 {
				t.Errorf("steady state made %d calls, want 0", steadyPass)
			}
			limit := 450
			if !viaGit {
				limit = 750
			}
			if firstPass > limit {
				t.Errorf("first pass made %d calls, budget %d", firstPass, limit)
			}
		})
	}
}

// The reconciler may verify files concurrently: one Verifier, one cache.
func TestConcurrentVerification(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	var ins []approval.Input
	for i := range 12 {
		p := fmt.Sprintf("requests/orders-db/c%02d.yaml", i)
		pr := w.openPR("alice").push("alice", "alice", map[string]string{p: request("alice", "readwrite")}).review([]string{"dave", "frank", "bob"}[i%3], gitgrant.ReviewApproved)
		ins = append(ins, w.input(p, pr.merge("squash", p)))
	}
	v := w.verifier(&approval.MemoryCache{})
	errs := make(chan error, len(ins))
	for _, in := range ins {
		go func() {
			ev, err := v.Verify(context.Background(), in)
			if err == nil && !ev.Approved {
				err = fmt.Errorf("%s: %v", in.Path, ev.Reasons)
			}
			errs <- err
		}()
	}
	for range ins {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// The follow-up issue quotes the requester's reason and ticket as text:
// they cannot mention a team, embed an image or hide the rest of the issue.
func TestEmergencyFollowUpQuotesTheRequest(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	content := request("erin", "readwrite", "emergency: true\nticket: \"INC-7 @org/sre\"\n")
	content = strings.Replace(content, "reason: repair stuck orders", `reason: "✅ approved by @org/security ![x](https://evil/x.png) <!-- hidden"`, 1)
	in := w.input(path, w.pushMain("erin", file(content)))
	ev, err := w.verifier(nil).Verify(context.Background(), in)
	if err != nil || !ev.Emergency {
		t.Fatalf("%+v %v", ev, err)
	}
	if _, err := w.verifier(nil).EnsureFollowUp(context.Background(), in, ev, "0123456789abcdef"); err != nil {
		t.Fatal(err)
	}
	issues := w.gh.Issues(w.repo)
	if len(issues) != 1 {
		t.Fatalf("%d follow-up issues, want 1", len(issues))
	}
	body := issues[0].Body
	for _, want := range []string{
		"- requester: @erin\n", // the one mention meant to notify
		`- reason given: ✅ approved by @&#8203;org/security \!\[x\]\(https://evil/x.png\) &lt;\!-- hidden` + "\n",
		"- ticket: INC-7 @&#8203;org/sre\n",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("follow-up issue body lacks %q:\n%s", want, body)
		}
	}
	if n := strings.Count(body, "<!--"); n != 1 {
		t.Errorf("%d HTML comments in the body, want only the marker:\n%s", n, body)
	}
}

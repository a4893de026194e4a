package ghfake_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-github/v60/github"

	"github.com/gitgrant/gitgrant/internal/ghfake"
)

var t0 = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)

func client(t *testing.T, s *ghfake.Server) *github.Client {
	t.Helper()
	c, err := github.NewClient(nil).WithEnterpriseURLs(s.BaseURL(), s.BaseURL())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Reviews page with Link headers that go-github follows; shapes decode
// into go-github's structs.
func TestReviewsPaginateAndDecode(t *testing.T) {
	t.Parallel()
	s := ghfake.New(func() time.Time { return t0 })
	defer s.Close()
	r := s.AddRepo("acme", "access", "main")
	base := s.AddCommit(r, ghfake.Commit{Author: "a", Committer: "a"}, map[string]string{"x": "1"})
	head := s.AddCommit(r, ghfake.Commit{Parents: []string{base.SHA}, Author: "alice", Committer: "alice"}, map[string]string{"x": "2"})
	p := s.AddPull(r, ghfake.Pull{User: "alice", HeadSHA: head.SHA, BaseSHA: base.SHA, MergedAt: t0, MergeCommitSHA: head.SHA, Commits: []string{head.SHA}})
	for i := range 5 {
		s.AddReview(r, p.Number, ghfake.Review{User: "bob", State: "COMMENTED", CommitID: head.SHA, SubmittedAt: t0.Add(time.Duration(i) * time.Minute)})
	}
	gh := client(t, s)
	var ids []int64
	opts := &github.ListOptions{PerPage: 2}
	for {
		rs, resp, err := gh.PullRequests.ListReviews(context.Background(), "acme", "access", p.Number, opts)
		if err != nil {
			t.Fatal(err)
		}
		for _, rv := range rs {
			ids = append(ids, rv.GetID())
			if rv.GetCommitID() != head.SHA || rv.GetUser().GetLogin() != "bob" || rv.GetSubmittedAt().IsZero() {
				t.Errorf("review %+v", rv)
			}
		}
		if resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	if diff := cmp.Diff([]int64{1, 2, 3, 4, 5}, ids); diff != "" {
		t.Errorf("review ids (-want +got):\n%s", diff)
	}
	pr, _, err := gh.PullRequests.Get(context.Background(), "acme", "access", p.Number)
	if err != nil {
		t.Fatal(err)
	}
	if !pr.GetMerged() || pr.GetMergeCommitSHA() != head.SHA || pr.GetHead().GetSHA() != head.SHA || pr.GetBase().GetSHA() != base.SHA || pr.GetUser().GetLogin() != "alice" {
		t.Errorf("pull request %+v", pr)
	}
	if !s.EditPullTitle(r, p.Number, "Edited after the merge") || s.EditPullTitle(r, p.Number+1, "no such pull request") {
		t.Error("EditPullTitle reports the wrong pull requests as found")
	}
	if pr, _, err = gh.PullRequests.Get(context.Background(), "acme", "access", p.Number); err != nil || pr.GetTitle() != "Edited after the merge" || !pr.GetMerged() {
		t.Errorf("after EditPullTitle: pull request %+v, %v", pr, err)
	}
	f, _, _, err := gh.Repositories.GetContents(context.Background(), "acme", "access", "x", &github.RepositoryContentGetOptions{Ref: head.SHA})
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := f.GetContent(); c != "2" || f.GetSHA() != ghfake.BlobSHA([]byte("2")) {
		t.Errorf("contents %q sha %s", c, f.GetSHA())
	}
}

func TestWritesAndTeams(t *testing.T) {
	t.Parallel()
	s := ghfake.New(nil)
	defer s.Close()
	r := s.AddRepo("acme", "access", "main")
	s.AddTeamMember("acme", "dba", "Dave")
	gh := client(t, s)
	ctx := context.Background()
	m, _, err := gh.Teams.GetTeamMembershipBySlug(ctx, "acme", "dba", "dave")
	if err != nil || m.GetState() != "active" {
		t.Fatalf("membership %+v %v", m, err)
	}
	_, resp, err := gh.Teams.GetTeamMembershipBySlug(ctx, "acme", "dba", "mallory")
	if err == nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("non-member: %v", err)
	}
	title, body := "t", "b"
	is, _, err := gh.Issues.Create(ctx, "acme", "access", &github.IssueRequest{Title: &title, Body: &body, Labels: &[]string{"x"}})
	if err != nil || is.GetNumber() != 1 {
		t.Fatalf("issue %+v %v", is, err)
	}
	c, _, err := gh.Issues.CreateComment(ctx, "acme", "access", 1, &github.IssueComment{Body: github.String("hello")})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := gh.Issues.EditComment(ctx, "acme", "access", c.GetID(), &github.IssueComment{Body: github.String("edited")}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := gh.Checks.CreateCheckRun(ctx, "acme", "access", github.CreateCheckRunOptions{Name: "gitgrant", HeadSHA: "abc", Conclusion: github.String("success")}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := gh.Repositories.CreateStatus(ctx, "acme", "access", "abc", &github.RepoStatus{State: github.String("success"), Context: github.String("gitgrant")}); err != nil {
		t.Fatal(err)
	}
	if got := s.Comments(r); len(got) != 1 || got[0].Body != "edited" {
		t.Errorf("comments %+v", got)
	}
	if got := s.CheckRuns(r); len(got) != 1 || got[0].Conclusion != "success" {
		t.Errorf("check runs %+v", got)
	}
	if got := s.Statuses(r); len(got) != 1 || got[0].State != "success" {
		t.Errorf("statuses %+v", got)
	}
}

// A client that ignores the base URL's path is caught.
func TestAbsoluteURLsAreCaught(t *testing.T) {
	t.Parallel()
	s := ghfake.New(nil)
	defer s.Close()
	s.AddRepo("acme", "access", "main")
	resp, err := http.Get(s.URL + "/repos/acme/access")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || s.Unprefixed() != 1 {
		t.Errorf("status %d, unprefixed %d", resp.StatusCode, s.Unprefixed())
	}
	if got := s.Requests(); len(got) != 1 || !strings.HasPrefix(got[0].Path, "/repos/") {
		t.Errorf("recorded %+v", got)
	}
}

// TestTeamMemberships: memberships written through the API keep GitHub's
// spelling of a login; a user outside the organisation is invited
// (pending) and not listed; a request for no operation is counted.
func TestTeamMemberships(t *testing.T) {
	t.Parallel()
	s := ghfake.New(nil)
	defer s.Close()
	s.AddTeam("acme", "ops")
	s.AddUser("Alice", "acme")
	s.AddUser("outsider")
	s.SetTeamMember("acme", "ops", "lead", "maintainer", "active")
	s.SetChildTeams("acme", "ops", "ops-oncall")
	gh := client(t, s)
	ctx := context.Background()
	for _, login := range []string{"alice", "outsider"} {
		if _, _, err := gh.Teams.AddTeamMembershipBySlug(ctx, "acme", "ops", login, &github.TeamAddTeamMembershipOptions{Role: "member"}); err != nil {
			t.Fatalf("add %s: %v", login, err)
		}
	}
	if diff := cmp.Diff([]string{"Alice:member:active", "lead:maintainer:active", "outsider:member:pending"}, s.TeamMemberships("acme", "ops")); diff != "" {
		t.Errorf("memberships (-want +got):\n%s", diff)
	}
	var listed []string
	users, _, err := gh.Teams.ListTeamMembersBySlug(ctx, "acme", "ops", &github.TeamListTeamMembersOptions{Role: "member"})
	for _, u := range users {
		listed = append(listed, u.GetLogin())
	}
	if err != nil || !slices.Equal(listed, []string{"Alice"}) {
		t.Errorf("members with role member = %v, %v; want Alice alone", listed, err)
	}
	children, _, err := gh.Teams.ListChildTeamsByParentSlug(ctx, "acme", "ops", nil)
	if err != nil || len(children) != 1 || children[0].GetSlug() != "ops-oncall" {
		t.Errorf("child teams = %v, %v", children, err)
	}
	if _, err := gh.Teams.RemoveTeamMembershipBySlug(ctx, "acme", "ops", "ALICE"); err != nil {
		t.Errorf("remove: %v", err)
	}
	if _, resp, err := gh.Users.Get(ctx, "ghost"); err == nil || resp.StatusCode != http.StatusNotFound || s.Unrouted() != 0 {
		t.Errorf("unknown user: %v, unrouted %d", err, s.Unrouted())
	}
	if _, _, err := gh.Organizations.ListMembers(ctx, "acme", nil); err == nil || s.Unrouted() != 1 {
		t.Errorf("an operation the fake does not serve: %v, unrouted %d", err, s.Unrouted())
	}
}

package ghapi_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gitgrant/gitgrant/internal/ghapi"
	"github.com/gitgrant/gitgrant/internal/ghfake"
)

const marker = "<!-- gitgrant:plan -->"

// One comment per pull request, found by its marker, never duplicated;
// an unchanged body costs no write; someone else's comment that carries
// the marker is left alone.
func TestUpsertComment(t *testing.T) {
	t.Parallel()
	gh, repo, c := newRepoClient(t)
	gh.AddComment(repo, 5, "mallory", marker+"\nfake plan")
	gh.AddComment(repo, 5, "alice", "looks good")
	ctx := context.Background()

	steps := []struct {
		body        string
		wantCreated bool
		wantWrites  int
	}{
		{"plan v1", true, 1},  // mallory's comment cannot be edited: a new one
		{"plan v2", false, 1}, // edits gitgrant's own
		{"plan v2", false, 0}, // unchanged: no write
	}
	var firstID int64
	for i, s := range steps {
		gh.ResetRequests()
		id, created, err := c.UpsertComment(ctx, 5, marker, s.body)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if i == 0 {
			firstID = id
		}
		if created != s.wantCreated || id != firstID {
			t.Errorf("step %d: id %d created %v, want id %d created %v", i, id, created, firstID, s.wantCreated)
		}
		writes := gh.Count("POST", "/comments") + gh.Count("PATCH", "/comments")
		// The failed attempt to edit mallory's comment is a write too.
		if i == 0 {
			writes -= gh.Count("PATCH", "/comments")
		}
		if writes != s.wantWrites {
			t.Errorf("step %d: %d writes, want %d", i, writes, s.wantWrites)
		}
	}
	var bodies []string
	for _, cm := range gh.Comments(repo) {
		bodies = append(bodies, cm.User+": "+cm.Body)
	}
	want := []string{"mallory: " + marker + "\nfake plan", "alice: looks good", "gitgrant[bot]: " + marker + "\nplan v2"}
	if diff := cmp.Diff(want, bodies); diff != "" {
		t.Errorf("comments (-want +got):\n%s", diff)
	}
}

func TestLimitAndFold(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", ghapi.MaxCommentBytes) // two bytes each
	got := ghapi.LimitComment(long)
	if len(got) > ghapi.MaxCommentBytes || !strings.HasSuffix(got, "job summary)\n") || !strings.HasPrefix(got, "éé") {
		t.Errorf("limited to %d bytes, ends %q", len(got), got[len(got)-20:])
	}
	for i, r := range got {
		if r == '\uFFFD' {
			t.Fatalf("cut inside a rune at %d", i)
		}
	}
	if diff := cmp.Diff("<details><summary>3 files</summary>\n\nbody\n\n</details>\n", ghapi.Fold("3 files", "body")); diff != "" {
		t.Error(diff)
	}
}

func TestChecksAndStatuses(t *testing.T) {
	t.Parallel()
	gh, repo, c := newRepoClient(t)
	ctx := context.Background()
	if _, err := c.CheckRun(ctx, "abc", "gitgrant validate", "failure", "2 errors", "details"); err != nil {
		t.Fatal(err)
	}
	if err := c.SetStatus(ctx, "abc", "failure", "gitgrant/validate", strings.Repeat("x", 200)); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]ghfake.CheckRun{{ID: 1, Name: "gitgrant validate", HeadSHA: "abc", Status: "completed", Conclusion: "failure", Title: "2 errors", Summary: "details"}}, gh.CheckRuns(repo)); diff != "" {
		t.Errorf("check runs (-want +got):\n%s", diff)
	}
	st := gh.Statuses(repo)
	if len(st) != 1 || len(st[0].Description) != 140 || st[0].Context != "gitgrant/validate" {
		t.Errorf("statuses %+v", st)
	}
}

// Cleanup pull requests: one per branch, opened once, then updated.
func TestEnsurePullRequest(t *testing.T) {
	t.Parallel()
	gh, repo, c := newRepoClient(t)
	ctx := context.Background()
	n1, created, err := c.EnsurePullRequest(ctx, "gitgrant/cleanup", "main", "Remove 2 expired requests", "a\nb")
	if err != nil || !created {
		t.Fatalf("first: %d %v %v", n1, created, err)
	}
	n2, created, err := c.EnsurePullRequest(ctx, "gitgrant/cleanup", "main", "Remove 3 expired requests", "a\nb\nc")
	if err != nil || created || n2 != n1 {
		t.Fatalf("second: %d %v %v", n2, created, err)
	}
	gh.ResetRequests()
	if _, _, err := c.EnsurePullRequest(ctx, "gitgrant/cleanup", "main", "Remove 3 expired requests", "a\nb\nc"); err != nil {
		t.Fatal(err)
	}
	if w := gh.Count("PATCH", "") + gh.Count("POST", ""); w != 0 {
		t.Errorf("unchanged pull request: %d writes", w)
	}
	pulls := gh.Pulls(repo)
	if len(pulls) != 1 || pulls[n1].Title != "Remove 3 expired requests" || pulls[n1].Body != "a\nb\nc" {
		t.Errorf("pulls %+v", pulls)
	}
}

// A person's pull request (gitgrant request --open-pr): opened with its
// web address; a second one for the same branch is GitHub's refusal, not
// a silent take-over of the first.
func TestCreatePullRequest(t *testing.T) {
	t.Parallel()
	gh, repo, c := newRepoClient(t)
	ctx := context.Background()
	n, url, err := c.CreatePullRequest(ctx, "access/alice-readwrite", "main", "Request orders-db readwrite", "Repair stuck orders")
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("https://github.example/acme/access/pull/%d", n); url != want {
		t.Errorf("url %q, want %q", url, want)
	}
	if p := gh.Pulls(repo)[n]; p.HeadRef != "access/alice-readwrite" || p.BaseRef != "main" || p.Title != "Request orders-db readwrite" || p.Body != "Repair stuck orders" {
		t.Errorf("pull request %+v", p)
	}
	if _, _, err := c.CreatePullRequest(ctx, "access/alice-readwrite", "main", "again", ""); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("second pull request for the branch: %v, want GitHub's refusal", err)
	}
}

func TestReadPullRequestEvent(t *testing.T) {
	t.Parallel()
	ev, err := ghapi.ReadPullRequestEvent([]byte(`{"action":"opened","number":7,"pull_request":{"number":7,"user":{"login":"alice"},"base":{"ref":"main","sha":"b1"},"head":{"ref":"req","sha":"h1"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(ghapi.PullRequestEvent{Number: 7, BaseSHA: "b1", BaseRef: "main", HeadSHA: "h1", Author: "alice"}, ev); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if _, err := ghapi.ReadPullRequestEvent([]byte(`{"ref":"refs/heads/main"}`)); err == nil {
		t.Error("a push event was read as a pull request event")
	}
}

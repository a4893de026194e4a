package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gitgrant/gitgrant/internal/testing/accesstest"

	"github.com/gitgrant/gitgrant/internal/testing/golden"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/ghfake"
	"github.com/gitgrant/gitgrant/internal/render"
)

var prConfig = "policy:\n  max_duration: 1d\n" + pgConfig("orders-db", "ORDERS_DB_DSN", map[string]string{"alice": "alice_pg", "bob": "bob_pg"},
	"readonly: {target: orders_ro, max_duration: 8h, approvals: 0}",
	"readwrite: {target: orders_rw, max_duration: 4h, approvals: 1}")

// prWorld is an access repository on a real git remote, mirrored on the
// fake GitHub, where pull requests are opened (and left open).
type prWorld struct {
	t    *testing.T
	gh   *ghfake.Server
	repo *ghfake.Repo
	w    *accesstest.Repo
	base string
	vars map[string]string
}

func newPRWorld(t *testing.T) *prWorld {
	t.Helper()
	files := map[string]string{
		"gitgrant.yaml":                   prConfig,
		".github/CODEOWNERS":              "/requests/orders-db/ @carol @acme/dba\n",
		"requests/orders-db/bob-ro.yaml":  "requester: bob\ngrants: [{provider: orders-db, role: readonly}]\nduration: 2h\nreason: Refund audit\n",
		"requests/orders-db/README.md":    "Requests for the orders database.\n",
		"requests/orders-db/.placeholder": "\n",
	}
	w := accesstest.New(t, func() time.Time { return testNow }, files, testNow.Add(-48*time.Hour))
	w.GH.AddToken("test-token") // distinct enough to look for in the output
	w.GH.AddTeamMember("acme", "dba", "dave")
	return &prWorld{t: t, gh: w.GH, repo: w.Repo, w: w, base: w.Git(time.Time{}, "", "rev-parse", "HEAD"), vars: map[string]string{
		"GITHUB_TOKEN": "test-token", "GITHUB_REPOSITORY": "acme/access", "GITHUB_API_URL": w.GH.BaseURL(),
	}}
}

// validate runs `gitgrant validate --pr n` on the clone and fails the test
// unless it exits with want.
func (p *prWorld) validate(n, want int) result {
	p.t.Helper()
	r := runCLI(p.t, p.vars, "validate", "--repo", p.w.Work, "--pr", strconv.Itoa(n))
	if r.code != want {
		p.t.Fatalf("validate --pr %d: exit %d, want %d\n%s\n%s", n, r.code, want, r.stdout, r.stderr)
	}
	return r
}

// land commits changes ("" deletes a file) straight to main, on the
// remote and the fake.
func (p *prWorld) land(at time.Time, changes map[string]string) {
	p.t.Helper()
	p.base = p.w.Commit(at, "admin", "Change main", changes)
}

// open pushes a branch from main with changes ("" deletes a file) as
// author and opens pull request n for it; it returns the head commit.
func (p *prWorld) open(n int, author string, changes map[string]string) string {
	w := p.w
	branch := fmt.Sprintf("pr-%d", n)
	w.Git(time.Time{}, "", "checkout", "-q", "-b", branch, "main")
	w.Write(changes)
	w.Git(testNow.Add(-time.Hour), author, "add", "-A")
	w.Git(testNow.Add(-time.Hour), author, "commit", "-q", "-m", "Change access")
	head := w.Git(time.Time{}, "", "rev-parse", "HEAD")
	w.Git(time.Time{}, "", "push", "-q", "origin", branch)
	w.Git(time.Time{}, "", "checkout", "-q", "main")
	p.gh.AddCommit(p.repo, ghfake.Commit{SHA: head, Parents: []string{p.base}, Author: author, Committer: author, Message: "Change access", Date: testNow.Add(-time.Hour)}, changes)
	p.gh.AddPull(p.repo, ghfake.Pull{Number: n, User: author, HeadRef: branch, HeadSHA: head, BaseSHA: p.base, Commits: []string{head}})
	p.gh.Associate(p.repo, head, n)
	return head
}

func (p *prWorld) comments(n int) []ghfake.Comment {
	var out []ghfake.Comment
	for _, c := range p.gh.Comments(p.repo) {
		if c.Issue == n && strings.HasPrefix(c.Body, render.PRCommentMarker) {
			out = append(out, c)
		}
	}
	return out
}

func (p *prWorld) with(kv ...string) map[string]string {
	out := map[string]string{}
	for k, v := range p.vars {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

// TestValidatePR: a pull request that adds two requests and removes one
// gets one comment with the plan and the missing approval, a check run,
// and on later runs that same comment updated, never a second one.
func TestValidatePR(t *testing.T) {
	t.Parallel()
	p := newPRWorld(t)
	head := p.open(7, "alice", map[string]string{
		"requests/orders-db/alice-rw.yaml": "requester: alice\ngrants: [{provider: orders-db, role: readwrite}]\nduration: 2h\nreason: Repair stuck orders\nticket: INC-1234\n",
		"requests/orders-db/alice-ro.yaml": "requester: alice\ngrants: [{provider: orders-db, role: readonly}]\nduration: 4h\nstarts: 2026-11-23T09:00:00Z\nreason: Read the refunds table\n",
		"requests/orders-db/bob-ro.yaml":   "",
	})

	p.validate(7, gitgrant.ExitOK) // valid; approvals missing is not invalid
	cs := p.comments(7)
	if len(cs) != 1 {
		t.Fatalf("%d validate comments, want 1: %+v", len(cs), cs)
	}
	body := strings.NewReplacer(p.base[:12], "<base>", head[:12], "<head>").Replace(cs[0].Body)
	golden.CheckString(t, filepath.Join("testdata", "golden", "validate-pr-comment.md"), body)
	runs := p.gh.CheckRuns(p.repo)
	if len(runs) != 1 || runs[0].Conclusion != "success" || runs[0].HeadSHA != head || runs[0].Name != "gitgrant validate" {
		t.Errorf("check runs = %+v, want one success on the head", runs)
	}
	// Every file came from the checkout: no contents API call.
	if n := p.gh.Count("GET", "/contents/"); n != 0 {
		t.Errorf("%d contents API calls although the checkout has both commits", n)
	}

	// Unchanged: the same comment, not even edited.
	before := p.gh.Count("PATCH", "/issues/comments/")
	p.validate(7, gitgrant.ExitOK)
	if got := p.comments(7); len(got) != 1 || got[0].ID != cs[0].ID {
		t.Fatalf("second run: comments %+v, want the first one only", got)
	}
	if p.gh.Count("PATCH", "/issues/comments/") != before {
		t.Error("an unchanged comment was rewritten")
	}

	// A code owner approves: the same comment is updated to say so.
	p.gh.AddReview(p.repo, 7, ghfake.Review{User: "dave", State: "APPROVED", CommitID: head, SubmittedAt: testNow.Add(-time.Minute)})
	p.validate(7, gitgrant.ExitOK)
	got := p.comments(7)
	if len(got) != 1 || got[0].ID != cs[0].ID {
		t.Fatalf("third run: comments %+v, want the first one, updated", got)
	}
	if !strings.Contains(got[0].Body, "2 requests ready to grant on merge") || strings.Contains(got[0].Body, "| Missing |") {
		t.Errorf("after approval the comment still asks for it:\n%s", got[0].Body)
	}

	// --output json is one document, for scripts.
	r := runCLI(t, p.vars, "validate", "--repo", p.w.Work, "--pr", "7", "--output", "json")
	var doc struct {
		OK          bool `json:"ok"`
		PullRequest struct {
			Number  int      `json:"number"`
			Base    string   `json:"base"`
			Removed []string `json:"removed"`
		} `json:"pull_request"`
		Files    []struct{ Path string } `json:"files"`
		Previews map[string]struct {
			Ready    bool `json:"ready"`
			Evidence struct {
				Approvers []struct{ Login string } `json:"approvers"`
			} `json:"evidence"`
		} `json:"previews"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil || r.code != gitgrant.ExitOK {
		t.Fatalf("json: exit %d, %v\n%s", r.code, err, r.stdout)
	}
	rw := doc.Previews["requests/orders-db/alice-rw.yaml"]
	if !doc.OK || doc.PullRequest.Number != 7 || doc.PullRequest.Base != p.base || len(doc.Files) != 2 ||
		len(doc.PullRequest.Removed) != 1 || !rw.Ready || len(rw.Evidence.Approvers) != 1 || rw.Evidence.Approvers[0].Login != "dave" {
		t.Errorf("json document = %+v", doc)
	}
}

// TestValidatePRJudgedByBase: a pull request cannot raise a limit and use
// it at once. The raised max_duration is in the pull request, the request
// for the longer duration too; the base's 4h decides, so it fails.
func TestValidatePRJudgedByBase(t *testing.T) {
	t.Parallel()
	p := newPRWorld(t)
	raised := strings.Replace(prConfig, "readwrite: {target: orders_rw, max_duration: 4h", "readwrite: {target: orders_rw, max_duration: 12h", 1)
	head := p.open(3, "alice", map[string]string{
		"gitgrant.yaml":                    raised,
		"requests/orders-db/alice-rw.yaml": "requester: alice\ngrants: [{provider: orders-db, role: readwrite}]\nduration: 8h\nreason: Long migration\n",
	})
	r := runCLI(t, p.with("GITHUB_ACTIONS", "true"), "validate", "--repo", p.w.Work, "--pr", "3")
	if r.code != gitgrant.ExitInvalid {
		t.Fatalf("exit %d, want 1: the base allows 4h\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, "::error file=requests/orders-db/alice-rw.yaml,line=3,") {
		t.Errorf("no annotation on the duration line:\n%s", r.stdout)
	}
	cs := p.comments(3)
	if len(cs) != 1 {
		t.Fatalf("%d comments, want 1", len(cs))
	}
	wantContains(t, "comment", cs[0].Body, "❌ 1 error", "This pull request changes `gitgrant.yaml`", "`requests/orders-db/alice-rw.yaml:3:11`", "4h")
	if runs := p.gh.CheckRuns(p.repo); len(runs) != 1 || runs[0].Conclusion != "failure" || runs[0].HeadSHA != head {
		t.Errorf("check runs = %+v, want one failure", runs)
	}

	// The same request once the raised limit is on the base passes.
	p2 := newPRWorld(t)
	p2.land(testNow.Add(-24*time.Hour), map[string]string{"gitgrant.yaml": raised})
	p2.open(4, "alice", map[string]string{"requests/orders-db/alice-rw.yaml": "requester: alice\ngrants: [{provider: orders-db, role: readwrite}]\nduration: 8h\nreason: Long migration\n"})
	if r := runCLI(t, p2.vars, "validate", "--repo", p2.w.Work, "--pr", "4"); r.code != gitgrant.ExitOK {
		t.Errorf("after the limit merged: exit %d, want 0\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}

// TestValidatePRFromEvent: bare --pr in a pull_request workflow reads the
// number from GITHUB_EVENT_PATH; a checkout without the commits reads
// them through the API; where check runs are refused (a fork's token), a
// commit status records the result instead.
func TestValidatePRFromEvent(t *testing.T) {
	t.Parallel()
	p := newPRWorld(t)
	head := p.open(5, "bob", map[string]string{
		"requests/orders-db/bob-rw.yaml": "requester: bob\ngrants: [{provider: orders-db, role: readwrite}]\nduration: forever\nreason: Fix refunds\n",
	})
	event := filepath.Join(t.TempDir(), "event.json")
	if err := os.WriteFile(event, []byte(fmt.Sprintf(`{"action":"synchronize","number":5,"pull_request":{"number":5,"user":{"login":"bob"},"base":{"ref":"main","sha":%q},"head":{"ref":"pr-5","sha":%q}}}`, p.base, head)), 0o644); err != nil {
		t.Fatal(err)
	}
	p.gh.Inject(ghfake.Fault{Method: "POST", PathContains: "/check-runs", Status: 403, Body: `{"message":"Resource not accessible by integration"}`, Times: 1})
	summary := filepath.Join(t.TempDir(), "summary.md")
	elsewhere := t.TempDir() // not a git repository: every file through the API
	r := runCLI(t, p.with("GITHUB_ACTIONS", "true", "GITHUB_EVENT_PATH", event, "GITHUB_EVENT_NAME", "pull_request", "GITHUB_STEP_SUMMARY", summary),
		"validate", "--repo", elsewhere, "--pr")
	if r.code != gitgrant.ExitInvalid {
		t.Fatalf("exit %d, want 1\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, "::error file=requests/orders-db/bob-rw.yaml,line=3,") {
		t.Errorf("annotations:\n%s", r.stdout)
	}
	if n := p.gh.Count("GET", "/contents/"); n == 0 {
		t.Error("no contents API call, yet the checkout has no commits")
	}
	st := p.gh.Statuses(p.repo)
	if len(st) != 1 || st[0].State != "failure" || st[0].SHA != head || st[0].Context != "gitgrant validate" {
		t.Errorf("statuses = %+v, want one failure on the head", st)
	}
	if cs := p.comments(5); len(cs) != 1 || !strings.Contains(cs[0].Body, "bob-rw.yaml:3") {
		t.Errorf("comments = %+v", cs)
	}
	if s, err := os.ReadFile(summary); err != nil || !strings.Contains(string(s), "### gitgrant: ❌ 1 error") {
		t.Errorf("job summary = %q, %v", s, err)
	}
	if strings.Contains(r.stdout+r.stderr, "test-token") {
		t.Error("the token was printed")
	}
}

func TestValidatePRUsage(t *testing.T) {
	t.Parallel()
	p := newPRWorld(t)
	p.open(2, "alice", map[string]string{"README.md": "docs only\n"})
	review := filepath.Join(t.TempDir(), "review.json")
	if err := os.WriteFile(review, []byte(`{"action":"submitted","review":{"id":1,"state":"approved","user":{"login":"carol"}},"pull_request":{"number":2,"user":{"login":"alice"}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	push := filepath.Join(t.TempDir(), "push.json")
	if err := os.WriteFile(push, []byte(`{"ref":"refs/heads/main","after":"abc"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		vars map[string]string
		args []string
		code int
		want string
	}{
		{"no token", map[string]string{"GITHUB_REPOSITORY": "acme/access"}, []string{"--pr", "2"}, gitgrant.ExitUsage, "needs GITHUB_REPOSITORY and GITHUB_TOKEN"},
		{"no event", p.vars, []string{"--pr"}, gitgrant.ExitUsage, "GITHUB_EVENT_PATH is not set"},
		{"paths with --pr", p.vars, []string{"--pr", "2", "requests/x.yaml"}, gitgrant.ExitUsage, "do not name PATHs"},
		{"bad number", p.vars, []string{"--pr=abc"}, gitgrant.ExitUsage, "pull request number"},
		{"unknown pull request", p.vars, []string{"--pr", "99"}, gitgrant.ExitSystem, "pull request #99"},
		{"nothing to check", p.vars, []string{"--pr", "2"}, gitgrant.ExitOK, ""},
		{"a pull_request_review event", p.with("GITHUB_EVENT_PATH", review), []string{"--pr"}, gitgrant.ExitOK, ""},
		{"a push event", p.with("GITHUB_EVENT_PATH", push, "GITHUB_EVENT_NAME", "push"), []string{"--pr"}, gitgrant.ExitUsage, "not a pull_request event"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runCLI(t, tc.vars, append([]string{"validate", "--repo", p.w.Work}, tc.args...)...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("exit %d (want %d), stderr %q (want %q)", r.code, tc.code, r.stderr, tc.want)
			}
		})
	}
	if cs := p.comments(2); len(cs) != 0 {
		t.Errorf("a pull request that touches no request got a comment: %+v", cs)
	}
	if runs := p.gh.CheckRuns(p.repo); len(runs) != 2 || runs[0].Conclusion != "success" || runs[1].Conclusion != "success" {
		t.Errorf("check runs = %+v, want two successes (by number, by review event)", runs)
	}
}

// TestValidatePRBrokenBase: with gitgrant.yaml broken on the base, the
// pull request that fixes it cannot also carry requests judged by the fix.
func TestValidatePRBrokenBase(t *testing.T) {
	t.Parallel()
	p := newPRWorld(t)
	p.land(testNow.Add(-24*time.Hour), map[string]string{"gitgrant.yaml": "providers: [not, a, map]\n"})
	p.open(9, "alice", map[string]string{
		"gitgrant.yaml":                    prConfig,
		"requests/orders-db/alice-ro.yaml": "requester: alice\ngrants: [{provider: orders-db, role: readonly}]\nduration: 1h\nreason: Read refunds\n",
		"requests/orders-db/README.md":     "",
	})
	p.validate(9, gitgrant.ExitInvalid)
	cs := p.comments(9)
	if len(cs) != 1 {
		t.Fatalf("%d comments, want 1", len(cs))
	}
	wantContains(t, "comment", cs[0].Body, "is missing or invalid, so the requests in this pull request cannot be judged", "This pull request changes `gitgrant.yaml`")
	if strings.Contains(cs[0].Body, "README.md") || strings.Contains(cs[0].Body, "#### If merged") {
		t.Errorf("a README is not a request, and nothing is planned on a broken base:\n%s", cs[0].Body)
	}
}

// TestValidatePRGitHubFailsForOne: when GitHub cannot be asked about one
// request's reviews, the rest is still checked and commented, the comment
// says what was not checked, and the exit code is 3 (try again).
func TestValidatePRGitHubFailsForOne(t *testing.T) {
	t.Parallel()
	p := newPRWorld(t)
	p.open(6, "alice", map[string]string{
		"requests/orders-db/alice-rw.yaml": "requester: alice\ngrants: [{provider: orders-db, role: readwrite}]\nduration: 2h\nreason: Repair stuck orders\n",
	})
	p.gh.Inject(ghfake.Fault{Method: "GET", PathContains: "/pulls/6/reviews", Status: 403, Body: `{"message":"Resource not accessible by integration"}`, Times: 1})
	p.validate(6, gitgrant.ExitSystem)
	cs := p.comments(6)
	if len(cs) != 1 || !strings.Contains(cs[0].Body, "approvals not checked") || !strings.Contains(cs[0].Body, "| not checked |") {
		t.Errorf("comments = %+v", cs)
	}
	if runs := p.gh.CheckRuns(p.repo); len(runs) != 1 || runs[0].Conclusion != "neutral" {
		t.Errorf("check runs = %+v, want neutral: the files are valid, the approvals unknown", runs)
	}
}

// TestValidatePRTeamsUnreadable: with a token that may not read team
// membership (the Actions GITHUB_TOKEN gets 404 for the membership and
// the team), a team member's approval is not reported as missing: the
// comment and the job summary say that the token cannot read the team,
// and how to fix it.
func TestValidatePRTeamsUnreadable(t *testing.T) {
	t.Parallel()
	p := newPRWorld(t)
	head := p.open(8, "alice", map[string]string{
		"requests/orders-db/alice-rw.yaml": "requester: alice\ngrants: [{provider: orders-db, role: readwrite}]\nduration: 2h\nreason: Repair stuck orders\n",
	})
	p.gh.AddReview(p.repo, 8, ghfake.Review{User: "dave", State: "APPROVED", CommitID: head, SubmittedAt: testNow.Add(-time.Minute)})
	p.gh.Inject(ghfake.Fault{Method: "GET", PathContains: "/orgs/acme/teams/", Status: 404, Body: `{"message":"Not Found"}`, Times: 100})
	summary := filepath.Join(t.TempDir(), "summary.md")
	r := runCLI(t, p.with("GITHUB_ACTIONS", "true", "GITHUB_STEP_SUMMARY", summary), "validate", "--repo", p.w.Work, "--pr", "8")
	if r.code != gitgrant.ExitSystem {
		t.Fatalf("exit %d, want 3\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	s, err := os.ReadFile(summary)
	if err != nil {
		t.Fatal(err)
	}
	cs := p.comments(8)
	if len(cs) != 1 {
		t.Fatalf("comments = %+v, want one", cs)
	}
	for what, text := range map[string]string{"comment": cs[0].Body, "job summary": string(s), "stderr": r.stderr} {
		text = strings.ReplaceAll(text, `\`, "") // Markdown escapes, as in GITHUB\_TOKEN
		wantContains(t, what, text, "team acme/dba: the token cannot see the team", "Members: read", "read:org", "GITHUB_TOKEN")
		if strings.Contains(text, "missing") || strings.Contains(text, "not a code owner") {
			t.Errorf("%s reports an approval missing:\n%s", what, text)
		}
	}
}

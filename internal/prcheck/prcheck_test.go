package prcheck_test

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
	"github.com/gitgrant/gitgrant/internal/prcheck"
	"github.com/gitgrant/gitgrant/internal/render"
	"github.com/gitgrant/gitgrant/internal/testing/fakeclock"
)

var t0 = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)

const config = `version: 1
identities:
  alice: {principals: {orders-db: alice}}
providers:
  orders-db:
    type: postgres
    dsn_env: ORDERS_DB_DSN
    roles:
      readwrite: {approvals: 1, max_duration: 4h}
`

// A pull request that changes the policy files is told, in its comment,
// whose approval puts the change in force: a code owner of each file at
// the base commit.
func TestPolicyChangeInTheComment(t *testing.T) {
	t.Parallel()
	gh := ghfake.New(func() time.Time { return t0 })
	t.Cleanup(gh.Close)
	repo := gh.AddRepo("acme", "access", "main")
	gh.AddTeamMember("acme", "security", "sam")
	base := gh.AddCommit(repo, ghfake.Commit{Author: "admin", Committer: "admin", Date: t0}, map[string]string{
		"gitgrant.yaml":      config,
		".github/CODEOWNERS": "/requests/ @bob\n/gitgrant.yaml @acme/security\n/.github/ @acme/security\n",
	})
	head := gh.AddCommit(repo, ghfake.Commit{Parents: []string{base.SHA}, Author: "alice", Committer: "alice", Date: t0}, map[string]string{
		"gitgrant.yaml": strings.Replace(config, "approvals: 1", "approvals: 0", 1),
	})
	pr := gh.AddPull(repo, ghfake.Pull{User: "alice", HeadSHA: head.SHA, BaseSHA: base.SHA, Commits: []string{head.SHA}})
	gh.AddReview(repo, pr.Number, ghfake.Review{User: "bob", State: gitgrant.ReviewApproved, CommitID: head.SHA})

	cl, err := ghapi.New(ghapi.Config{APIURL: gh.BaseURL(), Repository: "acme/access"}, ghapi.Options{Clock: fakeclock.NewAuto(t0)})
	if err != nil {
		t.Fatal(err)
	}
	v := approval.New(cl, nil, nil)
	v.Clock = fakeclock.New(t0)
	c := &prcheck.Checker{Client: cl, Verifier: v, Clock: fakeclock.New(t0)}
	res, err := c.Check(context.Background(), pr.Number)
	if err != nil {
		t.Fatal(err)
	}
	comment := prcheck.Comment(res, 10)
	want := &render.PRPolicyChange{
		Files: []render.PRPolicyFile{{Path: "gitgrant.yaml", Missing: true, Owners: []string{"@acme/security"}}},
		Reasons: []string{
			"gitgrant.yaml needs the approval of a code owner of it at the base commit, on the final head commit, and has none (code owners: @acme/security)",
			"@bob is not a code owner of gitgrant.yaml at the base commit (review 1)",
		},
	}
	if diff := cmp.Diff(want, comment.PolicyChange); diff != "" {
		t.Errorf("policy change (-want +got):\n%s", diff)
	}
	var b strings.Builder
	if err := render.PRCommentMarkdown(&b, comment); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"policy change waiting for a code owner", "#### Policy change", "| `gitgrant.yaml` | – | `@acme/security` |"} {
		if !strings.Contains(b.String(), s) {
			t.Errorf("comment lacks %q:\n%s", s, b.String())
		}
	}
}

package render

import (
	"bytes"
	"path/filepath"
	"testing"
	"time"

	"github.com/gitgrant/gitgrant/internal/testing/golden"

	"github.com/gitgrant/gitgrant"
)

func samplePlan() gitgrant.Plan {
	at := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	return gitgrant.Plan{
		At: at,
		Entries: []gitgrant.Entry{
			{Path: "requests/orders-db/alice.yaml", Requester: "alice", Status: gitgrant.StatusActive, Approvers: []string{"bob"},
				Grants: []gitgrant.DesiredGrant{{Provider: "orders-db", Role: "readwrite", Principal: "alice", Window: gitgrant.Window{Start: at.Add(-time.Hour), End: at.Add(150 * time.Minute)}}}},
			{Path: "requests/orders-db/carol.yaml", Requester: "carol", Status: gitgrant.StatusRejected, Reasons: []string{"self-approval by carol does not count", "needs 1 approval, has 0"},
				Grants: []gitgrant.DesiredGrant{{Provider: "orders-db", Role: "readwrite", Principal: "carol", Window: gitgrant.Window{Start: at, End: at.Add(4 * time.Hour)}, Clamped: true}}},
		},
		Actions: []gitgrant.Action{
			{Op: gitgrant.OpRevoke, Provider: "orders-db", Role: "readwrite", Principal: "mallory", Reason: "drift: not backed by an active request or a standing entry"},
			{Op: gitgrant.OpGrant, Provider: "orders-db", Role: "readwrite", Principal: "alice", Expires: at.Add(150 * time.Minute), Reason: "requests/orders-db/alice.yaml until 2026-11-22T14:30:00Z", Request: "requests/orders-db/alice.yaml"},
		},
	}
}

func TestPlanText(t *testing.T) {
	var b bytes.Buffer
	if err := PlanText(&b, samplePlan()); err != nil {
		t.Fatal(err)
	}
	golden.Check(t, filepath.Join("testdata", "plan.txt"), b.Bytes())
}

func TestPlanMarkdownFolds(t *testing.T) {
	var b bytes.Buffer
	if err := PlanMarkdown(&b, samplePlan(), 1); err != nil {
		t.Fatal(err)
	}
	golden.Check(t, filepath.Join("testdata", "plan-folded.md"), b.Bytes())
	b.Reset()
	if err := PlanMarkdown(&b, samplePlan(), 10); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b.Bytes(), []byte("<details>")) {
		t.Errorf("short tables must not fold:\n%s", b.String())
	}
}

func TestGitHubAnnotationsEscape(t *testing.T) {
	var b bytes.Buffer
	GitHubAnnotations(&b, gitgrant.Diagnostics{{Position: gitgrant.Position{File: "a,b:c.yaml", Line: 2, Column: 3}, Field: "x", Message: "100% wrong\nreally", Severity: gitgrant.SeverityWarning}})
	want := "::warning file=a%2Cb%3Ac.yaml,line=2,col=3,title=gitgrant%3A x::100%25 wrong%0Areally\n"
	if b.String() != want {
		t.Errorf("got %q\nwant %q", b.String(), want)
	}
}

// The comment on a request's pull request after a pass: what was granted
// until when, what was revoked and why; hostile principals stay text.
func TestAccessCommentGolden(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	var b bytes.Buffer
	err := AccessComment(&b, "requests/db/alice`s.yaml", []AccessChange{
		{Op: gitgrant.OpGrant, Provider: "db", Role: "ro", Principal: "alice", Until: at.Add(4 * time.Hour)},
		{Op: gitgrant.OpRevoke, Provider: "db", Role: "rw", Principal: "@org/security ✅", At: at, Cause: gitgrant.CauseExpired},
		{Op: gitgrant.OpRevoke, Provider: "okta", Role: "ops", Principal: "alice@example.com", At: at, Cause: gitgrant.CausePolicy},
	})
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, filepath.Join("testdata", "access-comment.md"), b.Bytes())
}

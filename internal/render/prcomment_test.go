package render

import (
	"bytes"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/gitgrant/gitgrant/internal/testing/golden"

	"github.com/gitgrant/gitgrant"
)

// The comment's every part: a policy change, an emergency, a request
// blocked for more than approvals, one GitHub could not be asked about,
// a removal, problems, and tables long enough to fold.
func TestPRCommentMarkdown(t *testing.T) {
	t.Parallel()
	c := PRComment{
		Number: 12, BaseSHA: "0123456789abcdef0123", HeadSHA: "fedcba9876543210fedc",
		ConfigChanged: true, OwnersChanged: true, FoldAfter: 3,
		PolicyChange: &PRPolicyChange{
			Files: []PRPolicyFile{
				{Path: "gitgrant.yaml", ApprovedBy: []string{"@sam"}},
				{Path: ".github/CODEOWNERS", Missing: true, Owners: []string{"@acme/security"}},
				{Path: "docs/CODEOWNERS", Removed: true, Missing: true},
			},
			Reasons: []string{
				".github/CODEOWNERS needs the approval of a code owner of it at the base commit, on the final head commit, and has none (code owners: @acme/security)",
				"@mallory is not a code owner of .github/CODEOWNERS at the base commit (review 3)",
				"docs/CODEOWNERS needs the approval of a code owner of it at the base commit, on the final head commit, and has none",
			},
		},
		Requests: []PRRequest{
			{Path: "requests/db/erin.yaml", Requester: "erin", Beneficiary: "erin", Emergency: true, Reason: "Outage | INC-9",
				Grants:    []PRGrant{{Provider: "db", Role: "admin", Principal: "erin_pg", Duration: gitgrant.Duration(8 * time.Hour), Max: gitgrant.Duration(time.Hour)}},
				Previewed: true, Ready: true,
				Needs:   []PRNeed{{Provider: "db", Role: "admin", Missing: 2, Owners: []string{"@acme/dba"}, Approvers: []string{"@acme/dba"}}},
				Reasons: []string{"grants.0: db/admin needs 2 code-owner approval(s) on the final head commit, has 0"}},
			{Path: "requests/db/mallory.yaml", Requester: "mallory", Beneficiary: "svc-report",
				Grants: []PRGrant{
					{Provider: "db", Role: "readonly", Principal: "svc_report", Expires: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), Max: gitgrant.Duration(7 * 24 * time.Hour)},
					{Provider: "db", Role: "reporting", Starts: time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC), Duration: gitgrant.Duration(time.Hour)},
				},
				Previewed: true,
				Needs:     []PRNeed{{Provider: "db", Role: "readonly", Missing: 1, Owners: []string{"@bob"}}},
				Reasons:   []string{"the pull request was opened by @mallory, not by the requester @svc-report, and policy.allow_on_behalf is false at the base commit", "grants.0: db/readonly needs 1 code-owner approval(s) on the final head commit, has 0"}},
			{Path: "requests/db/nobody.yaml", Requester: "carol", Beneficiary: "carol",
				Grants:       []PRGrant{{Provider: "db", Role: "readonly", Duration: gitgrant.Duration(30 * time.Minute)}},
				PreviewError: "github: list reviews of pull request #12: 502 Bad Gateway"},
			{Path: "requests/db/broken.yaml", Errors: 1},
		},
		Removed: []string{"requests/db/old.yaml"},
		Diagnostics: gitgrant.Diagnostics{
			{Position: gitgrant.Position{File: "requests/db/broken.yaml", Line: 2, Column: 3}, Severity: gitgrant.SeverityError, Field: "grants.0.role", Message: "role \"root\" is not declared", Hint: "use one of: admin, readonly"},
			{Position: gitgrant.Position{File: "gitgrant.yaml", Line: 9, Column: 1}, Severity: gitgrant.SeverityWarning, Message: "identity dave is unused"},
		},
		Notes: []string{"GitHub lists only the first 3000 files of a pull request; files past them were not checked."},
	}
	for i := range 3 {
		c.Diagnostics = append(c.Diagnostics, gitgrant.Diagnostic{Position: gitgrant.Position{File: fmt.Sprintf("requests/db/x%d.yaml", i), Line: 1}, Severity: gitgrant.SeverityWarning, Message: "<b>html</b> is escaped"})
	}
	var b bytes.Buffer
	if err := PRCommentMarkdown(&b, c); err != nil {
		t.Fatal(err)
	}
	golden.Check(t, filepath.Join("testdata", "prcomment.md"), b.Bytes())
	if got, want := c.Headline(), "❌ 1 error, 4 warnings, 1 request ready to grant on merge, 1 request that merging would not grant, 1 request removed (revoked on merge), policy change waiting for a code owner"; got != want {
		t.Errorf("headline = %q, want %q", got, want)
	}
}

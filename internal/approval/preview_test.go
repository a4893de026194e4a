package approval_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/approval"
	"github.com/gitgrant/gitgrant/schema"
)

// What `validate --pr` shows on an open pull request: what is missing,
// and from whom, judged by the base.
func TestPreview(t *testing.T) {
	t.Parallel()
	type want struct {
		Ready     bool
		Emergency bool
		Needs     []approval.Need
		Reasons   []string
	}
	tests := []struct {
		name    string
		content string
		author  string
		extra   map[string]string
		reviews []string
		want    want
	}{
		{
			name: "no review yet", content: request("alice", "readwrite"), author: "alice",
			want: want{
				Needs:   []approval.Need{{Grant: gitgrant.GrantRef{Provider: "orders-db", Role: "readwrite"}, Missing: 1, Owners: []string{"@bob", "@carol", "@acme/dba"}}},
				Reasons: []string{"grants.0: orders-db/readwrite needs 1 code-owner approval(s) on the final head commit, has 0"},
			},
		},
		{
			name: "approved", content: request("alice", "readwrite"), author: "alice", reviews: []string{"bob"},
			want: want{Ready: true},
		},
		{
			name: "one of two, with the role's approvers", content: request("alice", "admin"), author: "alice", reviews: []string{"carol"},
			want: want{
				Needs: []approval.Need{{Grant: gitgrant.GrantRef{Provider: "orders-db", Role: "admin"}, Missing: 1,
					Owners: []string{"@bob", "@carol", "@acme/dba"}, Approvers: []string{"@acme/dba", "carol"}}},
				Reasons: []string{"grants.0: orders-db/admin needs 2 code-owner approval(s) on the final head commit, has 1 (@carol); approvers: @acme/dba, carol"},
			},
		},
		{
			name: "owners come from the base, not from the pull request's CODEOWNERS", content: request("alice", "readwrite"), author: "alice",
			extra: map[string]string{".github/CODEOWNERS": "* @mallory\n"}, reviews: []string{"mallory"},
			want: want{
				Needs: []approval.Need{{Grant: gitgrant.GrantRef{Provider: "orders-db", Role: "readwrite"}, Missing: 1, Owners: []string{"@bob", "@carol", "@acme/dba"}}},
				Reasons: []string{
					noApprovalRW,
					"@mallory is not a code owner of requests/orders-db/alice.yaml at the base commit (review 1)",
				},
			},
		},
		{
			name: "emergency by a break-glass member", content: request("erin", "readwrite", "emergency: true\n"), author: "erin",
			want: want{
				Ready: true, Emergency: true,
				Needs:   []approval.Need{{Grant: gitgrant.GrantRef{Provider: "orders-db", Role: "readwrite"}, Missing: 1, Owners: []string{"@bob", "@carol", "@acme/dba"}}},
				Reasons: []string{"grants.0: orders-db/readwrite needs 1 code-owner approval(s) on the final head commit, has 0"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			changes := map[string]string{path: tt.content}
			for k, v := range tt.extra {
				changes[k] = v
			}
			p := w.openPR(tt.author).push(tt.author, tt.author, changes)
			for _, r := range tt.reviews {
				p.review(r, gitgrant.ReviewApproved)
			}
			n := p.leaveOpen()
			req, diags := schema.LoadRequest(path, []byte(tt.content))
			if req == nil {
				t.Fatal(diags)
			}
			got, err := w.verifier(nil).Preview(context.Background(), n, path, req)
			if err != nil {
				t.Fatal(err)
			}
			var reasons []string
			for _, r := range got.Evidence.Reasons {
				reasons = append(reasons, shaRE.ReplaceAllString(r, "<sha>"))
			}
			if diff := cmp.Diff(tt.want, want{Ready: got.Ready, Emergency: got.Evidence.Emergency, Needs: got.Needs, Reasons: reasons}); diff != "" {
				t.Errorf("preview (-want +got):\n%s", diff)
			}
			if got.Evidence.Approved {
				t.Error("a preview is never approved evidence")
			}
			if len(w.gh.Issues(w.repo)) != 0 {
				t.Error("a preview opened an issue")
			}
		})
	}
}

// What `validate --pr` shows on a pull request that changes the policy:
// which code owners must approve each file, judged by the base.
func TestPreviewPolicyChange(t *testing.T) {
	t.Parallel()
	security := []string{"@acme/security"}
	tests := []struct {
		name    string
		reviews []string
		want    approval.PolicyPreview
		reasons []string
	}{
		{
			name: "no review yet",
			want: approval.PolicyPreview{Needs: []approval.PolicyNeed{{Path: "gitgrant.yaml", Owners: security}, {Path: ".github/CODEOWNERS", Owners: security}}},
			reasons: []string{
				"gitgrant.yaml needs the approval of a code owner of it at the base commit, on the final head commit, and has none (code owners: @acme/security)",
				".github/CODEOWNERS needs the approval of a code owner of it at the base commit, on the final head commit, and has none (code owners: @acme/security)",
			},
		},
		{
			name: "a requests owner approved", reviews: []string{"bob"},
			want: approval.PolicyPreview{Needs: []approval.PolicyNeed{{Path: "gitgrant.yaml", Owners: security}, {Path: ".github/CODEOWNERS", Owners: security}}},
			reasons: []string{
				"gitgrant.yaml needs the approval of a code owner of it at the base commit, on the final head commit, and has none (code owners: @acme/security)",
				"@bob is not a code owner of gitgrant.yaml at the base commit (review 1)",
				".github/CODEOWNERS needs the approval of a code owner of it at the base commit, on the final head commit, and has none (code owners: @acme/security)",
				"@bob is not a code owner of .github/CODEOWNERS at the base commit (review 1)",
			},
		},
		{name: "a security owner approved", reviews: []string{"sam"}, want: approval.PolicyPreview{Ready: true}},
		{
			name: "another security owner requested changes", reviews: []string{"sam", "sue:" + gitgrant.ReviewChangesRequested},
			want:    approval.PolicyPreview{Blocked: true},
			reasons: []string{"code owner @sue requested changes (review 2) and has not approved or been dismissed since"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			p := w.openPR("alice").push("alice", "alice", map[string]string{
				"gitgrant.yaml":      readTestdata(t, "gitgrant.yaml") + "# tidy\n",
				".github/CODEOWNERS": readTestdata(t, "CODEOWNERS") + "/requests/billing/ @carol\n",
				path:                 request("alice", "readwrite"),
			})
			for _, r := range tt.reviews {
				who, state, ok := strings.Cut(r, ":")
				if !ok {
					state = gitgrant.ReviewApproved
				}
				p.review(who, state)
			}
			n := p.leaveOpen()
			got, err := w.verifier(nil).PreviewPolicyChange(context.Background(), n, []string{path, "gitgrant.yaml", ".github/CODEOWNERS", "docs/CODEOWNERS"})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.reasons, got.Evidence.Reasons); diff != "" {
				t.Errorf("reasons (-want +got):\n%s", diff)
			}
			got.Evidence = gitgrant.PolicyEvidence{}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("preview (-want +got):\n%s", diff)
			}
		})
	}
}

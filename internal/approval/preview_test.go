package approval_test

import (
	"context"
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
					"grants.0: orders-db/readwrite needs 1 code-owner approval(s) on the final head commit, has 0",
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
				p.review(r, approval.Approved)
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

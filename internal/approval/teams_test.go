package approval_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/approval"
	"github.com/gitgrant/gitgrant/internal/ghfake"
)

// A token that may not read team membership (the Actions GITHUB_TOKEN:
// 404 on the membership and on the team, or 403) never turns a team
// member's approval into "approval missing": the verdict is an error that
// says so and how to fix it, unless the approval does not depend on a
// team (then it stands), while a change request that may be a team's
// fails closed.
func TestTeamsUnreadable(t *testing.T) {
	t.Parallel()
	rw := request("alice", "readwrite")
	tests := []struct {
		name   string
		status int
		build  func(w *world) approval.Input
		want   verdict // when no error is wanted
		// wantErr: the verification fails with a *TeamAccessError naming
		// this team.
		wantErr string
	}{
		{
			name:    "team member's approval, 404 (GITHUB_TOKEN)",
			status:  404,
			build:   approvedMerge("alice", rw, "dave"),
			wantErr: "acme/dba",
		},
		{
			name:    "team member's approval, 403",
			status:  403,
			build:   approvedMerge("alice", rw, "dave"),
			wantErr: "acme/dba",
		},
		{
			name:   "a user owner's approval does not depend on the team",
			status: 403,
			build:  merged("alice", rw, approves("mallory"), approves("bob")),
			want:   verdict{Approved: true, Approvers: []string{"bob via @bob"}},
		},
		{
			name:    "a change request that may be a team member's fails closed",
			status:  403,
			build:   merged("alice", rw, approves("bob"), requestsChanges("mallory")),
			wantErr: "acme/dba",
		},
		{
			name:    "a team in the role's approvers",
			status:  404,
			build:   merged("alice", request("alice", "admin"), approves("carol"), approves("bob")),
			wantErr: "acme/dba",
		},
		{
			name:   "a stale approval needs no team",
			status: 404,
			build: func(w *world) approval.Input {
				p := w.proposal("alice", rw).review("dave", gitgrant.ReviewApproved)
				return w.input(path, p.push("alice", "alice", file(request("alice", "readwrite", "ticket: INC-1\n"))).merge("merge", path))
			},
			want: rejected(noApprovalRW, "@dave approved commit <sha> (review 1), not the final head commit <sha>"),
		},
		{
			name:    "emergency by a break-glass team member",
			status:  404,
			build:   pushedToMain("grace", request("grace", "readwrite", "emergency: true\n")),
			wantErr: "acme/oncall",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			in := tt.build(w)
			w.gh.Inject(ghfake.Fault{Method: "GET", PathContains: "/orgs/acme/teams/", Status: tt.status,
				Body: `{"message":"` + map[int]string{403: "Resource not accessible by integration", 404: "Not Found"}[tt.status] + `"}`, Times: 1000})
			ev, err := w.verifier(nil).Verify(context.Background(), in)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(tt.want, verdictOf(ev)); diff != "" {
					t.Errorf("verdict (-want +got):\n%s", diff)
				}
				return
			}
			var denied *gitgrant.TeamAccessError
			if !errors.As(err, &denied) {
				t.Fatalf("got %+v, %v; want a TeamAccessError", verdictOf(ev), err)
			}
			if got := denied.Org + "/" + denied.Slug; got != tt.wantErr || denied.Status != tt.status {
				t.Errorf("TeamAccessError for %s (%d), want %s (%d)", got, denied.Status, tt.wantErr, tt.status)
			}
			var sys *gitgrant.SystemError
			if !errors.As(err, &sys) || sys.Retryable {
				t.Errorf("%v: want a system error that is not retryable (permissions do not fix themselves)", err)
			}
			if strings.Contains(err.Error(), "@") {
				t.Errorf("%q mentions someone: quoted in a pull request comment, it would ping them", err)
			}
			for _, want := range []string{"team " + tt.wantErr, "Members: read", "read:org", "GITHUB_TOKEN"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("%q lacks %q", err, want)
				}
			}
		})
	}
}

// A 404 on the membership of a team the token can read is "not a
// member", not a permission problem; a rate limit on it is retried, not
// reported as one.
func TestTeamMembershipAnswers(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := context.Background()
	if ok, err := w.cl.IsTeamMember(ctx, "acme", "dba", "dave"); err != nil || !ok {
		t.Errorf("dave in acme/dba = %v, %v; want true", ok, err)
	}
	if ok, err := w.cl.IsTeamMember(ctx, "acme", "dba", "mallory"); err != nil || ok {
		t.Errorf("mallory in acme/dba = %v, %v; want false", ok, err)
	}
	var denied *gitgrant.TeamAccessError
	if _, err := w.cl.IsTeamMember(ctx, "acme", "no-such-team", "dave"); !errors.As(err, &denied) || !strings.Contains(err.Error(), "if the team does not exist, correct CODEOWNERS") {
		t.Errorf("a team nobody can see: %v; want a TeamAccessError that names a typo as a cause", err)
	}
	w.gh.Inject(ghfake.Fault{Method: "GET", PathContains: "/memberships/", Status: 403,
		Header: map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1"}, Body: `{"message":"API rate limit exceeded"}`})
	if ok, err := w.cl.IsTeamMember(ctx, "acme", "dba", "dave"); errors.As(err, &denied) || (err == nil && !ok) {
		t.Errorf("after a rate limit: %v, %v; want dave found, or a rate-limit error", ok, err)
	}
}

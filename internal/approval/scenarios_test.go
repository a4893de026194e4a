package approval_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/approval"
	"github.com/gitgrant/gitgrant/internal/ghfake"
)

const path = "requests/orders-db/alice.yaml"

func file(content string) map[string]string { return map[string]string{path: content} }

func allowOnBehalf(cfg string) string {
	return strings.Replace(cfg, "allow_on_behalf: false", "allow_on_behalf: true", 1)
}

// TestScenarios is the adversarial table: each case builds a history on
// the fake GitHub and states the verdict, approved or the exact reasons.
func TestScenarios(t *testing.T) {
	t.Parallel()
	rw := request("alice", "readwrite")
	tests := []struct {
		name   string
		config []func(string) string
		build  func(w *world) approval.Input
		want   verdict
	}{
		{
			name:  "approved by a code owner on the final head (merge commit)",
			build: approvedMerge("alice", rw, "bob"),
			want:  approved("bob via @bob"),
		},
		{
			name: "stale approval after a new push",
			build: func(w *world) approval.Input {
				p := w.proposal("alice", rw).review("bob", gitgrant.ReviewApproved)
				return w.input(path, p.push("alice", "alice", file(request("alice", "readwrite", "ticket: INC-1\n"))).merge("merge", path))
			},
			want: rejected(noApprovalRW, "@bob approved commit <sha> (review 1), not the final head commit <sha>"),
		},
		{
			name:  "self-approval by the requester",
			build: approvedMerge("alice", rw, "alice"),
			want:  rejected(noApprovalRW, "@alice cannot approve: is the requester (review 1)"),
		},
		{
			name: "approval by a committer on the pull request",
			build: func(w *world) approval.Input {
				p := w.proposal("alice", rw).push("bob", "bob", map[string]string{"requests/orders-db/notes.md": "x"})
				return w.input(path, p.review("bob", gitgrant.ReviewApproved).merge("merge", path))
			},
			want: rejected(noApprovalRW, "@bob cannot approve: authored a commit of the pull request (<sha>) (review 1)"),
		},
		{
			name: "approval by someone who only committed (not authored) a commit",
			build: func(w *world) approval.Input {
				p := w.openPR("alice").push("alice", "carol", file(rw))
				return w.input(path, p.review("carol", gitgrant.ReviewApproved).merge("merge", path))
			},
			want: rejected(noApprovalRW, "@carol cannot approve: committed to the pull request (<sha>) (review 1)"),
		},
		{
			name:  "approval by a non-owner",
			build: approvedMerge("alice", rw, "mallory"),
			want:  rejected(noApprovalRW, "@mallory is not a code owner of requests/orders-db/alice.yaml at the base commit (review 1)"),
		},
		{
			name: "CODEOWNERS changed in the same pull request to make the approver an owner",
			build: func(w *world) approval.Input {
				p := w.openPR("alice").push("alice", "alice", map[string]string{path: rw, ".github/CODEOWNERS": "* @mallory\n"})
				return w.input(path, p.review("mallory", gitgrant.ReviewApproved).merge("squash", path))
			},
			want: rejected(noApprovalRW, "@mallory is not a code owner of requests/orders-db/alice.yaml at the base commit (review 1)"),
		},
		{
			name: "gitgrant.yaml changed in the same pull request to lower approvals",
			build: func(w *world) approval.Input {
				lowered := strings.Replace(readTestdata(w.t, "gitgrant.yaml"), "approvals: 2", "approvals: 1", 1)
				p := w.openPR("alice").push("alice", "alice", map[string]string{path: request("alice", "admin"), "gitgrant.yaml": lowered})
				return w.input(path, p.review("carol", gitgrant.ReviewApproved).merge("merge", path))
			},
			want: rejected(
				"grants.0: orders-db/admin needs 2 code-owner approval(s) on the final head commit, has 1 (@carol); approvers: @acme/dba, carol",
			).counting("carol via @carol"),
		},
		{
			name:  "team owner approval",
			build: approvedMerge("alice", rw, "dave"),
			want:  approved("dave via @acme/dba"),
		},
		{
			name: "an owner of an earlier, broader CODEOWNERS rule: the last match wins",
			build: func(w *world) approval.Input {
				p := w.proposal("alice", rw).review("paul", gitgrant.ReviewApproved) // @acme/platform owns "*"
				return w.input(path, p.merge("merge", path))
			},
			want: rejected(noApprovalRW, "@paul is not a code owner of requests/orders-db/alice.yaml at the base commit (review 1)"),
		},
		{
			name: "a team of another org in CODEOWNERS is not honoured",
			build: func(w *world) approval.Input {
				w.gh.AddTeamMember("evil-org", "dba", "oscar")
				w.pushMain("admin", map[string]string{".github/CODEOWNERS": "/requests/ @evil-org/dba\n"})
				p := w.proposal("alice", rw).review("oscar", gitgrant.ReviewApproved)
				return w.input(path, p.merge("merge", path))
			},
			want: rejected(noApprovalRW, "@oscar is not a code owner of requests/orders-db/alice.yaml at the base commit (review 1)"),
		},
		{
			name: "dismissed approval",
			build: func(w *world) approval.Input {
				p := w.proposal("alice", rw).review("bob", gitgrant.ReviewApproved)
				p.reviews[0].State = gitgrant.ReviewDismissed // GitHub turns a dismissed review's state into DISMISSED
				return w.input(path, p.merge("merge", path))
			},
			want: rejected(noApprovalRW, "@bob's review 1 was dismissed"),
		},
		{
			name:  "changes requested by another owner after an approval",
			build: merged("alice", rw, approves("bob"), requestsChanges("carol")),
			want:  rejected("code owner @carol requested changes (review 2) and has not approved or been dismissed since").counting("bob via @bob"),
		},
		{
			name:  "approval then changes requested by the same owner",
			build: merged("alice", rw, approves("bob"), requestsChanges("bob")),
			want:  rejected("code owner @bob requested changes (review 2) and has not approved or been dismissed since", noApprovalRW),
		},
		{
			name: "changes requested on an old commit still stands",
			build: func(w *world) approval.Input {
				p := w.proposal("alice", rw).review("carol", gitgrant.ReviewChangesRequested)
				p.push("alice", "alice", file(request("alice", "readwrite", "ticket: INC-2\n"))).review("bob", gitgrant.ReviewApproved)
				return w.input(path, p.merge("merge", path))
			},
			want: rejected("code owner @carol requested changes (review 1) and has not approved or been dismissed since").counting("bob via @bob"),
		},
		{
			name:  "changes requested then approved by the same owner",
			build: merged("alice", rw, requestsChanges("carol"), approves("carol")),
			want:  approved("carol via @carol"),
		},
		{
			name:  "changes requested by a non-owner does not block",
			build: merged("alice", rw, requestsChanges("mallory"), approves("bob")),
			want:  approved("bob via @bob"),
		},
		{
			name:  "a comment after an approval changes no state",
			build: merged("alice", rw, approves("bob"), comments("bob")),
			want:  approved("bob via @bob"),
		},
		{
			name:  "direct push to main",
			build: pushedToMain("alice", rw),
			want:  rejected("commit <sha> reached main without a merged pull request (a direct push or a bypass): it grants nothing"),
		},
		{
			name:  "admin merge without review",
			build: merged("alice", rw),
			want:  rejected(noApprovalRW),
		},
		{
			name: "squash merge",
			build: func(w *world) approval.Input {
				p := w.proposal("alice", rw).push("alice", "alice", file(request("alice", "readwrite", "ticket: INC-3\n")))
				return w.input(path, p.review("bob", gitgrant.ReviewApproved).merge("squash", path))
			},
			want: approved("bob via @bob"),
		},
		{
			name: "rebase merge: the file came in with a rebased commit, not merge_commit_sha",
			build: func(w *world) approval.Input {
				p := w.proposal("alice", rw).push("alice", "alice", map[string]string{"requests/orders-db/README.md": "notes"})
				return w.input(path, p.review("bob", gitgrant.ReviewApproved).merge("rebase", path))
			},
			want: approved("bob via @bob"),
		},
		{
			name: "request modified later by a direct push",
			build: func(w *world) approval.Input {
				w.proposal("alice", rw).review("bob", gitgrant.ReviewApproved).merge("merge", path)
				return w.input(path, w.pushMain("alice", file(request("alice", "readwrite", "ticket: INC-9\n"))))
			},
			want: rejected("commit <sha> reached main without a merged pull request (a direct push or a bypass): it grants nothing"),
		},
		{
			name: "request modified later by an unapproved pull request",
			build: func(w *world) approval.Input {
				w.proposal("alice", rw).review("bob", gitgrant.ReviewApproved).merge("merge", path)
				return w.input(path, w.proposal("alice", request("alice", "admin")).merge("squash", path))
			},
			want: rejected("grants.0: orders-db/admin needs 2 code-owner approval(s) on the final head commit, has 0; approvers: @acme/dba, carol"),
		},
		{
			name: "evil merge: the merge commit's content differs from the reviewed head",
			build: func(w *world) approval.Input {
				p := w.proposal("alice", rw).review("bob", gitgrant.ReviewApproved)
				files := copyFiles(w.gh.Commit(w.repo, p.head).Files)
				files[path] = request("alice", "admin")
				c := w.gh.AddCommit(w.repo, ghfake.Commit{Parents: []string{w.main, p.head}, Author: "alice", Committer: "alice", Message: "merge", Date: t0, Files: files}, nil)
				p.landedAs(c.SHA)
				return w.input(path, c.SHA)
			},
			want: rejected(
				"the content on main (blob <sha>) is not the content reviewed at pull request #1's head commit <sha> (blob <sha>)",
				"grants.0: orders-db/admin needs 2 code-owner approval(s) on the final head commit, has 0; approvers: @acme/dba, carol",
				"@bob is not in the approvers of orders-db/admin (@acme/dba, carol)",
			),
		},
		{
			name: "content pushed directly, then a reviewed pull request that does not touch it",
			build: func(w *world) approval.Input {
				w.pushMain("alice", file(rw))
				p := w.openPR("alice").push("alice", "alice", map[string]string{"requests/orders-db/README.md": "harmless"}).review("bob", gitgrant.ReviewApproved)
				p.merge("merge", path)
				// Even if GitHub linked the file's commit to this pull request,
				// its diff never showed the file.
				return w.input(path, w.main)
			},
			want: rejected(
				"pull request #1 did not change requests/orders-db/alice.yaml (the same content was already at its base commit <sha>), so its reviewers never saw it",
			).counting("bob via @bob"),
		},
		{
			name: "stale base: policy tightened on main while the pull request was open",
			build: func(w *world) approval.Input {
				p := w.proposal("alice", request("alice", "readonly")) // readonly: 0 approvals at its base
				tightened := strings.Replace(readTestdata(w.t, "gitgrant.yaml"), "readonly: {approvals: 0", "readonly: {approvals: 1", 1)
				w.pushMain("admin", map[string]string{"gitgrant.yaml": tightened})
				return w.input(path, p.merge("squash", path))
			},
			want: rejected("at the commit it was merged onto (<sha>): grants.0: orders-db/readonly needs 1 code-owner approval(s) on the final head commit, has 0"),
		},
		{
			name:  "stale base: an owner removed on main while the pull request was open",
			build: mainChangedUnder(map[string]string{".github/CODEOWNERS": "/requests/orders-db/ @carol\n"}),
			want: rejected(
				"at the commit it was merged onto (<sha>): grants.0: orders-db/readwrite needs 1 code-owner approval(s) on the final head commit, has 0",
				"@bob is not a code owner of requests/orders-db/alice.yaml at the commit it was merged onto (<sha>) (review 1)",
			).counting("bob via @bob"),
		},
		{
			name:  "logins compare without case, as on GitHub",
			build: approvedMerge("Alice", rw, "BOB"),
			want:  approved("BOB via @bob"),
		},
		{
			name: "an invited (pending) team member is not an owner",
			build: func(w *world) approval.Input {
				w.gh.SetTeamMembership("acme", "dba", "ivan", "pending")
				return w.approvedMerge("alice", rw, "ivan")
			},
			want: rejected(noApprovalRW, "@ivan is not a code owner of requests/orders-db/alice.yaml at the base commit (review 1)"),
		},
		{
			name: "a pull request with more commits than GitHub lists",
			build: func(w *world) approval.Input {
				p := w.proposal("alice", rw)
				for i := range approval.MaxPullCommits {
					p.push("alice", "alice", map[string]string{"requests/orders-db/README.md": fmt.Sprint(i)})
				}
				return w.input(path, p.review("bob", gitgrant.ReviewApproved).merge("squash", path))
			},
			want: rejected("pull request #1 has 250 or more commits; GitHub lists only 250, so its committers cannot all be checked").counting("bob via @bob"),
		},
		{
			name:  "requester other than the pull request author",
			build: approvedMerge("bob", rw, "carol"),
			want: rejected(
				"the pull request was opened by @bob, not by the requester @alice, and policy.allow_on_behalf is false at the base commit",
			).counting("carol via @carol"),
		},
		{
			name:   "requester other than the author, allowed by allow_on_behalf at base",
			config: []func(string) string{allowOnBehalf},
			build:  approvedMerge("bob", rw, "carol"),
			want:   approved("carol via @carol"),
		},
		{
			name:   "on behalf: the author cannot approve their own pull request",
			config: []func(string) string{allowOnBehalf},
			build:  approvedMerge("carol", rw, "carol"),
			want:   rejected(noApprovalRW, "@carol cannot approve: opened the pull request (review 1)"),
		},
		{
			name:  "emergency by a break-glass member, pushed directly",
			build: pushedToMain("erin", request("erin", "readwrite", "emergency: true\n")),
			want: verdict{Approved: true, Emergency: true, Reasons: []string{
				"commit <sha> reached main without a merged pull request (a direct push or a bypass): it grants nothing",
			}},
		},
		{
			name:  "emergency by a break-glass team member, admin-merged without review",
			build: merged("grace", request("grace", "readwrite", "emergency: true\n")),
			want: verdict{Approved: true, Emergency: true, Reasons: []string{
				noApprovalRW,
			}},
		},
		{
			name:  "emergency request that is also properly approved is an ordinary grant",
			build: approvedMerge("erin", request("erin", "readwrite", "emergency: true\n"), "bob"),
			want:  approved("bob via @bob"),
		},
		{
			name:  "emergency by a non-member",
			build: pushedToMain("mallory", request("mallory", "readwrite", "emergency: true\n")),
			want: rejected(
				"commit <sha> reached main without a merged pull request (a direct push or a bypass): it grants nothing",
				"emergency: @mallory is not a break-glass member in policy.break_glass.members at the base commit",
			),
		},
		{
			name:  "emergency naming a member, pushed by someone else",
			build: pushedToMain("mallory", request("erin", "readwrite", "emergency: true\n")),
			want: rejected(
				"commit <sha> reached main without a merged pull request (a direct push or a bypass): it grants nothing",
				"emergency: the change was written by @mallory, not by the requester @erin",
			),
		},
		{
			name:  "too few approvals for a two-approval role",
			build: approvedMerge("alice", request("alice", "admin"), "carol"),
			want: rejected(
				"grants.0: orders-db/admin needs 2 code-owner approval(s) on the final head commit, has 1 (@carol); approvers: @acme/dba, carol",
			).counting("carol via @carol"),
		},
		{
			name:  "two approvals for a two-approval role",
			build: merged("alice", request("alice", "admin"), approves("carol"), approves("dave")),
			want:  approved("carol via @carol", "dave via @acme/dba"),
		},
		{
			name:  "approver who is a code owner but not in the role's approvers",
			build: merged("alice", request("alice", "admin"), approves("carol"), approves("bob")),
			want: rejected(
				"grants.0: orders-db/admin needs 2 code-owner approval(s) on the final head commit, has 1 (@carol); approvers: @acme/dba, carol",
				"@bob is not in the approvers of orders-db/admin (@acme/dba, carol)",
			).counting("carol via @carol"),
		},
		{
			name: "approved pull request still open, file pushed to main directly",
			build: func(w *world) approval.Input {
				p := w.proposal("alice", rw).review("bob", gitgrant.ReviewApproved)
				p.leaveOpen()
				return w.input(path, w.pushMain("alice", file(rw)))
			},
			want: rejected("commit <sha> reached main without a merged pull request (a direct push or a bypass): it grants nothing"),
		},
		{
			name: "pull request merged into another branch",
			build: func(w *world) approval.Input {
				p := w.proposal("alice", rw).review("bob", gitgrant.ReviewApproved)
				p.mergeInto("staging")
				return w.input(path, p.head)
			},
			want: rejected("commit <sha> reached main without a merged pull request (a direct push or a bypass): it grants nothing"),
		},
		{
			name: "a commit of the pull request is linked to no GitHub account",
			build: func(w *world) approval.Input {
				p := w.proposal("alice", rw).push("", "", map[string]string{"requests/orders-db/README.md": "x"})
				return w.input(path, p.review("bob", gitgrant.ReviewApproved).merge("merge", path))
			},
			want: rejected(
				"commit <sha> of pull request #1 has an author or committer linked to no GitHub account, so gitgrant cannot prove an approver did not write it",
			).counting("bob via @bob"),
		},
		{
			name:  "no CODEOWNERS at the base commit",
			build: afterPush("admin", map[string]string{".github/CODEOWNERS": ""}, approvedMerge("alice", rw, "bob")),
			want: rejected(
				noApprovalRW,
				"there is no CODEOWNERS file at the base commit (.github/CODEOWNERS, CODEOWNERS or docs/CODEOWNERS), so nobody can approve",
				"@bob is not a code owner of requests/orders-db/alice.yaml at the base commit (review 1)",
			),
		},
		{
			name:  "no gitgrant.yaml at the base commit",
			build: afterPush("admin", map[string]string{"gitgrant.yaml": ""}, approvedMerge("alice", rw, "bob")),
			want:  rejected("gitgrant.yaml does not exist at the base commit (<sha>): no policy, no approval"),
		},
		{
			name:  "an invalid gitgrant.yaml where the pull request was merged",
			build: mainChangedUnder(map[string]string{"gitgrant.yaml": "version: 1\nproviders: [\n"}),
			want:  rejected("gitgrant.yaml is invalid (1 errors) at the commit it was merged onto (<sha>): no policy, no approval").counting("bob via @bob"),
		},
		{
			name: "role with no approvals still needs a merged pull request",
			build: func(w *world) approval.Input {
				return w.input(path, w.proposal("alice", request("alice", "readonly")).merge("squash", path))
			},
			want: verdict{Approved: true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, tt.config...)
			ev := judge(t, w.verifier(nil), tt.build(w), tt.want)
			if ev.Approved && !ev.Emergency && ev.MergedAt.IsZero() {
				t.Errorf("approved evidence without a merge time: %+v", ev)
			}
			if w.gh.Unprefixed() != 0 {
				t.Errorf("%d requests missed the API prefix", w.gh.Unprefixed())
			}
		})
	}
}

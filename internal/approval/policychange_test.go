package approval_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/approval"
	"github.com/gitgrant/gitgrant/internal/ghfake"
	"github.com/gitgrant/gitgrant/internal/testing/fakeclock"
)

// policyVerdict is the part of policy evidence the scenarios assert.
type policyVerdict struct {
	Verified  bool
	Approvers map[string][]string // path -> "login via entry"
	Reasons   []string
}

func policyVerdictOf(ev gitgrant.PolicyEvidence) policyVerdict {
	v := policyVerdict{Verified: ev.Verified}
	for _, f := range ev.Files {
		for _, a := range f.Approvers {
			if v.Approvers == nil {
				v.Approvers = map[string][]string{}
			}
			v.Approvers[f.Path] = append(v.Approvers[f.Path], a.Login+" via "+a.Via)
		}
	}
	for _, r := range ev.Reasons {
		v.Reasons = append(v.Reasons, shaRE.ReplaceAllString(r, "<sha>"))
	}
	return v
}

// TestPolicyChanges is the adversarial table for rule 13: a change to
// gitgrant.yaml or CODEOWNERS counts only through a merged pull request
// that the files' code owners approved, judged by the policy in force at
// its base and where it was merged.
func TestPolicyChanges(t *testing.T) {
	t.Parallel()
	cfg := func(w *world) string { return readTestdata(w.t, "gitgrant.yaml") }
	lowered := func(w *world) map[string]string {
		return map[string]string{"gitgrant.yaml": strings.Replace(cfg(w), "approvals: 2", "approvals: 1", 1)}
	}
	owners := func(w *world) map[string]string {
		return map[string]string{".github/CODEOWNERS": readTestdata(w.t, "CODEOWNERS") + "/requests/billing/ @carol\n"}
	}
	needsSecurity := "gitgrant.yaml needs the approval of a code owner of it at the base commit, on the final head commit, and has none (code owners: @acme/security)"
	tests := []struct {
		name    string
		trusted bool // judge by the trusted source (root) instead of raw files
		build   func(w *world) string
		want    policyVerdict
	}{
		{
			name: "approved by a code owner of the file",
			build: func(w *world) string {
				return w.openPR("alice").push("alice", "alice", lowered(w)).review("sam", gitgrant.ReviewApproved).merge("squash", "gitgrant.yaml")
			},
			want: policyVerdict{Verified: true, Approvers: map[string][]string{"gitgrant.yaml": {"sam via @acme/security"}}},
		},
		{
			name: "two files, each approved by its owners",
			build: func(w *world) string {
				changes := lowered(w)
				changes[".github/CODEOWNERS"] = owners(w)[".github/CODEOWNERS"]
				return w.openPR("alice").push("alice", "alice", changes).review("sam", gitgrant.ReviewApproved).merge("merge", "gitgrant.yaml")
			},
			want: policyVerdict{Verified: true, Approvers: map[string][]string{
				"gitgrant.yaml": {"sam via @acme/security"}, ".github/CODEOWNERS": {"sam via @acme/security"},
			}},
		},
		{
			name: "pushed directly",
			build: func(w *world) string {
				return w.pushMain("sam", lowered(w))
			},
			want: policyVerdict{Reasons: []string{
				"commit <sha> changed gitgrant.yaml on main without a merged pull request (a direct push or a bypass), so the change is not in force: revert it on main, then propose it in a pull request for the code owners of those files to approve",
			}},
		},
		{
			name: "approved by a code owner of requests only",
			build: func(w *world) string {
				return w.openPR("alice").push("alice", "alice", lowered(w)).review("bob", gitgrant.ReviewApproved).merge("squash", "gitgrant.yaml")
			},
			want: policyVerdict{Reasons: []string{
				needsSecurity,
				"@bob is not a code owner of gitgrant.yaml at the base commit (review 1)",
			}},
		},
		{
			name: "the pull request makes its approver an owner",
			build: func(w *world) string {
				changes := lowered(w)
				changes[".github/CODEOWNERS"] = "* @mallory\n"
				return w.openPR("alice").push("alice", "alice", changes).review("mallory", gitgrant.ReviewApproved).merge("merge", "gitgrant.yaml")
			},
			want: policyVerdict{Reasons: []string{
				needsSecurity,
				"@mallory is not a code owner of gitgrant.yaml at the base commit (review 1)",
				".github/CODEOWNERS needs the approval of a code owner of it at the base commit, on the final head commit, and has none (code owners: @acme/security)",
				"@mallory is not a code owner of .github/CODEOWNERS at the base commit (review 1)",
			}},
		},
		{
			name: "an owner approves their own pull request",
			build: func(w *world) string {
				return w.openPR("sam").push("sam", "sam", lowered(w)).review("sam", gitgrant.ReviewApproved).merge("squash", "gitgrant.yaml")
			},
			want: policyVerdict{Reasons: []string{needsSecurity, "@sam cannot approve: opened the pull request (review 1)"}},
		},
		{
			name: "an owner who committed to the pull request",
			build: func(w *world) string {
				p := w.openPR("alice").push("alice", "alice", lowered(w)).push("sue", "sue", map[string]string{"docs/notes.md": "x"})
				return p.review("sue", gitgrant.ReviewApproved).merge("merge", "gitgrant.yaml")
			},
			want: policyVerdict{Reasons: []string{needsSecurity, "@sue cannot approve: authored a commit of the pull request (<sha>) (review 1)"}},
		},
		{
			name: "an approval of an older head",
			build: func(w *world) string {
				p := w.openPR("alice").push("alice", "alice", lowered(w)).review("sam", gitgrant.ReviewApproved)
				return p.push("alice", "alice", map[string]string{"gitgrant.yaml": cfg(w) + "# more\n"}).merge("squash", "gitgrant.yaml")
			},
			want: policyVerdict{Reasons: []string{needsSecurity, "@sam approved commit <sha> (review 1), not the final head commit <sha>"}},
		},
		{
			name: "another owner's change request stands",
			build: func(w *world) string {
				return w.openPR("alice").push("alice", "alice", lowered(w)).review("sam", gitgrant.ReviewApproved).review("sue", gitgrant.ReviewChangesRequested).merge("merge", "gitgrant.yaml")
			},
			want: policyVerdict{Approvers: map[string][]string{"gitgrant.yaml": {"sam via @acme/security"}}, Reasons: []string{
				"code owner @sue requested changes (review 2) and has not approved or been dismissed since",
			}},
		},
		{
			name: "the merge commit differs from the reviewed head",
			build: func(w *world) string {
				p := w.openPR("alice").push("alice", "alice", lowered(w)).review("sam", gitgrant.ReviewApproved)
				files := copyFiles(w.gh.Commit(w.repo, p.head).Files)
				files["gitgrant.yaml"] = cfg(w) + "# evil\n"
				c := w.gh.AddCommit(w.repo, ghfake.Commit{Parents: []string{w.main, p.head}, Author: "alice", Committer: "alice", Date: t0, Files: files}, nil)
				p.landedAs(c.SHA)
				w.main = c.SHA
				return c.SHA
			},
			want: policyVerdict{Approvers: map[string][]string{"gitgrant.yaml": {"sam via @acme/security"}}, Reasons: []string{
				"gitgrant.yaml on main (blob <sha>) is not what pull request #1's final head commit <sha> holds (blob <sha>): the change on main was not reviewed there; revert it and propose it in a pull request",
			}},
		},
		{
			name: "an owner removed on main while the pull request was open",
			build: func(w *world) string {
				p := w.openPR("alice").push("alice", "alice", lowered(w)).review("sam", gitgrant.ReviewApproved)
				w.pushMain("admin", map[string]string{".github/CODEOWNERS": readTestdata(w.t, "CODEOWNERS") + "/gitgrant.yaml @sue\n"})
				return p.mergeWith("squash", "gitgrant.yaml", "Lower admin approvals")
			},
			want: policyVerdict{Approvers: map[string][]string{"gitgrant.yaml": {"sam via @acme/security"}}, Reasons: []string{
				"gitgrant.yaml needs the approval of a code owner of it at the commit it was merged onto (<sha>), on the final head commit, and has none (code owners: @sue)",
				"@sam is not a code owner of gitgrant.yaml at the commit it was merged onto (<sha>) (review 1)",
			}},
		},
		{
			name:    "the pull request's base holds an unverified change",
			trusted: true,
			build: func(w *world) string {
				w.pushMain("mallory", map[string]string{"gitgrant.yaml": cfg(w) + "# unverified\n"})
				return w.openPR("alice").push("alice", "alice", lowered(w)).review("sam", gitgrant.ReviewApproved).merge("squash", "gitgrant.yaml")
			},
			want: policyVerdict{Approvers: map[string][]string{"gitgrant.yaml": {"sam via @acme/security"}}, Reasons: []string{
				"the pull request's base commit <sha> holds a change to gitgrant.yaml (blob <sha>) that was never verified (the verified one is blob <sha>, from commit <sha>): revert that change through a pull request first, then base this change on it",
			}},
		},
		{
			name:    "the verified CODEOWNERS judges, not an unverified one at the base",
			trusted: true,
			build: func(w *world) string {
				w.pushMain("mallory", map[string]string{"CODEOWNERS": "* @mallory\n", ".github/CODEOWNERS": ""})
				return w.openPR("mallory").push("mallory", "mallory", lowered(w)).review("carol", gitgrant.ReviewApproved).merge("squash", "gitgrant.yaml")
			},
			want: policyVerdict{Reasons: []string{
				"gitgrant.yaml needs the approval of a code owner of it at the base commit's verified policy (from <sha>), on the final head commit, and has none (code owners: @acme/security)",
				"@carol is not a code owner of gitgrant.yaml at the base commit's verified policy (from <sha>) (review 1)",
			}},
		},
		{
			name: "no owner for the file: nobody can approve",
			build: func(w *world) string {
				w.pushMain("admin", map[string]string{".github/CODEOWNERS": "/requests/ @bob\n"})
				return w.openPR("alice").push("alice", "alice", lowered(w)).review("bob", gitgrant.ReviewApproved).merge("squash", "gitgrant.yaml")
			},
			want: policyVerdict{Reasons: []string{
				"gitgrant.yaml needs the approval of a code owner of it at the base commit, on the final head commit, and has none",
				".github/CODEOWNERS at the base commit names no owner for gitgrant.yaml: an operator must trust a policy commit explicitly to change that (see docs/trust.md)",
				"@bob is not a code owner of gitgrant.yaml at the base commit (review 1)",
			}},
		},
		{
			name: "a multi-commit rebase: each rebased commit is judged where the pull request landed",
			build: func(w *world) string {
				p := w.openPR("alice").push("alice", "alice", map[string]string{"docs/notes.md": "x"}).push("alice", "alice", lowered(w)).review("sam", gitgrant.ReviewApproved)
				return p.merge("rebase", "gitgrant.yaml")
			},
			want: policyVerdict{Verified: true, Approvers: map[string][]string{"gitgrant.yaml": {"sam via @acme/security"}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			commit := tt.build(w)
			v := w.verifier(nil)
			if tt.trusted {
				v.Policy = &trusted{w: w}
			}
			ev, err := v.VerifyPolicyChange(context.Background(), w.policyChange(commit))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, policyVerdictOf(ev)); diff != "" {
				t.Errorf("verdict (-want +got):\n%s", diff)
			}
			if ev.Commit != commit || (ev.PullRequest != 0 && (ev.MergedAt.IsZero() || ev.MergedOnto == "")) {
				t.Errorf("evidence does not say what it judged: %+v", ev)
			}
			for _, r := range w.gh.Requests() {
				if r.Method != "GET" {
					t.Errorf("verification sent %s %s", r.Method, r.Path)
				}
			}
		})
	}
}

// A team the token cannot read decides nothing: the verdict is an error,
// never "not an owner".
func TestPolicyChangeTeamAccessError(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	commit := w.openPR("alice").push("alice", "alice", map[string]string{"gitgrant.yaml": readTestdata(t, "gitgrant.yaml") + "# x\n"}).review("sam", gitgrant.ReviewApproved).merge("squash", "gitgrant.yaml")
	w.gh.Inject(ghfake.Fault{PathContains: "/teams/security", Status: 403, Times: 10})
	_, err := w.verifier(nil).VerifyPolicyChange(context.Background(), w.policyChange(commit))
	var denied *gitgrant.TeamAccessError
	if !errors.As(err, &denied) {
		t.Fatalf("error %v, want a TeamAccessError", err)
	}
}

// Verdicts are memoised by commit; one without a pull request yet is
// gathered again until GitHub links the merge.
func TestPolicyChangeMemoAndRecheck(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	p := w.openPR("alice").push("alice", "alice", map[string]string{"gitgrant.yaml": readTestdata(t, "gitgrant.yaml") + "# x\n"}).review("sam", gitgrant.ReviewApproved)
	merge := w.gh.AddCommit(w.repo, ghfake.Commit{Parents: []string{w.main, p.head}, Author: "alice", Committer: "web-flow", Date: t0}, p.diff())
	in := w.policyChange(merge.SHA)
	v := w.verifier(nil)
	clk := fakeclock.New(t0.Add(48 * time.Hour))
	v.Clock = clk
	ev, err := v.VerifyPolicyChange(context.Background(), in)
	if err != nil || ev.Verified {
		t.Fatalf("before GitHub links the merge: %+v %v", ev, err)
	}
	p.landedAs(merge.SHA)
	before := len(w.gh.Requests())
	if ev, _ := v.VerifyPolicyChange(context.Background(), in); ev.Verified || len(w.gh.Requests()) != before {
		t.Fatal("gathered again before RecheckInterval passed")
	}
	clk.Advance(approval.RecheckInterval)
	if ev, err = v.VerifyPolicyChange(context.Background(), in); err != nil || !ev.Verified {
		t.Fatalf("after GitHub linked the merge: %+v %v", ev, err)
	}
	before = len(w.gh.Requests())
	clk.Advance(time.Hour)
	if again, _ := v.VerifyPolicyChange(context.Background(), in); !cmp.Equal(again, ev) || len(w.gh.Requests()) != before {
		t.Error("a final verdict was gathered again")
	}
}

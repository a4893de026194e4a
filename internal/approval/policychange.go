package approval

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/codeowners"
)

// PolicyChangeInput is a main-branch commit that changed policy files
// (gitgrant.PolicyFiles), as git tells it.
type PolicyChangeInput struct {
	// Commit is the first-parent commit of main that changed them.
	Commit string
	// Parents are Commit's parents from git, first parent first; nil:
	// asked from GitHub.
	Parents []string
	// Changes are the policy files whose blob differs between the first
	// parent and Commit. Files that did not change are the caller's to
	// check (their content must already be trusted at the first parent).
	Changes []PolicyFileChange
}

// PolicyFileChange is one policy file that changed.
type PolicyFileChange struct {
	Path string
	// Blob is the file's blob at Commit, ParentBlob at the first parent;
	// empty where the file is absent.
	Blob, ParentBlob string
}

// policyMemo is a policy-change verdict and when to gather it again.
type policyMemo struct {
	ev gitgrant.PolicyEvidence
	verdictMemo
}

// VerifyPolicyChange decides whether a policy change on main came through
// a merged pull request that verifies it (rule 13). For every changed
// file: the pull request's final head holds the content on main, the pull
// request changed the file, its base held the verified content of the file
// (so reviewers saw a diff against trusted content), and a code owner of
// the file approved: the latest review per reviewer APPROVED on the final
// head, by an owner under the CODEOWNERS of the policy in force at the base
// and at the commit it was merged onto, who neither opened the pull request
// nor wrote or committed any of its commits; no code owner's change request
// stands. A direct push is never verified.
//
// Verdicts are memoised by commit; a "no pull request" verdict is gathered
// again every RecheckInterval for RecheckWindow (GitHub links merges late),
// and any verdict is gathered again when the policy it was judged by has
// changed (an earlier policy change verified since). An error means GitHub
// or git could not be asked: the change is not verified, try again later.
func (v *Verifier) VerifyPolicyChange(ctx context.Context, in PolicyChangeInput) (gitgrant.PolicyEvidence, error) {
	if in.Commit == "" || len(in.Changes) == 0 {
		return gitgrant.PolicyEvidence{}, errors.New("approval: a policy change needs its commit and the policy files it changed")
	}
	for _, c := range in.Changes {
		if !gitgrant.IsPolicyFile(c.Path) {
			return gitgrant.PolicyEvidence{}, fmt.Errorf("approval: %s is not a policy file (%s)", c.Path, strings.Join(gitgrant.PolicyFiles, ", "))
		}
	}
	v.mu.Lock()
	m, ok := v.changes[in.Commit]
	v.mu.Unlock()
	if ok {
		reuse, err := v.reusable(ctx, m.verdictMemo)
		if err != nil {
			return gitgrant.PolicyEvidence{}, err
		}
		if reuse {
			return m.ev, nil
		}
	}
	ev, recheck, err := v.verifyPolicyChange(ctx, in)
	if err != nil {
		return gitgrant.PolicyEvidence{}, err
	}
	kept, err := v.memoFor(ctx, m.firstChecked, ev.CheckedAt, recheck, ev.BaseCommit, ev.MergedOnto)
	if err != nil {
		return gitgrant.PolicyEvidence{}, err
	}
	next := policyMemo{ev: ev, verdictMemo: kept}
	v.mu.Lock()
	if v.changes == nil {
		v.changes = map[string]policyMemo{}
	}
	v.changes[in.Commit] = next
	v.mu.Unlock()
	return ev, nil
}

func (v *Verifier) verifyPolicyChange(ctx context.Context, in PolicyChangeInput) (ev gitgrant.PolicyEvidence, recheck bool, err error) {
	ev = gitgrant.PolicyEvidence{Commit: in.Commit, CheckedAt: v.now()}
	for _, c := range in.Changes {
		ev.Files = append(ev.Files, gitgrant.PolicyFileEvidence{Path: c.Path, Blob: c.Blob})
	}
	pr, branch, ok, err := v.mergedPullRequest(ctx, in.Commit)
	if err != nil {
		return ev, false, err
	}
	if !ok {
		ev.Reasons = []string{fmt.Sprintf("commit %s changed %s on %s without a merged pull request (a direct push or a bypass), so the change is not in force: revert it on %s, then propose it in a pull request for the code owners of those files to approve",
			short(in.Commit), changedPaths(in.Changes), branch, branch)}
		return ev, true, nil
	}
	ev.PullRequest, ev.Author, ev.MergedAt = pr.Number, pr.Author, pr.MergedAt.UTC()
	ev.BaseCommit, ev.HeadCommit = pr.BaseSHA, pr.HeadSHA
	if pr.HeadSHA == "" || pr.BaseSHA == "" {
		ev.Reasons = []string{fmt.Sprintf("pull request #%d has no head or base commit in GitHub's answer", pr.Number)}
		return ev, false, nil
	}
	commits, err := v.GitHub.PullRequestCommits(ctx, pr.Number)
	if err != nil {
		return ev, false, err
	}
	excluded, reasons := excludedReviewers(pr, commits, "", "")
	reviews, err := v.GitHub.Reviews(ctx, pr.Number)
	if err != nil {
		return ev, false, err
	}
	onto, why, err := v.mergedOnto(ctx, in.Commit, in.Parents, pr, len(commits))
	if err != nil {
		return ev, false, err
	}
	ev.MergedOnto = onto
	if why != "" {
		reasons = append(reasons, why)
	}
	policies, err := v.changePolicies(ctx, pr.BaseSHA, onto)
	if err != nil {
		return ev, false, err
	}
	j, err := v.judgePolicyFiles(ctx, pr, in.Changes, policies, reviews, excluded)
	if err != nil {
		return ev, false, err
	}
	for i := range ev.Files {
		ev.Files[i].Approvers = j.approvers[ev.Files[i].Path]
	}
	ev.Reasons = append(reasons, j.reasons...)
	ev.Verified = len(ev.Reasons) == 0
	return ev, false, nil
}

// changePolicies are the policies a policy change is judged by: the one in
// force at the pull request's base, and at the commit it was merged onto
// when that is another state.
func (v *Verifier) changePolicies(ctx context.Context, base, onto string) ([]*judgedBy, error) {
	p, err := v.policyAt(ctx, base)
	if err != nil {
		return nil, err
	}
	out := []*judgedBy{v.judgedAt(p, "the base commit")}
	if onto == "" || onto == base {
		return out, nil
	}
	q, err := v.policyAt(ctx, onto)
	if err != nil {
		return nil, err
	}
	if q.fingerprint() != p.fingerprint() {
		out = append(out, v.judgedAt(q, fmt.Sprintf("the commit it was merged onto (%s)", short(onto))))
	}
	return out, nil
}

// policyJudgement is what judgePolicyFiles found.
type policyJudgement struct {
	reasons   []string
	approvers map[string][]gitgrant.Approver
	needs     []PolicyNeed
	// blocked counts the reasons that are not a missing approval (and why
	// reviews did not count): what more approvals cannot fix.
	blocked int
}

// PolicyNeed is a changed policy file still short of a code owner's
// approval, and who can give it (by the policy in force at the base).
type PolicyNeed struct {
	Path   string   `json:"path"`
	Owners []string `json:"owners"`
}

// judgePolicyFiles applies the per-file rules of VerifyPolicyChange.
// policies[0] is the base's; the trusted blobs come from it.
func (v *Verifier) judgePolicyFiles(ctx context.Context, pr gitgrant.PullRequest, changes []PolicyFileChange, policies []*judgedBy, reviews []gitgrant.Review, excluded map[string]string) (policyJudgement, error) {
	j := policyJudgement{approvers: map[string][]gitgrant.Approver{}}
	add := func(format string, args ...any) {
		j.reasons = append(j.reasons, fmt.Sprintf(format, args...))
		j.blocked++
	}
	base := policies[0]
	for _, c := range changes {
		head, err := v.blobAt(ctx, pr.HeadSHA, c.Path)
		if err != nil {
			return j, err
		}
		before, err := v.blobAt(ctx, pr.BaseSHA, c.Path)
		if err != nil {
			return j, err
		}
		if head != c.Blob {
			add("%s on main (%s) is not what pull request #%d's final head commit %s holds (%s): the change on main was not reviewed there; revert it and propose it in a pull request",
				c.Path, blobName(c.Blob), pr.Number, short(pr.HeadSHA), blobName(head))
		}
		if before == head {
			add("pull request #%d did not change %s (its base commit %s already held it), so its reviewers never saw the change: propose the change itself in a pull request", pr.Number, c.Path, short(pr.BaseSHA))
		}
		// The raw files at the base are trivially their own state.
		if trusted := base.policy.Blobs[c.Path]; base.verified && before != trusted {
			add("the pull request's base commit %s holds a change to %s (%s) that was never verified (the verified one is %s, from commit %s): revert that change through a pull request first, then base this change on it",
				short(pr.BaseSHA), c.Path, blobName(before), blobName(trusted), short(base.policy.Commit))
		}
		for i, at := range policies {
			approvers, blocking, missing, need, err := v.policyFileApprovals(ctx, c.Path, at, pr, reviews, excluded)
			if err != nil {
				return j, err
			}
			j.blocked += len(blocking)
			reasons := append(blocking, missing...)
			if i == 0 {
				j.approvers[c.Path] = approvers
				if need != nil {
					j.needs = append(j.needs, *need)
				}
			} else {
				reasons = at.mark(reasons)
			}
			j.reasons = append(j.reasons, reasons...)
		}
	}
	// A change request blocks the whole pull request: said once.
	j.reasons = dedupe(j.reasons)
	return j, nil
}

// policyFileApprovals applies rule 4 to one policy file by one policy: at
// least one approval by a code owner of the file, and no code owner's
// change request standing (blocking). missing says why there is no
// approval, and need whose it can be.
func (v *Verifier) policyFileApprovals(ctx context.Context, path string, at *judgedBy, pr gitgrant.PullRequest, reviews []gitgrant.Review, excluded map[string]string) (approvers []gitgrant.Approver, blocking, missing []string, need *PolicyNeed, err error) {
	var owners []codeowners.Owner
	if at.policy.Owners != nil {
		owners = at.policy.Owners.Owners(path)
	}
	c, err := v.candidates(ctx, path, owners, at, pr, reviews, excluded)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	if len(c.candidates) > 0 {
		return c.candidates, c.blocking, nil, nil, nil
	}
	if c.undecided != nil {
		return nil, nil, nil, nil, c.undecided
	}
	names := ownerNames(owners)
	msg := fmt.Sprintf("%s needs the approval of a code owner of it %s, on the final head commit, and has none", path, at.where())
	if len(names) > 0 {
		msg += " (code owners: " + strings.Join(names, ", ") + ")"
	}
	missing = append(missing, msg)
	if r := at.noOwners(path, owners); r != "" {
		missing = append(missing, r+": an operator must trust a policy commit explicitly to change that (see docs/trust.md)")
	}
	missing = append(missing, dedupe(c.discounted)...)
	return nil, c.blocking, missing, &PolicyNeed{Path: path, Owners: names}, nil
}

// blobAt is the blob hash of path at rev, "" when it is absent.
func (v *Verifier) blobAt(ctx context.Context, rev, path string) (string, error) {
	data, err := v.read(ctx, rev, path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", nil
	case err != nil:
		return "", err
	}
	return BlobHash(data), nil
}

func blobName(b string) string {
	if b == "" {
		return "absent"
	}
	return "blob " + short(b)
}

func changedPaths(cs []PolicyFileChange) string {
	paths := make([]string, 0, len(cs))
	for _, c := range cs {
		paths = append(paths, c.Path)
	}
	return strings.Join(paths, ", ")
}

package approval

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/gitgrant/gitgrant"
)

// Preview is what a pull request's request file would get if it merged
// now: the evidence (never Approved while the pull request is open), every
// reason it would not count yet, and the approvals still missing and from
// whom. It is for `gitgrant validate --pr`; it opens no issue and caches
// nothing.
type Preview struct {
	Evidence gitgrant.Evidence `json:"evidence"`
	// Ready is true when merging now would grant (or, for an emergency by
	// a break-glass member, grant as an emergency).
	Ready bool   `json:"ready"`
	Needs []Need `json:"needs,omitempty"`
}

// Preview judges one request file of an open pull request by the rules
// the reconciler will apply after the merge: the policy and CODEOWNERS at
// the pull request's base, reviews of its current head.
func (v *Verifier) Preview(ctx context.Context, number int, path string, req *gitgrant.Request) (Preview, error) {
	pr, err := v.GitHub.PullRequest(ctx, number)
	if err != nil {
		return Preview{}, err
	}
	head, err := v.read(ctx, pr.HeadSHA, path)
	if errors.Is(err, fs.ErrNotExist) {
		return Preview{}, fmt.Errorf("%s is not in pull request #%d's head commit", path, number)
	}
	if err != nil {
		return Preview{}, err
	}
	in := Input{Path: path, Blob: BlobHash(head), Commit: pr.HeadSHA, Request: req}
	ev := gitgrant.Evidence{Path: path, Blob: in.Blob, CheckedAt: v.now()}
	j, err := v.judge(ctx, in, ev, pr)
	if err != nil {
		return Preview{}, err
	}
	p := Preview{Evidence: j.ev, Needs: j.needs}
	p.Evidence.Reasons = j.reasons
	p.Ready = len(j.reasons) == 0
	if !p.Ready && req.Emergency && j.base != nil && j.base.policy.Config != nil {
		ok, err := v.memberOfAny(ctx, j.base.policy.Config.Policy.BreakGlass.Members, req.Requester)
		if err != nil {
			return Preview{}, err
		}
		if ok && req.Beneficiary() == req.Requester && strings.EqualFold(pr.Author, req.Requester) {
			p.Ready = true
			p.Evidence.Emergency = true
		}
	}
	return p, nil
}

// PolicyPreview is what verifying an open pull request's change to the
// policy files would need if it merged now (rule 13): who approved each
// changed file so far, the files still short of a code owner's approval
// and whose it can be, and every reason it would not be verified. It is
// for `gitgrant validate --pr`; it caches nothing.
type PolicyPreview struct {
	Evidence gitgrant.PolicyEvidence `json:"evidence"`
	// Ready is true when merging now would verify the change (the policy
	// where it is merged can still differ).
	Ready bool         `json:"ready"`
	Needs []PolicyNeed `json:"needs,omitempty"`
	// Blocked: some reasons are not missing approvals, so approvals alone
	// will not verify it.
	Blocked bool `json:"blocked,omitempty"`
}

// PreviewPolicyChange judges the policy files among paths that pull
// request number changes, by the rules VerifyPolicyChange will apply
// after the merge, with the policy in force at its base and reviews of its
// current head. Paths that are no policy file, or that the pull request
// leaves as they are, are skipped; none left is an empty preview.
func (v *Verifier) PreviewPolicyChange(ctx context.Context, number int, paths []string) (PolicyPreview, error) {
	pr, err := v.GitHub.PullRequest(ctx, number)
	if err != nil {
		return PolicyPreview{}, err
	}
	ev := gitgrant.PolicyEvidence{Commit: pr.HeadSHA, PullRequest: pr.Number, Author: pr.Author, BaseCommit: pr.BaseSHA, HeadCommit: pr.HeadSHA, CheckedAt: v.now()}
	var changes []PolicyFileChange
	seen := map[string]bool{}
	for _, p := range paths {
		if !gitgrant.IsPolicyFile(p) || seen[p] {
			continue
		}
		seen[p] = true
		head, err := v.blobAt(ctx, pr.HeadSHA, p)
		if err != nil {
			return PolicyPreview{}, err
		}
		base, err := v.blobAt(ctx, pr.BaseSHA, p)
		if err != nil {
			return PolicyPreview{}, err
		}
		if head != base {
			changes = append(changes, PolicyFileChange{Path: p, Blob: head, ParentBlob: base})
			ev.Files = append(ev.Files, gitgrant.PolicyFileEvidence{Path: p, Blob: head})
		}
	}
	if len(changes) == 0 {
		return PolicyPreview{Evidence: ev}, nil
	}
	commits, err := v.GitHub.PullRequestCommits(ctx, pr.Number)
	if err != nil {
		return PolicyPreview{}, err
	}
	excluded, reasons := excludedReviewers(pr, commits, "", "")
	reviews, err := v.GitHub.Reviews(ctx, pr.Number)
	if err != nil {
		return PolicyPreview{}, err
	}
	policies, err := v.changePolicies(ctx, pr.BaseSHA, "")
	if err != nil {
		return PolicyPreview{}, err
	}
	j, err := v.judgePolicyFiles(ctx, pr, changes, policies, reviews, excluded)
	if err != nil {
		return PolicyPreview{}, err
	}
	for i := range ev.Files {
		ev.Files[i].Approvers = j.approvers[ev.Files[i].Path]
	}
	ev.Reasons = append(reasons, j.reasons...)
	return PolicyPreview{Evidence: ev, Ready: len(ev.Reasons) == 0, Needs: j.needs, Blocked: j.blocked > 0 || len(reasons) > 0}, nil
}

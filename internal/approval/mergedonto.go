package approval

import (
	"context"
	"fmt"

	"github.com/gitgrant/gitgrant"
)

// mergedOnto finds the main-branch commit a merged pull request landed
// on, from git's parents and GitHub's account of the merge, never from a
// commit message (a squash title is editable):
//   - commit is the pull request's merge_commit_sha and has two parents: a
//     merge commit, merged onto its first parent;
//   - commit is the merge_commit_sha of a one-commit pull request: a squash
//     or rebase, merged onto its parent;
//   - otherwise (a squash or rebase of k commits, or a rebased commit in
//     the middle): first parents are walked back while GitHub associates
//     the commit with the same pull request, at most k steps; the first one
//     it does not is the commit it was merged onto. A rebased commit's
//     parent holds the pull request's own changes, so it never judges.
//
// A non-empty reason means it cannot be told (fail closed).
func (v *Verifier) mergedOnto(ctx context.Context, commit string, known []string, pr gitgrant.PullRequest, k int) (onto, reason string, err error) {
	parents, err := v.parents(ctx, commit, known)
	if err != nil {
		return "", "", err
	}
	if len(parents) == 0 {
		return "", fmt.Sprintf("commit %s has no parent, so there is no commit pull request #%d was merged onto to judge it by", short(commit), pr.Number), nil
	}
	x := parents[0]
	if commit == pr.MergeCommitSHA && (len(parents) > 1 || k <= 1) {
		return x, "", nil
	}
	k = max(k, 1)
	for range k {
		prs, err := v.GitHub.PullRequestsWithCommit(ctx, x)
		if err != nil {
			return "", "", err
		}
		if !hasPullRequest(prs, pr.Number) {
			return x, "", nil
		}
		ps, err := v.parents(ctx, x, nil)
		if err != nil {
			return "", "", err
		}
		if len(ps) == 0 {
			break
		}
		x = ps[0]
	}
	return "", fmt.Sprintf("cannot tell which commit pull request #%d was merged onto: the %d first-parent commits before %s all belong to it, yet it has %d commits", pr.Number, k, short(commit), k), nil
}

func hasPullRequest(prs []gitgrant.PullRequest, number int) bool {
	for _, p := range prs {
		if p.Number == number {
			return true
		}
	}
	return false
}

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

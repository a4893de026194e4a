package approval

import (
	"cmp"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/codeowners"
)

// viaPullRequest applies rules 1-6 to a merged pull request.
func (v *Verifier) viaPullRequest(ctx context.Context, in Input, ev gitgrant.Evidence, pr PullRequest) (gitgrant.Evidence, error) {
	j, err := v.judge(ctx, in, ev, pr)
	if err != nil {
		return j.ev, err
	}
	return v.finish(ctx, in, j.ev, j.reasons, j.bf)
}

// judgement is what judge found: the evidence so far, every failed rule,
// the approvals still missing, and the files at the base.
type judgement struct {
	ev      gitgrant.Evidence
	reasons []string
	needs   []Need
	bf      *baseFiles
}

// judge applies rules 1-4 and 6 to a pull request, merged or not.
func (v *Verifier) judge(ctx context.Context, in Input, ev gitgrant.Evidence, pr PullRequest) (judgement, error) {
	ev.PullRequest, ev.Author, ev.MergedAt = pr.Number, pr.Author, pr.MergedAt.UTC()
	ev.HeadCommit, ev.BaseCommit = pr.HeadSHA, pr.BaseSHA
	var reasons []string
	add := func(format string, args ...any) { reasons = append(reasons, fmt.Sprintf(format, args...)) }

	if pr.HeadSHA == "" || pr.BaseSHA == "" {
		add("pull request #%d has no head or base commit in GitHub's answer", pr.Number)
		return judgement{ev: ev, reasons: reasons}, nil
	}
	// The reviewed content must be the granted content.
	head, err := v.read(ctx, pr.HeadSHA, in.Path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		add("%s is not in pull request #%d's head commit %s: the content on main was not reviewed there", in.Path, pr.Number, short(pr.HeadSHA))
	case err != nil:
		return judgement{ev: ev}, err
	case BlobHash(head) != in.Blob:
		add("the content on main (blob %s) is not the content reviewed at pull request #%d's head commit %s (blob %s)", short(in.Blob), pr.Number, short(pr.HeadSHA), short(BlobHash(head)))
	}

	// Content the pull request did not change was never in its diff, so
	// its reviewers never saw it.
	before, err := v.read(ctx, pr.BaseSHA, in.Path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return judgement{ev: ev}, err
	case BlobHash(before) == in.Blob:
		add("pull request #%d did not change %s (the same content was already at its base commit %s), so its reviewers never saw it", pr.Number, in.Path, short(pr.BaseSHA))
	}

	bf, err := v.base(ctx, pr.BaseSHA)
	if err != nil {
		return judgement{ev: ev}, err
	}
	if bf.config == nil {
		add("%s", bf.configReason)
		return judgement{ev: ev, reasons: reasons, bf: bf}, nil
	}
	req := in.Request
	reasons = append(reasons, requestRules(in, bf.config, pr.Author)...)

	commits, err := v.GitHub.PullRequestCommits(ctx, pr.Number)
	if err != nil {
		return judgement{ev: ev}, err
	}
	excluded := map[string]string{}
	exclude := func(login, why string) {
		if login != "" {
			if _, ok := excluded[strings.ToLower(login)]; !ok {
				excluded[strings.ToLower(login)] = why
			}
		}
	}
	exclude(req.Requester, "is the requester")
	exclude(req.Subject, "receives the access (subject)")
	exclude(pr.Author, "opened the pull request")
	if len(commits) >= MaxPullCommits {
		add("pull request #%d has %d or more commits; GitHub lists only %d, so its committers cannot all be checked", pr.Number, MaxPullCommits, MaxPullCommits)
	}
	for _, c := range commits {
		if c.Author == "" || c.Committer == "" {
			add("commit %s of pull request #%d has an author or committer linked to no GitHub account, so gitgrant cannot prove an approver did not write it", short(c.SHA), pr.Number)
		}
		exclude(c.Author, "authored a commit of the pull request ("+short(c.SHA)+")")
		exclude(c.Committer, "committed to the pull request ("+short(c.SHA)+")")
	}

	reviews, err := v.GitHub.Reviews(ctx, pr.Number)
	if err != nil {
		return judgement{ev: ev}, err
	}
	rr, err := v.reviewRules(ctx, in, bf, pr, reviews, excluded)
	if err != nil {
		return judgement{ev: ev}, err
	}
	ev.Approvers = rr.approvers
	reasons = append(reasons, rr.reasons...)
	j := judgement{ev: ev, reasons: reasons, needs: rr.needs, bf: bf}
	if in.MergedOnto != "" && in.MergedOnto != pr.BaseSHA {
		more, err := v.atMergedOnto(ctx, in, pr, reviews, excluded)
		if err != nil {
			return judgement{ev: ev}, err
		}
		j.reasons = append(j.reasons, more...)
	}
	return j, nil
}

// atMergedOnto applies the policy and CODEOWNERS of the commit the pull
// request was merged onto; it returns the reasons that did not already
// fail at the base, saying where they come from.
func (v *Verifier) atMergedOnto(ctx context.Context, in Input, pr PullRequest, reviews []Review, excluded map[string]string) ([]string, error) {
	bf, err := v.base(ctx, in.MergedOnto)
	if err != nil {
		return nil, err
	}
	prefix := fmt.Sprintf("at the commit it was merged onto (%s): ", short(in.MergedOnto))
	if bf.config == nil {
		return []string{prefix + bf.configReason}, nil
	}
	reasons := requestRules(in, bf.config, pr.Author)
	rr, err := v.reviewRules(ctx, in, bf, pr, reviews, excluded)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, r := range append(reasons, rr.reasons...) {
		out = append(out, prefix+r)
	}
	return out, nil
}

// requestRules are the rules about the request itself, judged by the
// policy at base: rule 2 (path and content agree), rule 3 (author is the
// requester), and that every grant's role exists at base.
func requestRules(in Input, cfg *gitgrant.Config, author string) []string {
	var reasons []string
	req := in.Request
	folder := providerFolder(in.Path)
	for i, g := range req.Grants {
		if g.Provider != folder {
			reasons = append(reasons, fmt.Sprintf("grants.%d: provider %q does not match the folder %q the file is in (CODEOWNERS routes by path)", i, g.Provider, folder))
		}
		if _, ok := role(cfg, g); !ok {
			reasons = append(reasons, fmt.Sprintf("grants.%d: role %s/%s is not declared in %s at the base commit", i, g.Provider, g.Role, gitgrant.ConfigPath))
		}
	}
	if author != "" && !strings.EqualFold(author, req.Requester) && !cfg.Policy.AllowOnBehalf {
		reasons = append(reasons, fmt.Sprintf("the pull request was opened by @%s, not by the requester @%s, and policy.allow_on_behalf is false at the base commit", author, req.Requester))
	}
	if req.Subject != "" && !strings.EqualFold(req.Subject, req.Requester) && !cfg.Policy.AllowOnBehalf {
		reasons = append(reasons, fmt.Sprintf("subject %q requests access on behalf of someone else, and policy.allow_on_behalf is false at the base commit", req.Subject))
	}
	return reasons
}

func providerFolder(p string) string {
	rest, ok := strings.CutPrefix(path.Clean(p), gitgrant.RequestsDir+"/")
	if !ok {
		return ""
	}
	folder, _, _ := strings.Cut(rest, "/")
	return folder
}

func role(cfg *gitgrant.Config, g gitgrant.GrantRef) (gitgrant.RoleConfig, bool) {
	p, ok := cfg.Providers[g.Provider]
	if !ok {
		return gitgrant.RoleConfig{}, false
	}
	r, ok := p.Roles[g.Role]
	return r, ok
}

type reviewResult struct {
	approvers []gitgrant.Approver
	reasons   []string
	needs     []Need
}

// Need is a grant still short of approvals, and who can give them: the
// path's code owners at the base (Owners), restricted to the role's
// approvers when it names some.
type Need struct {
	Grant     gitgrant.GrantRef `json:"grant"`
	Missing   int               `json:"missing"`
	Owners    []string          `json:"owners"`
	Approvers []string          `json:"approvers,omitempty"`
}

// latestStates keeps, per reviewer, the latest review that sets a state
// (APPROVED, CHANGES_REQUESTED, DISMISSED). A COMMENTED review changes no
// state, as on GitHub.
func latestStates(reviews []Review) []Review {
	latest := map[string]Review{}
	for _, r := range reviews {
		if r.Reviewer == "" {
			continue
		}
		switch r.State {
		case Approved, ChangesRequested, Dismissed:
		default:
			continue
		}
		k := strings.ToLower(r.Reviewer)
		cur, ok := latest[k]
		if !ok || r.SubmittedAt.After(cur.SubmittedAt) || (r.SubmittedAt.Equal(cur.SubmittedAt) && r.ID > cur.ID) {
			latest[k] = r
		}
	}
	out := make([]Review, 0, len(latest))
	for _, r := range latest {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// ownerVia returns the CODEOWNERS entry that makes login an owner, or "".
// A team whose members cannot be read is skipped; its *TeamAccessError is
// returned only when no other entry makes login an owner.
func (v *Verifier) ownerVia(ctx context.Context, owners []codeowners.Owner, login string) (string, error) {
	var unreadable error
	for _, o := range owners {
		switch o.Kind {
		case codeowners.User:
			if strings.EqualFold(o.Name, login) {
				return o.String(), nil
			}
		case codeowners.Team:
			org, _, _ := strings.Cut(o.Name, "/")
			if v.Org != "" && !strings.EqualFold(org, v.Org) {
				continue // GitHub honours only teams of the repository's org
			}
			ok, err := v.member(ctx, o.Name, login)
			switch {
			case teamAccess(err):
				unreadable = cmp.Or(unreadable, err)
			case err != nil:
				return "", err
			case ok:
				return o.String(), nil
			}
		}
	}
	return "", unreadable
}

func (v *Verifier) reviewRules(ctx context.Context, in Input, bf *baseFiles, pr PullRequest, reviews []Review, excluded map[string]string) (reviewResult, error) {
	var res reviewResult
	var discounted []string
	var owners []codeowners.Owner
	if bf.owners != nil {
		owners = bf.owners.Owners(in.Path)
	}
	var candidates []gitgrant.Approver
	// undecided: an approval that an unreadable team might have made
	// count. It matters only when approvals are missing: then the verdict
	// is GitHub's refusal, not "approval missing".
	var undecided error
	for _, r := range latestStates(reviews) {
		switch r.State {
		case ChangesRequested:
			// A change request of a code owner blocks: one that cannot be
			// placed fails closed.
			via, err := v.ownerVia(ctx, owners, r.Reviewer)
			if err != nil {
				return res, err
			}
			if via != "" {
				res.reasons = append(res.reasons, fmt.Sprintf("code owner @%s requested changes (review %d) and has not approved or been dismissed since", r.Reviewer, r.ID))
			}
			continue
		case Dismissed:
			discounted = append(discounted, fmt.Sprintf("@%s's review %d was dismissed", r.Reviewer, r.ID))
			continue
		}
		if why, bad := excluded[strings.ToLower(r.Reviewer)]; r.CommitID != pr.HeadSHA || bad {
			if r.CommitID != pr.HeadSHA {
				discounted = append(discounted, fmt.Sprintf("@%s approved commit %s (review %d), not the final head commit %s", r.Reviewer, short(r.CommitID), r.ID, short(pr.HeadSHA)))
			} else {
				discounted = append(discounted, fmt.Sprintf("@%s cannot approve: %s (review %d)", r.Reviewer, why, r.ID))
			}
			continue
		}
		via, err := v.ownerVia(ctx, owners, r.Reviewer)
		switch {
		case teamAccess(err):
			undecided = cmp.Or(undecided, err)
		case err != nil:
			return res, err
		case via == "":
			discounted = append(discounted, fmt.Sprintf("@%s is not a code owner of %s at the base commit (review %d)", r.Reviewer, in.Path, r.ID))
		default:
			candidates = append(candidates, gitgrant.Approver{Login: r.Reviewer, ReviewID: r.ID, SubmittedAt: r.SubmittedAt.UTC(), Via: via})
		}
	}

	counted := map[int64]bool{}
	missing := false
	for i, g := range in.Request.Grants {
		rc, ok := role(bf.config, g)
		if !ok {
			continue // already a reason
		}
		n := 0
		var names []string
		for _, c := range candidates {
			ok, err := v.inApprovers(ctx, rc.Approvers, c.Login)
			switch {
			case teamAccess(err):
				undecided = cmp.Or(undecided, err)
				continue
			case err != nil:
				return res, err
			}
			if !ok {
				discounted = append(discounted, fmt.Sprintf("@%s is not in the approvers of %s/%s (%s)", c.Login, g.Provider, g.Role, strings.Join(rc.Approvers, ", ")))
				continue
			}
			n++
			names = append(names, "@"+c.Login)
			counted[c.ReviewID] = true
		}
		if n < rc.Approvals {
			missing = true
			need := Need{Grant: g, Missing: rc.Approvals - n, Owners: []string{}, Approvers: rc.Approvers}
			for _, o := range owners {
				if o.Kind != codeowners.Email {
					need.Owners = append(need.Owners, o.String())
				}
			}
			res.needs = append(res.needs, need)
			msg := fmt.Sprintf("grants.%d: %s/%s needs %d code-owner approval(s) on the final head commit, has %d", i, g.Provider, g.Role, rc.Approvals, n)
			if len(names) > 0 {
				msg += " (" + strings.Join(names, ", ") + ")"
			}
			if len(rc.Approvers) > 0 {
				msg += "; approvers: " + strings.Join(rc.Approvers, ", ")
			}
			res.reasons = append(res.reasons, msg)
			switch {
			case bf.owners == nil:
				res.reasons = append(res.reasons, "there is no CODEOWNERS file at the base commit (.github/CODEOWNERS, CODEOWNERS or docs/CODEOWNERS), so nobody can approve")
			case len(owners) == 0:
				res.reasons = append(res.reasons, fmt.Sprintf("%s at the base commit names no owner for %s", bf.owners.Path, in.Path))
			}
		}
	}
	for _, c := range candidates {
		if counted[c.ReviewID] {
			res.approvers = append(res.approvers, c)
		}
	}
	if missing && undecided != nil {
		return res, undecided
	}
	if missing {
		res.reasons = append(res.reasons, dedupe(discounted)...)
	}
	return res, nil
}

func (v *Verifier) inApprovers(ctx context.Context, approvers []string, login string) (bool, error) {
	if len(approvers) == 0 {
		return true, nil
	}
	return v.memberOfAny(ctx, approvers, login)
}

func dedupe(xs []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range xs {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// BlobHash is git's SHA-1 object name of a blob with this content.
func BlobHash(content []byte) string {
	h := sha1.New()
	fmt.Fprintf(h, "blob %d\x00", len(content))
	h.Write(content)
	return hex.EncodeToString(h.Sum(nil))
}

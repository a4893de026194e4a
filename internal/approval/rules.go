package approval

import (
	"cmp"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/codeowners"
)

// viaPullRequest applies rules 1-6 to a merged pull request: judged by
// the policy at its base, and again by the policy at the commit it was
// merged onto (the stricter wins).
func (v *Verifier) viaPullRequest(ctx context.Context, in Input, ev gitgrant.Evidence, pr gitgrant.PullRequest) (gitgrant.Evidence, error) {
	j, err := v.judge(ctx, in, ev, pr)
	if err != nil {
		return j.ev, err
	}
	if j.commits == nil { // judging stopped early: no head, base or policy
		return v.finish(ctx, in, j.ev, j.reasons, j.base)
	}
	onto, why, err := v.mergedOnto(ctx, in.Commit, in.Parents, pr, len(j.commits))
	if err != nil {
		return j.ev, err
	}
	j.ev.MergedOnto = onto
	if why != "" {
		j.reasons = append(j.reasons, why)
	}
	if onto != "" && onto != pr.BaseSHA {
		more, err := v.atMergedOnto(ctx, in, pr, j, onto)
		if err != nil {
			return j.ev, err
		}
		j.reasons = append(j.reasons, more...)
	}
	return v.finish(ctx, in, j.ev, j.reasons, j.base)
}

// judgement is what judge found: the evidence so far, every failed rule,
// the approvals still missing, the policy at the base, and what the rules
// at the merged-onto commit need again (commits nil: judging stopped
// early).
type judgement struct {
	ev       gitgrant.Evidence
	reasons  []string
	needs    []Need
	base     *judgedBy
	commits  []gitgrant.Commit
	reviews  []gitgrant.Review
	excluded map[string]string
}

// judge applies rules 1-4 and 6 to a pull request, merged or not, by the
// policy at its base commit.
func (v *Verifier) judge(ctx context.Context, in Input, ev gitgrant.Evidence, pr gitgrant.PullRequest) (judgement, error) {
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

	policy, err := v.policyAt(ctx, pr.BaseSHA)
	if err != nil {
		return judgement{ev: ev}, err
	}
	base := v.judgedAt(policy, "the base commit")
	if policy.Config == nil {
		add("%s", base.noConfig())
		return judgement{ev: ev, reasons: reasons, base: base}, nil
	}
	reasons = append(reasons, requestRules(in, base, pr.Author)...)

	commits, err := v.GitHub.PullRequestCommits(ctx, pr.Number)
	if err != nil {
		return judgement{ev: ev}, err
	}
	excluded, more := excludedReviewers(pr, commits, in.Request.Requester, in.Request.Subject)
	reasons = append(reasons, more...)

	reviews, err := v.GitHub.Reviews(ctx, pr.Number)
	if err != nil {
		return judgement{ev: ev}, err
	}
	rr, err := v.reviewRules(ctx, in, base, pr, reviews, excluded)
	if err != nil {
		return judgement{ev: ev}, err
	}
	ev.Approvers = rr.approvers
	reasons = append(reasons, rr.reasons...)
	if commits == nil {
		commits = []gitgrant.Commit{}
	}
	return judgement{ev: ev, reasons: reasons, needs: rr.needs, base: base, commits: commits, reviews: reviews, excluded: excluded}, nil
}

// excludedReviewers are the people whose approval cannot count, each with
// why: the requester and subject (for a request), the pull request's
// author, and every author and committer of its commits. It also returns
// the reasons the commits cannot all be checked.
func excludedReviewers(pr gitgrant.PullRequest, commits []gitgrant.Commit, requester, subject string) (map[string]string, []string) {
	excluded := map[string]string{}
	exclude := func(login, why string) {
		if login != "" {
			if _, ok := excluded[strings.ToLower(login)]; !ok {
				excluded[strings.ToLower(login)] = why
			}
		}
	}
	exclude(requester, "is the requester")
	exclude(subject, "receives the access (subject)")
	exclude(pr.Author, "opened the pull request")
	var reasons []string
	if len(commits) >= MaxPullCommits {
		reasons = append(reasons, fmt.Sprintf("pull request #%d has %d or more commits; GitHub lists only %d, so its committers cannot all be checked", pr.Number, MaxPullCommits, MaxPullCommits))
	}
	for _, c := range commits {
		if c.Author == "" || c.Committer == "" {
			reasons = append(reasons, fmt.Sprintf("commit %s of pull request #%d has an author or committer linked to no GitHub account, so gitgrant cannot prove an approver did not write it", short(c.SHA), pr.Number))
		}
		exclude(c.Author, "authored a commit of the pull request ("+short(c.SHA)+")")
		exclude(c.Committer, "committed to the pull request ("+short(c.SHA)+")")
	}
	return excluded, reasons
}

// judgedAt names a policy for reasons; at is the commit asked about.
func (v *Verifier) judgedAt(p *Policy, at string) *judgedBy {
	return &judgedBy{policy: p, at: at, verified: v.Policy != nil}
}

// atMergedOnto applies the policy in force at the commit the pull request
// was merged onto; it returns the reasons that fail there, saying where
// they come from. A policy identical to the base's decides nothing new.
func (v *Verifier) atMergedOnto(ctx context.Context, in Input, pr gitgrant.PullRequest, j judgement, onto string) ([]string, error) {
	policy, err := v.policyAt(ctx, onto)
	if err != nil {
		return nil, err
	}
	if j.base != nil && policy.fingerprint() == j.base.policy.fingerprint() {
		return nil, nil
	}
	at := v.judgedAt(policy, fmt.Sprintf("the commit it was merged onto (%s)", short(onto)))
	if policy.Config == nil {
		return []string{at.noConfig()}, nil
	}
	rr, err := v.reviewRules(ctx, in, at, pr, j.reviews, j.excluded)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, r := range j.reasons {
		seen[r] = true
	}
	var out []string
	for _, r := range append(requestRules(in, at, pr.Author), rr.reasons...) {
		if !seen[r] { // policy-independent, already said
			out = append(out, r)
		}
	}
	return at.mark(out), nil
}

// requestRules are the rules about the request itself, judged by a
// policy: rule 2 (path and content agree), rule 3 (author is the
// requester), and that every grant's role exists.
func requestRules(in Input, at *judgedBy, author string) []string {
	var reasons []string
	req, cfg := in.Request, at.policy.Config
	folder := gitgrant.ProviderFolder(in.Path)
	for i, g := range req.Grants {
		if g.Provider != folder {
			reasons = append(reasons, fmt.Sprintf("grants.%d: provider %q does not match the folder %q the file is in (CODEOWNERS routes by path)", i, g.Provider, folder))
		}
		if _, ok := role(cfg, g); !ok {
			reasons = append(reasons, fmt.Sprintf("grants.%d: role %s/%s is not declared in %s %s", i, g.Provider, g.Role, gitgrant.ConfigPath, at.where()))
		}
	}
	if author != "" && !strings.EqualFold(author, req.Requester) && !cfg.Policy.AllowOnBehalf {
		reasons = append(reasons, fmt.Sprintf("the pull request was opened by @%s, not by the requester @%s, and policy.allow_on_behalf is false %s", author, req.Requester, at.where()))
	}
	if req.Subject != "" && !strings.EqualFold(req.Subject, req.Requester) && !cfg.Policy.AllowOnBehalf {
		reasons = append(reasons, fmt.Sprintf("subject %q requests access on behalf of someone else, and policy.allow_on_behalf is false %s", req.Subject, at.where()))
	}
	return reasons
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
func latestStates(reviews []gitgrant.Review) []gitgrant.Review {
	latest := map[string]gitgrant.Review{}
	for _, r := range reviews {
		if r.Reviewer == "" {
			continue
		}
		switch r.State {
		case gitgrant.ReviewApproved, gitgrant.ReviewChangesRequested, gitgrant.ReviewDismissed:
		default:
			continue
		}
		k := strings.ToLower(r.Reviewer)
		cur, ok := latest[k]
		if !ok || r.SubmittedAt.After(cur.SubmittedAt) || (r.SubmittedAt.Equal(cur.SubmittedAt) && r.ID > cur.ID) {
			latest[k] = r
		}
	}
	out := make([]gitgrant.Review, 0, len(latest))
	for _, r := range latest {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// ownerVia returns the CODEOWNERS entry that makes login an owner, or "".
// A team whose members cannot be read is skipped; its *gitgrant.TeamAccessError is
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

// candidacy sorts the reviews of a pull request for one path by one
// policy: the approvals by code owners that may count, the standing change
// requests of code owners, why other reviews do not count, and a team
// that could not be read (undecided: it matters only when approvals are
// missing, and then the verdict is GitHub's refusal, not "missing").
type candidacy struct {
	candidates []gitgrant.Approver
	blocking   []string
	discounted []string
	undecided  error
}

func (v *Verifier) candidates(ctx context.Context, path string, owners []codeowners.Owner, at *judgedBy, pr gitgrant.PullRequest, reviews []gitgrant.Review, excluded map[string]string) (candidacy, error) {
	var c candidacy
	for _, r := range latestStates(reviews) {
		switch r.State {
		case gitgrant.ReviewChangesRequested:
			// A change request of a code owner blocks: one that cannot be
			// placed fails closed.
			via, err := v.ownerVia(ctx, owners, r.Reviewer)
			if err != nil {
				return c, err
			}
			if via != "" {
				c.blocking = append(c.blocking, fmt.Sprintf("code owner @%s requested changes (review %d) and has not approved or been dismissed since", r.Reviewer, r.ID))
			}
			continue
		case gitgrant.ReviewDismissed:
			c.discounted = append(c.discounted, fmt.Sprintf("@%s's review %d was dismissed", r.Reviewer, r.ID))
			continue
		}
		if why, bad := excluded[strings.ToLower(r.Reviewer)]; r.CommitID != pr.HeadSHA || bad {
			if r.CommitID != pr.HeadSHA {
				c.discounted = append(c.discounted, fmt.Sprintf("@%s approved commit %s (review %d), not the final head commit %s", r.Reviewer, short(r.CommitID), r.ID, short(pr.HeadSHA)))
			} else {
				c.discounted = append(c.discounted, fmt.Sprintf("@%s cannot approve: %s (review %d)", r.Reviewer, why, r.ID))
			}
			continue
		}
		via, err := v.ownerVia(ctx, owners, r.Reviewer)
		switch {
		case teamAccess(err):
			c.undecided = cmp.Or(c.undecided, err)
		case err != nil:
			return c, err
		case via == "":
			c.discounted = append(c.discounted, fmt.Sprintf("@%s is not a code owner of %s %s (review %d)", r.Reviewer, path, at.where(), r.ID))
		default:
			c.candidates = append(c.candidates, gitgrant.Approver{Login: r.Reviewer, ReviewID: r.ID, SubmittedAt: r.SubmittedAt.UTC(), Via: via})
		}
	}
	return c, nil
}

// ownerNames are the owners people can be asked for (emails cannot
// approve).
func ownerNames(owners []codeowners.Owner) []string {
	out := []string{}
	for _, o := range owners {
		if o.Kind != codeowners.Email {
			out = append(out, o.String())
		}
	}
	return out
}

func (v *Verifier) reviewRules(ctx context.Context, in Input, at *judgedBy, pr gitgrant.PullRequest, reviews []gitgrant.Review, excluded map[string]string) (reviewResult, error) {
	var res reviewResult
	var owners []codeowners.Owner
	if at.policy.Owners != nil {
		owners = at.policy.Owners.Owners(in.Path)
	}
	c, err := v.candidates(ctx, in.Path, owners, at, pr, reviews, excluded)
	if err != nil {
		return res, err
	}
	res.reasons = c.blocking
	candidates, discounted, undecided := c.candidates, c.discounted, c.undecided

	counted := map[int64]bool{}
	missing := false
	for i, g := range in.Request.Grants {
		rc, ok := role(at.policy.Config, g)
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
			need := Need{Grant: g, Missing: rc.Approvals - n, Owners: ownerNames(owners), Approvers: rc.Approvers}
			res.needs = append(res.needs, need)
			msg := fmt.Sprintf("grants.%d: %s/%s needs %d code-owner approval(s) on the final head commit, has %d", i, g.Provider, g.Role, rc.Approvals, n)
			if len(names) > 0 {
				msg += " (" + strings.Join(names, ", ") + ")"
			}
			if len(rc.Approvers) > 0 {
				msg += "; approvers: " + strings.Join(rc.Approvers, ", ")
			}
			res.reasons = append(res.reasons, msg)
			if r := at.noOwners(in.Path, owners); r != "" {
				res.reasons = append(res.reasons, r)
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

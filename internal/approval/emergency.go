package approval

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/render"
)

// MaxCommitDateSkew is how far a commit's date may lie after the time
// gitgrant first saw the commit: clocks drift a little, but a date further
// ahead is an attempt to start a window late (and so end it late), and is
// refused for good (rule 6).
const MaxCommitDateSkew = 5 * time.Minute

// MaxClockStepBack is how far a recorded first sighting may lie in the
// future of the reconciler's clock and still be believed: its own record,
// written before its clock stepped back. Believing it keeps an honest
// break-glass window from being judged against a sighting invented by the
// step (and revoked early). A record further ahead is not believed (the
// sighting is now, as for a commit never seen), so a sighting forged
// into the ledger can move a break-glass window later by this much at
// most, and never lengthen it.
const MaxClockStepBack = 15 * time.Minute

// finish settles the verdict: approved when no rule failed; otherwise, for
// an emergency request, the break-glass rules decide (rule 5).
func (v *Verifier) finish(ctx context.Context, in Input, ev gitgrant.Evidence, reasons []string, base *judgedBy) (gitgrant.Evidence, error) {
	if len(reasons) == 0 {
		ev.Approved = true
		return ev, nil
	}
	if in.Request.Emergency {
		return v.emergency(ctx, in, ev, reasons, base, ev.Author)
	}
	ev.Reasons = reasons
	return ev, nil
}

// parents are commit's parents: the caller's (from git), else GitHub's.
func (v *Verifier) parents(ctx context.Context, commit string, known []string) ([]string, error) {
	if known != nil {
		return known, nil
	}
	if pr, ok := v.Files.(ParentReader); ok {
		ps, err := pr.Parents(ctx, commit)
		if err == nil {
			return ps, nil
		}
		v.logger().Debug("git parents failed, asking GitHub", "commit", commit, "err", err)
	}
	c, err := v.GitHub.Commit(ctx, commit)
	if err != nil {
		return nil, err
	}
	if c.Parents == nil {
		return []string{}, nil
	}
	return c.Parents, nil
}

// direct handles content that reached main without a merged pull request:
// a direct push or a bypass. Only a break-glass emergency can count; its
// window starts when gitgrant first saw the commit, or at the commit date
// if that is earlier: an author-controlled date can only shorten it, and
// one in the future of the first sighting is refused.
func (v *Verifier) direct(ctx context.Context, in Input, ev gitgrant.Evidence, branch string) (gitgrant.Evidence, error) {
	reasons := []string{fmt.Sprintf("commit %s reached %s without a merged pull request (a direct push or a bypass): it grants nothing", short(in.Commit), branch)}
	if !in.Request.Emergency {
		ev.Reasons = reasons
		return ev, nil
	}
	c, err := v.GitHub.Commit(ctx, in.Commit)
	if err != nil {
		return ev, err
	}
	parents := in.Parents
	if parents == nil {
		parents = c.Parents
	}
	var base string
	if len(parents) > 0 {
		base = parents[0]
	}
	ev.BaseCommit, ev.HeadCommit, ev.Author = base, in.Commit, c.Author
	seen := in.FirstSeen.UTC()
	if seen.IsZero() || seen.Sub(ev.CheckedAt) > MaxClockStepBack {
		seen = ev.CheckedAt
	}
	ev.MergedAt = seen
	if !c.Date.IsZero() && c.Date.Before(seen) {
		ev.MergedAt = c.Date.UTC()
	}
	if !c.Date.IsZero() && c.Date.Sub(seen) > MaxCommitDateSkew {
		ev.Reasons = append(reasons, fmt.Sprintf("emergency: the commit date %s is in the future of when gitgrant first saw the commit (%s) by more than %s, so its window cannot be trusted: commit the request again with a true date",
			c.Date.UTC().Format(time.RFC3339), seen.Format(time.RFC3339), MaxCommitDateSkew))
		return ev, nil
	}
	if base == "" {
		ev.Reasons = append(reasons, "emergency: the commit has no parent, so there is no policy to judge it by")
		return ev, nil
	}
	policy, err := v.policyAt(ctx, base)
	if err != nil {
		return ev, err
	}
	return v.emergency(ctx, in, ev, reasons, v.judgedAt(policy, "the base commit"), c.Author)
}

// emergency grants a break-glass request without approval when its
// requester is a break-glass member by the policy at base, asks for
// nobody else, and wrote the change. It only decides: the follow-up issue
// is opened by EnsureFollowUp when the grant is applied.
func (v *Verifier) emergency(ctx context.Context, in Input, ev gitgrant.Evidence, reasons []string, base *judgedBy, author string) (gitgrant.Evidence, error) {
	req := in.Request
	var refuse []string
	if base == nil || base.policy.Config == nil {
		where := "at the base commit"
		if base != nil {
			where = base.where()
		}
		refuse = append(refuse, fmt.Sprintf("emergency: there is no valid policy %s to name break-glass members", where))
	} else {
		member, err := v.memberOfAny(ctx, base.policy.Config.Policy.BreakGlass.Members, req.Requester)
		if err != nil {
			return ev, err
		}
		if !member {
			refuse = append(refuse, fmt.Sprintf("emergency: @%s is not a break-glass member in policy.break_glass.members %s", req.Requester, base.where()))
		}
	}
	if req.Beneficiary() != req.Requester {
		refuse = append(refuse, "emergency: break-glass access is only for the requester, not on behalf of someone else")
	}
	if !strings.EqualFold(author, req.Requester) {
		who := "nobody GitHub knows"
		if author != "" {
			who = "@" + author
		}
		refuse = append(refuse, fmt.Sprintf("emergency: the change was written by %s, not by the requester @%s", who, req.Requester))
	}
	if len(refuse) > 0 {
		ev.Reasons = append(reasons, refuse...)
		return ev, nil
	}
	ev.Approved, ev.Emergency, ev.FollowUpIssue = true, true, 0
	// What the break-glass bypassed stays on the record.
	ev.Reasons = reasons
	return ev, nil
}

// nonceRE: what a follow-up nonce may hold, so that it cannot end the
// marker's HTML comment, and how long it must be to be unguessable.
var nonceRE = regexp.MustCompile(`^[A-Za-z0-9_-]{16,128}$`)

// NewNonce returns a random follow-up nonce (128 bits, hex).
func NewNonce() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("approval: random nonce: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// EnsureFollowUp opens the issue that asks for review after the fact of
// an emergency grant, or finds the one gitgrant opened before, and returns
// its number. Reconcile and serve call it when they apply the grant, never
// plan. nonce is a random value the caller records (in the ledger) with
// the grant: the issue's hidden marker holds it, and only an issue that
// gitgrant's own GitHub identity wrote and whose marker matches counts, so
// nobody can open the issue in advance and then close or edit it.
func (v *Verifier) EnsureFollowUp(ctx context.Context, in Input, ev gitgrant.Evidence, nonce string) (int, error) {
	switch {
	case !ev.Approved || !ev.Emergency:
		return 0, errors.New("approval: a follow-up issue is only for approved emergency evidence")
	case in.Request == nil || in.Path == "" || in.Commit == "":
		return 0, errors.New("approval: follow-up input needs path, commit and the decoded request")
	case !nonceRE.MatchString(nonce):
		return 0, errors.New("approval: follow-up nonce must be 16 to 128 letters, digits, '-' or '_' (use NewNonce)")
	}
	if ev.FollowUpIssue != 0 {
		return ev.FollowUpIssue, nil
	}
	// A ">" in the path could close the marker's HTML comment early.
	marker := fmt.Sprintf("<!-- gitgrant:emergency path=%s commit=%s nonce=%s -->", strings.ReplaceAll(in.Path, ">", "%3E"), in.Commit, nonce)
	commit := in.Commit
	if v.RepoURL != "" {
		commit = fmt.Sprintf("[%s](%s/commit/%s)", short(in.Commit), strings.TrimSuffix(v.RepoURL, "/"), in.Commit)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n**Emergency access was granted without prior approval.** Please review it after the fact.\n\n", marker)
	// The requester is mentioned on purpose; everything the request file
	// says is quoted as text (render), so that it mentions nobody else.
	fmt.Fprintf(&b, "- requester: %s\n- file: %s\n- commit: %s\n", render.Mention(in.Request.Requester), render.CodeSpan(in.Path), commit)
	if ev.PullRequest != 0 {
		fmt.Fprintf(&b, "- pull request: #%d\n", ev.PullRequest)
	}
	for _, g := range in.Request.Grants {
		fmt.Fprintf(&b, "- grant: %s\n", render.MarkdownText(g.Provider+"/"+g.Role))
	}
	fmt.Fprintf(&b, "- reason given: %s\n", render.MarkdownText(truncate(in.Request.Reason)))
	if in.Request.Ticket != "" {
		fmt.Fprintf(&b, "- ticket: %s\n", render.MarkdownText(truncate(in.Request.Ticket)))
	}
	b.WriteString("\nWhat the break-glass bypassed:\n")
	for _, r := range ev.Reasons {
		fmt.Fprintf(&b, "- %s\n", render.MarkdownText(r))
	}
	title := fmt.Sprintf("Review emergency access by @%s (%s)", in.Request.Requester, in.Path)
	return v.GitHub.FollowUp(ctx, marker, title, b.String())
}

// truncate keeps the first 300 characters of s on one line.
func truncate(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > 300 {
		s = string(r[:300]) + "…"
	}
	return s
}

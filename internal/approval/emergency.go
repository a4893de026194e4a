package approval

import (
	"context"
	"fmt"
	"strings"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/render"
)

// finish settles the verdict: approved when no rule failed; otherwise, for
// an emergency request, the break-glass rules decide (rule 5).
func (v *Verifier) finish(ctx context.Context, in Input, ev gitgrant.Evidence, reasons []string, bf *baseFiles) (gitgrant.Evidence, error) {
	if len(reasons) == 0 {
		ev.Approved = true
		return ev, nil
	}
	if in.Request.Emergency {
		return v.emergency(ctx, in, ev, reasons, bf, ev.Author)
	}
	ev.Reasons = reasons
	return ev, nil
}

// direct handles content that reached main without a merged pull request:
// a direct push or a bypass. Only a break-glass emergency can count.
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
	base := in.Parent
	if base == "" && len(c.Parents) > 0 {
		base = c.Parents[0]
	}
	ev.BaseCommit, ev.HeadCommit, ev.Author = base, in.Commit, c.Author
	// The window starts when gitgrant saw the push, or at the commit date
	// if that is earlier: an author-controlled date can only shorten it.
	ev.MergedAt = ev.CheckedAt
	if !c.Date.IsZero() && c.Date.Before(ev.CheckedAt) {
		ev.MergedAt = c.Date.UTC()
	}
	if base == "" {
		ev.Reasons = append(reasons, "emergency: the commit has no parent, so there is no policy to judge it by")
		return ev, nil
	}
	bf, err := v.base(ctx, base)
	if err != nil {
		return ev, err
	}
	return v.emergency(ctx, in, ev, reasons, bf, c.Author)
}

// emergency grants a break-glass request without approval when its
// requester is a break-glass member at base, asks for nobody else, and
// wrote the change; it then opens the follow-up issue (or finds it).
func (v *Verifier) emergency(ctx context.Context, in Input, ev gitgrant.Evidence, reasons []string, bf *baseFiles, author string) (gitgrant.Evidence, error) {
	req := in.Request
	var refuse []string
	if bf == nil || bf.config == nil {
		refuse = append(refuse, "emergency: there is no valid policy at the base commit to name break-glass members")
	} else {
		member, err := v.memberOfAny(ctx, bf.config.Policy.BreakGlass.Members, req.Requester)
		if err != nil {
			return ev, err
		}
		if !member {
			refuse = append(refuse, fmt.Sprintf("emergency: @%s is not a break-glass member in policy.break_glass.members at the base commit", req.Requester))
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
	n, err := v.followUp(ctx, in, ev, reasons)
	if err != nil {
		return ev, err
	}
	ev.Approved, ev.Emergency, ev.FollowUpIssue = true, true, n
	// What the break-glass bypassed stays on the record.
	ev.Reasons = reasons
	return ev, nil
}

func (v *Verifier) followUp(ctx context.Context, in Input, ev gitgrant.Evidence, bypassed []string) (int, error) {
	// A ">" in the path could close the marker's HTML comment early.
	marker := fmt.Sprintf("<!-- gitgrant:emergency path=%s commit=%s -->", strings.ReplaceAll(in.Path, ">", "%3E"), in.Commit)
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
	for _, r := range bypassed {
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

package render

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/gitgrant/gitgrant"
)

// AccessChange is one grant or revocation gitgrant made for a request, as
// its pull request is told.
type AccessChange struct {
	Op                        gitgrant.Op
	Provider, Role, Principal string
	// At is when a revocation was made; Until when a grant ends.
	At, Until time.Time
	Cause     gitgrant.Cause
}

// causeText says why, for a person.
var causeText = map[gitgrant.Cause]string{
	gitgrant.CauseExpired:   "its window ended",
	gitgrant.CauseWithdrawn: "the request file left main or changed",
	gitgrant.CauseRejected:  "the request no longer qualifies",
	gitgrant.CausePolicy:    "the verified policy no longer grants it",
}

// AccessComment writes the comment that tells a request's pull request
// what gitgrant did for path. Every piece of user text is escaped.
func AccessComment(w io.Writer, path string, changes []AccessChange) error {
	var b strings.Builder
	fmt.Fprintf(&b, "gitgrant: %s\n\n", CodeSpan(path))
	for _, c := range changes {
		fmt.Fprintf(&b, "- %s %s for %s", c.Op.Past(), CodeSpan(c.Provider+"/"+c.Role), CodeSpan(c.Principal))
		switch c.Op {
		case gitgrant.OpGrant:
			fmt.Fprintf(&b, " until %s", c.Until.UTC().Format(time.RFC3339))
		default:
			fmt.Fprintf(&b, " at %s", c.At.UTC().Format(time.RFC3339))
			if why := causeText[c.Cause]; why != "" {
				fmt.Fprintf(&b, ": %s", why)
			}
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Reminder is the comment that tells a requester their access ends soon
// and how to keep it.
func Reminder(w io.Writer, requester, path string, grants []AccessChange, now time.Time, extend string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: your access from %s ends soon:\n\n", Mention(requester), CodeSpan(path))
	for _, g := range grants {
		left := g.Until.Sub(now).Truncate(time.Minute)
		fmt.Fprintf(&b, "- %s for %s ends at %s (in %s)\n", CodeSpan(g.Provider+"/"+g.Role), CodeSpan(g.Principal), g.Until.UTC().Format(time.RFC3339), gitgrant.Duration(left))
	}
	fmt.Fprintf(&b, "\nTo keep it, extend the request and open a pull request:\n\n%s\n", CodeBlock(extend))
	_, err := io.WriteString(w, b.String())
	return err
}

// Refused is the comment on a merged request that grants nothing: why,
// and what to do.
func Refused(w io.Writer, path string, reasons []string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "gitgrant: %s was merged but grants nothing:\n\n", CodeSpan(path))
	for _, r := range reasons {
		fmt.Fprintf(&b, "- %s\n", MarkdownText(r))
	}
	b.WriteString("\nFix what is said above in a new pull request (the approvals must be on its final commit, by the code owners of the file, and not by you), or remove the file.\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// Unverified is the comment on a merged request whose approvals gitgrant
// cannot check for a reason that is gitgrant's own (its credentials), not
// the request's: nothing is granted until they can be checked.
func Unverified(w io.Writer, path, why string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "gitgrant: %s was merged, but its approvals cannot be verified, so it grants nothing yet:\n\n", CodeSpan(path))
	fmt.Fprintf(&b, "- %s\n", MarkdownText(why))
	b.WriteString("\nThis is about gitgrant's credentials, not your request: ask the maintainers of this access repository to fix what is said above. gitgrant checks again on every pass and grants the request once its approvals verify; its expiry applies either way.\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// CodeBlock is s in a fenced code block whose fence no run of backticks
// in s can close.
func CodeBlock(s string) string {
	fence := "```"
	for strings.Contains(s, fence) {
		fence += "`"
	}
	return fence + "sh\n" + s + "\n" + fence
}

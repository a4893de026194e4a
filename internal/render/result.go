package render

import (
	"fmt"
	"io"
	"strings"

	"github.com/gitgrant/gitgrant"
)

// Applied is one grant or revocation a reconcile pass attempted, and how
// it went (Err empty: done).
type Applied struct {
	Action gitgrant.Action
	Err    string
}

// Result is what a reconcile pass did, as its job summary and
// annotations tell it.
type Result struct {
	Actions []Applied
	// Held are the revocations the removal brake held back.
	Held []gitgrant.Action
	// Notes counts the ledger records written.
	Notes         int
	CleanupCommit string
	Removed       []string
	CleanupPR     int
	// Errors are failures outside any one action (the cleanup push,
	// comments, a provider that could not be read).
	Errors []string
}

// ResultMarkdown writes the job summary of a pass: what was applied,
// what failed, what the brake held and what the cleanup removed. Every
// piece of text from a request or a system is escaped.
func ResultMarkdown(w io.Writer, res Result, foldAfter int) error {
	var b strings.Builder
	var done, failed []Applied
	for _, a := range res.Actions {
		if a.Action.Op == gitgrant.OpReport {
			continue
		}
		if a.Err != "" {
			failed = append(failed, a)
		} else {
			done = append(done, a)
		}
	}
	status := "done"
	if len(failed) > 0 || len(res.Errors) > 0 {
		status = "done with failures; the next pass retries them"
	}
	fmt.Fprintf(&b, "### gitgrant reconcile: %s\n\n", status)
	fmt.Fprintf(&b, "%s applied, %s failed, %s held back by the removal brake, %s written.\n",
		plural(len(done), "action"), plural(len(failed), "action"), plural(len(res.Held), "revocation"), plural(res.Notes, "ledger record"))
	if len(failed) > 0 {
		b.WriteString("\n#### Failed\n\n| Action | Role | Principal | Request | Error |\n| --- | --- | --- | --- | --- |\n")
		for _, a := range failed {
			writeAppliedRow(&b, a.Action, a.Err)
		}
	}
	for _, e := range res.Errors {
		if e == "" {
			continue
		}
		fmt.Fprintf(&b, "\n> [!WARNING]\n> %s\n", MarkdownText(e))
	}
	if len(done) > 0 {
		var rows strings.Builder
		rows.WriteString("| Action | Role | Principal | Request | Why |\n| --- | --- | --- | --- | --- |\n")
		for _, a := range done {
			writeAppliedRow(&rows, a.Action, "")
		}
		b.WriteString("\n#### Applied\n\n")
		if foldAfter > 0 && len(done) > foldAfter {
			b.WriteString(foldText(plural(len(done), "action")+" applied", rows.String()))
			b.WriteString("\n")
		} else {
			b.WriteString(rows.String())
		}
	}
	if len(res.Held) > 0 {
		b.WriteString("\n#### Held back by the removal brake\n\nReview them, then run `gitgrant reconcile --force`.\n\n| Action | Role | Principal | Request | Why |\n| --- | --- | --- | --- | --- |\n")
		for _, a := range res.Held {
			writeAppliedRow(&b, a, "")
		}
	}
	if res.CleanupCommit != "" {
		fmt.Fprintf(&b, "\nCleanup commit %s removed %s", CodeSpan(ShortSHA(res.CleanupCommit)), plural(len(res.Removed), "expired request file"))
		if res.CleanupPR != 0 {
			fmt.Fprintf(&b, " (pull request #%d)", res.CleanupPR)
		}
		b.WriteString(": ")
		for i, p := range res.Removed {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(CodeSpan(p))
		}
		b.WriteString(".\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writeAppliedRow(b *strings.Builder, a gitgrant.Action, errText string) {
	op := string(a.Op)
	if a.Cause != "" {
		op += " (" + string(a.Cause) + ")"
	}
	last := a.Reason
	if errText != "" {
		last = errText
	}
	request := "—"
	if a.Request != "" {
		request = codeCell(a.Request)
	}
	fmt.Fprintf(b, "| %s | %s | %s | %s | %s |\n", op, codeCell(a.Provider+"/"+a.Role), codeCell(a.Principal), request, cellText(last))
}

// cellText is text made safe for one markdown table cell: on one line,
// escaped (MarkdownText escapes the pipe too).
func cellText(s string) string {
	return MarkdownText(strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(s))
}

// ResultAnnotations writes one ::error workflow command per failed
// action, on its request file when it has one, so that a failure shows in
// the run's annotations.
func ResultAnnotations(w io.Writer, res Result) error {
	for _, a := range res.Actions {
		if a.Err == "" {
			continue
		}
		act := a.Action
		props := []string{}
		if act.Request != "" {
			props = append(props, "file="+escapeProperty(act.Request))
		}
		props = append(props, "title="+escapeProperty(fmt.Sprintf("gitgrant: %s %s/%s failed", act.Op, act.Provider, act.Role)))
		msg := fmt.Sprintf("%s %s/%s for %s failed: %s", act.Op, act.Provider, act.Role, act.Principal, a.Err)
		if act.Op == gitgrant.OpRevoke {
			msg += "\nThe next pass retries it; the request file stays until the access is gone."
		} else {
			msg += "\nThe next pass retries it."
		}
		if _, err := fmt.Fprintf(w, "::error %s::%s\n", strings.Join(props, ","), escapeData(msg)); err != nil {
			return err
		}
	}
	for _, e := range res.Errors {
		if e == "" {
			continue
		}
		if _, err := fmt.Fprintf(w, "::error title=gitgrant reconcile::%s\n", escapeData(e)); err != nil {
			return err
		}
	}
	return nil
}

package render

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gitgrant/gitgrant"
)

// PlanJSON is the documented shape of `gitgrant plan --output json`.
type PlanJSON struct {
	Version int `json:"version"`
	gitgrant.Plan
}

// PlanText writes the requests and actions of a plan as two aligned
// tables, for a terminal.
func PlanText(w io.Writer, plan gitgrant.Plan) error {
	if loud := plan.Policy.Loud(); loud != "" {
		fmt.Fprintf(w, "POLICY: %s\n\n", loud)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "REQUEST\tSTATUS\tGRANT\tPRINCIPAL\tWINDOW (UTC)\tNOTE\n")
	for _, e := range plan.Entries {
		note := strings.Join(e.Reasons, "; ")
		if len(e.Approvers) > 0 {
			note = strings.TrimPrefix(note+"; approved by "+strings.Join(e.Approvers, ", "), "; ")
		}
		if len(e.Grants) == 0 {
			fmt.Fprintf(tw, "%s\t%s\t-\t-\t-\t%s\n", e.Path, e.Status, note)
		}
		for i, g := range e.Grants {
			path, status := e.Path, string(e.Status)
			if i > 0 {
				path, status, note = "", "", ""
			}
			fmt.Fprintf(tw, "%s\t%s\t%s/%s\t%s\t%s\t%s\n", path, status, g.Provider, g.Role, orDash(g.Principal), windowText(g, plan.At, e.Status), note)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(plan.Unobserved) > 0 {
		fmt.Fprintf(w, "\nNot listed (left out of the plan but for certain expiries): %s\n", strings.Join(plan.Unobserved, ", "))
	}
	unverified := 0
	for _, e := range plan.Entries {
		if e.Status == gitgrant.StatusUnverified {
			unverified++
		}
	}
	if unverified > 0 {
		fmt.Fprintf(w, "\n%d request(s) unverified: nothing is granted for them until their approval is verified (see NOTE); their expiry still revokes.\n", unverified)
	}
	if len(plan.Actions) == 0 {
		msg := "\nNo changes: access matches the requests."
		if unverified > 0 {
			msg = "\nNo changes: access matches the verified requests."
		}
		_, err := fmt.Fprintln(w, msg)
		return err
	}
	fmt.Fprintf(w, "\n%d action(s), revocations first:\n", len(plan.Actions))
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "OP\tROLE\tPRINCIPAL\tUNTIL (UTC)\tREASON\n")
	for _, a := range plan.Actions {
		until := "-"
		if !a.Expires.IsZero() {
			until = a.Expires.UTC().Format("2006-01-02 15:04")
		}
		fmt.Fprintf(tw, "%s\t%s/%s\t%s\t%s\t%s\n", a.Op, a.Provider, a.Role, a.Principal, until, a.Reason)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return heldText(w, plan)
}

// heldText lists what the removal brake held back.
func heldText(w io.Writer, plan gitgrant.Plan) error {
	if len(plan.Held) == 0 {
		return nil
	}
	fmt.Fprintf(w, "\nHeld back by the removal brake (review, then rerun with --force): %d\n", len(plan.Held))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "OP\tROLE\tPRINCIPAL\tREASON\n")
	for _, a := range plan.Held {
		fmt.Fprintf(tw, "%s\t%s/%s\t%s\t%s\n", a.Op, a.Provider, a.Role, a.Principal, a.Reason)
	}
	return tw.Flush()
}

// PlanMarkdown writes a plan for a pull request comment or job summary;
// tables longer than foldAfter rows fold into <details>.
func PlanMarkdown(w io.Writer, plan gitgrant.Plan, foldAfter int) error {
	var b strings.Builder
	if loud := plan.Policy.Loud(); loud != "" {
		fmt.Fprintf(&b, "> [!WARNING]\n> **Policy:** %s\n\n", MarkdownText(loud))
	}
	b.WriteString("| Request | Status | Grant | Principal | Window (UTC) |\n|---|---|---|---|---|\n")
	rows := 0
	for _, e := range plan.Entries {
		for _, g := range e.Grants {
			rows++
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", codeCell(e.Path), e.Status, grantText(g.Provider, g.Role), principalCell(g.Principal), windowText(g, plan.At, e.Status))
		}
	}
	fold(&b, rows, foldAfter, "requests")
	if len(plan.Unobserved) > 0 {
		fmt.Fprintf(&b, "\n⚠️ Not listed (left out of the plan but for certain expiries): %s\n", MarkdownText(strings.Join(plan.Unobserved, ", ")))
	}
	if len(plan.Actions) == 0 {
		b.WriteString("\nNo changes: access matches the requests.\n")
	} else {
		var t strings.Builder
		t.WriteString("| Action | Role | Principal | Until (UTC) | Reason |\n|---|---|---|---|---|\n")
		for _, a := range plan.Actions {
			until := "–"
			if !a.Expires.IsZero() {
				until = a.Expires.UTC().Format("2006-01-02 15:04")
			}
			fmt.Fprintf(&t, "| %s | %s | %s | %s | %s |\n", a.Op, grantText(a.Provider, a.Role), principalCell(a.Principal), until, MarkdownText(a.Reason))
		}
		b.WriteString("\n")
		fold(&t, len(plan.Actions), foldAfter, "actions")
		b.WriteString(t.String())
	}
	if len(plan.Held) > 0 {
		fmt.Fprintf(&b, "\n**Held back by the removal brake** (review, then rerun with `--force`):\n\n| Action | Role | Principal | Reason |\n|---|---|---|---|\n")
		for _, a := range plan.Held {
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", a.Op, grantText(a.Provider, a.Role), principalCell(a.Principal), MarkdownText(a.Reason))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// fold wraps a table in <details> when it has more than limit rows.
func fold(b *strings.Builder, rows, limit int, what string) {
	if limit <= 0 || rows <= limit {
		return
	}
	table := b.String()
	b.Reset()
	fmt.Fprintf(b, "<details><summary>%d %s</summary>\n\n%s\n</details>\n", rows, what, table)
}

func windowText(g gitgrant.DesiredGrant, now time.Time, status gitgrant.Status) string {
	s := fmt.Sprintf("%s → %s", g.Window.Start.UTC().Format("2006-01-02 15:04"), g.Window.End.UTC().Format("2006-01-02 15:04"))
	if status == gitgrant.StatusActive && g.Window.Contains(now) {
		s += fmt.Sprintf(" (%s left)", gitgrant.Duration(g.Window.End.Sub(now).Truncate(time.Minute)))
	}
	if g.Clamped {
		s += " (clamped to the role maximum)"
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

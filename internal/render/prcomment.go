package render

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/gitgrant/gitgrant"
)

// PRCommentMarker starts the one comment `validate --pr` keeps on a pull
// request; it is how the comment is found again and updated.
const PRCommentMarker = "<!-- gitgrant:validate -->"

// PRComment is what `gitgrant validate --pr` tells a pull request: what
// merging it would grant, the approvals still missing, and every problem.
// Nothing in it depends on the clock, so that an unchanged pull request
// gets an unchanged comment (and no write).
type PRComment struct {
	Number  int
	BaseSHA string
	HeadSHA string
	// ConfigChanged and OwnersChanged: the pull request changes
	// gitgrant.yaml or CODEOWNERS, which do not apply to its own requests.
	ConfigChanged bool
	OwnersChanged bool
	// PolicyChange is what verifying that change needs; nil when the pull
	// request changes no policy file (or it could not be checked: then
	// Problems says so).
	PolicyChange *PRPolicyChange
	Requests     []PRRequest
	// Removed are request files the pull request deletes: early revocation.
	Removed     []string
	Diagnostics gitgrant.Diagnostics
	// Problems are failures to ask GitHub beyond one request's approvals
	// (those are PRRequest.PreviewError); the preview is incomplete.
	Problems []string
	// Notes are further remarks, one line each.
	Notes []string
	// FoldAfter folds tables with more rows into <details> (0: never).
	FoldAfter int
}

// PRRequest is one request file the pull request adds or changes.
type PRRequest struct {
	Path        string
	Requester   string
	Beneficiary string
	Emergency   bool
	Reason      string
	Ticket      string
	Grants      []PRGrant
	// Errors counts the file's validation errors; with errors there is
	// no plan and no approval preview.
	Errors int
	// Previewed is true when the approvals were checked.
	Previewed bool
	Ready     bool
	Needs     []PRNeed
	// Reasons are why merging now would not grant (missing approvals
	// included).
	Reasons      []string
	PreviewError string
}

// PRPolicyChange is what verifying the pull request's change to the
// policy files needs (rule 13): each changed file needs the approval of
// one of its code owners at the base commit.
type PRPolicyChange struct {
	Files []PRPolicyFile
	// Ready: merging now would verify the change. Blocked: approvals
	// alone will not (Reasons says why).
	Ready   bool
	Blocked bool
	// Reasons are why it would not be verified now, missing approvals
	// included.
	Reasons []string
}

// PRPolicyFile is one changed policy file.
type PRPolicyFile struct {
	Path    string
	Removed bool
	// ApprovedBy are the approvals that count so far.
	ApprovedBy []string
	// Missing: no code owner of the file approved yet; Owners can.
	Missing bool
	Owners  []string
}

// PRGrant is one grant as it would start: at the merge, or at Starts if
// later, for Duration or until Expires, never longer than Max.
type PRGrant struct {
	Provider  string
	Role      string
	Principal string
	Starts    time.Time
	Duration  gitgrant.Duration
	Expires   time.Time
	Max       gitgrant.Duration
}

// PRNeed is a grant short of approvals and who can give them.
type PRNeed struct {
	Provider  string
	Role      string
	Missing   int
	Owners    []string
	Approvers []string
}

// Counts returns the comment's errors and warnings.
func (c PRComment) Counts() (errs, warnings int) {
	for _, d := range c.Diagnostics {
		if d.Severity == gitgrant.SeverityWarning {
			warnings++
		} else {
			errs++
		}
	}
	return errs, warnings
}

// Headline is the one-line verdict, also the check run's title.
func (c PRComment) Headline() string {
	errs, warnings := c.Counts()
	waiting, blocked, ready, unchecked := 0, 0, 0, len(c.Problems)
	for _, r := range c.Requests {
		switch {
		case r.Errors > 0:
		case r.PreviewError != "" || !r.Previewed:
			unchecked++
		case r.Ready:
			ready++
		case blockedBeyondApprovals(r):
			blocked++
		default:
			waiting++
		}
	}
	var parts []string
	switch {
	case errs > 0:
		parts = append(parts, fmt.Sprintf("❌ %s", plural(errs, "error")))
	case unchecked > 0:
		parts = append(parts, "⚠️ approvals not checked (see below)")
	default:
		parts = append(parts, "✅ valid")
	}
	if warnings > 0 {
		parts = append(parts, plural(warnings, "warning"))
	}
	if ready > 0 {
		parts = append(parts, fmt.Sprintf("%s ready to grant on merge", plural(ready, "request")))
	}
	if waiting > 0 {
		parts = append(parts, fmt.Sprintf("%s waiting for approval", plural(waiting, "request")))
	}
	if blocked > 0 {
		parts = append(parts, fmt.Sprintf("%s that merging would not grant", plural(blocked, "request")))
	}
	if len(c.Removed) > 0 {
		parts = append(parts, fmt.Sprintf("%s removed (revoked on merge)", plural(len(c.Removed), "request")))
	}
	if pc := c.PolicyChange; pc != nil {
		switch {
		case pc.Ready:
			parts = append(parts, "policy change approved")
		case pc.Blocked:
			parts = append(parts, "policy change that merging would not put in force")
		default:
			parts = append(parts, "policy change waiting for a code owner")
		}
	}
	return strings.Join(parts, ", ")
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// PRCommentMarkdown writes the comment, starting with PRCommentMarker.
func PRCommentMarkdown(w io.Writer, c PRComment) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n### gitgrant: %s\n\n", PRCommentMarker, c.Headline())
	fmt.Fprintf(&b, "Pull request #%d at `%s`, judged by `gitgrant.yaml` and CODEOWNERS at its base commit `%s`: changes a pull request makes to them never apply to its own requests.\n", c.Number, ShortSHA(c.HeadSHA), ShortSHA(c.BaseSHA))
	if c.ConfigChanged {
		b.WriteString("\n> [!NOTE]\n> This pull request changes `gitgrant.yaml`. Its changes apply only after it merges; the requests in this same pull request are judged by the base branch's `gitgrant.yaml`. To use a new role or a longer maximum, merge the policy change first and then open the request.\n")
	}
	if c.OwnersChanged {
		b.WriteString("\n> [!NOTE]\n> This pull request changes CODEOWNERS. Approvals of its own requests still come from the code owners at the base commit.\n")
	}
	writePolicySection(&b, c)
	writePlanSection(&b, c)
	writeNeedsSection(&b, c)
	if len(c.Removed) > 0 {
		b.WriteString("\n#### Access ended early\n\n")
		for _, p := range c.Removed {
			fmt.Fprintf(&b, "- %s is deleted: its access is revoked at the first reconcile after the merge. Revocation needs no approval.\n", CodeSpan(p))
		}
	}
	if len(c.Diagnostics) > 0 {
		errs, warnings := c.Counts()
		fmt.Fprintf(&b, "\n#### Problems (%s, %s)\n\n", plural(errs, "error"), plural(warnings, "warning"))
		var t strings.Builder
		if err := MarkdownDiagnostics(&t, c.Diagnostics); err != nil {
			return err
		}
		fold(&t, len(c.Diagnostics), c.FoldAfter, "problems")
		b.WriteString(t.String())
	}
	if len(c.Problems) > 0 {
		b.WriteString("\n#### Not checked\n\nGitHub could not be asked; run the check again:\n\n")
		for _, p := range c.Problems {
			fmt.Fprintf(&b, "- %s\n", MarkdownText(p))
		}
	}
	if len(c.Notes) > 0 {
		b.WriteString("\n")
		for _, n := range c.Notes {
			fmt.Fprintf(&b, "_%s_\n", MarkdownText(n))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writePolicySection(b *strings.Builder, c PRComment) {
	pc := c.PolicyChange
	if pc == nil {
		return
	}
	b.WriteString("\n#### Policy change\n\ngitgrant puts a change to `gitgrant.yaml` or CODEOWNERS in force only once it is merged with the approval of a code owner of each changed file, by CODEOWNERS at the base commit and where it is merged; until then it keeps the last verified policy.\n\n")
	b.WriteString("| File | Approved by | Needs one of |\n|---|---|---|\n")
	for _, f := range pc.Files {
		path := codeCell(f.Path)
		if f.Removed {
			path += " (removed)"
		}
		approved, needs := codeList(f.ApprovedBy), "–"
		if approved == "" {
			approved = "–"
		}
		if f.Missing {
			needs = codeList(f.Owners)
			if needs == "" {
				needs = "nobody: no code owner at the base commit"
			}
		}
		fmt.Fprintf(b, "| %s | %s | %s |\n", path, approved, needs)
	}
	if !pc.Ready && len(pc.Reasons) > 0 {
		var list strings.Builder
		for _, reason := range pc.Reasons {
			fmt.Fprintf(&list, "- %s\n", MarkdownText(reason))
		}
		if pc.Blocked {
			b.WriteString("\nThe policy change would not be put in force if merged now, whoever approves it.\n\n")
		} else {
			b.WriteString("\nThe policy change would not be put in force if merged now.\n\n")
		}
		b.WriteString(foldText("Why", list.String()))
	}
}

func writePlanSection(b *strings.Builder, c PRComment) {
	var t strings.Builder
	rows := 0
	t.WriteString("| Request | For | Grant | Principal | Starts | Ends | Approval |\n|---|---|---|---|---|---|---|\n")
	for _, r := range c.Requests {
		if r.Errors > 0 {
			continue
		}
		// Logins in code spans: the comment names people without pinging
		// them on every update (GitHub requests the code owners' review).
		who := codeCell("@" + r.Beneficiary)
		if r.Beneficiary != r.Requester {
			who += fmt.Sprintf(" (asked by %s)", codeCell("@"+r.Requester))
		}
		if r.Emergency {
			who += " 🚨 emergency"
		}
		for i, g := range r.Grants {
			path, person, approval := codeCell(r.Path), who, approvalText(r)
			if i > 0 {
				path, person, approval = "″", "″", "″"
			}
			rows++
			fmt.Fprintf(&t, "| %s | %s | %s | %s | %s | %s | %s |\n", path, person, grantText(g.Provider, g.Role), principalCell(g.Principal), startText(g), endText(g), approval)
		}
	}
	if rows == 0 {
		return
	}
	b.WriteString("\n#### If merged\n\n")
	fold(&t, rows, c.FoldAfter, "grants")
	b.WriteString(t.String())
	for _, r := range c.Requests {
		if r.Errors == 0 && r.Reason != "" {
			fmt.Fprintf(b, "\n%s: %s", CodeSpan(r.Path), MarkdownText(r.Reason))
			if r.Ticket != "" {
				fmt.Fprintf(b, " (%s)", MarkdownText(r.Ticket))
			}
			b.WriteString("\n")
		}
	}
}

// blockedBeyondApprovals: the preview gives reasons besides the one per
// missing approval (which the approvals table already shows).
func blockedBeyondApprovals(r PRRequest) bool {
	return len(r.Reasons) > len(r.Needs)
}

func approvalText(r PRRequest) string {
	missing := 0
	for _, n := range r.Needs {
		missing += n.Missing
	}
	switch {
	case !r.Previewed:
		return "not checked"
	case r.Ready && r.Emergency && missing > 0:
		return "🚨 emergency: granted short, reviewed after"
	case r.Ready:
		return "✅ ready"
	case blockedBeyondApprovals(r):
		return "❌ would not be granted (below)"
	case missing > 0:
		return fmt.Sprintf("⏳ %d missing", missing)
	}
	return "❌ would not be granted"
}

func startText(g PRGrant) string {
	if g.Starts.IsZero() {
		return "at the merge"
	}
	return fmt.Sprintf("%s, or at the merge if later", g.Starts.UTC().Format("2006-01-02 15:04 UTC"))
}

func endText(g PRGrant) string {
	var s string
	switch {
	case g.Duration > 0:
		s = fmt.Sprintf("%s after the start", g.Duration)
		if g.Max > 0 {
			s += fmt.Sprintf(" (max %s)", g.Max)
		}
		if g.Max > 0 && g.Duration > g.Max {
			s = fmt.Sprintf("%s after the start (asked %s; the role allows %s)", g.Max, g.Duration, g.Max)
		}
	case !g.Expires.IsZero():
		s = g.Expires.UTC().Format("2006-01-02 15:04 UTC")
		if g.Max > 0 {
			s += fmt.Sprintf(", at most %s after the start", g.Max)
		}
		return s
	default:
		return "–"
	}
	return s
}

func writeNeedsSection(b *strings.Builder, c PRComment) {
	var t strings.Builder
	rows := 0
	t.WriteString("| Request | Grant | Missing | From |\n|---|---|---|---|\n")
	for _, r := range c.Requests {
		for _, n := range r.Needs {
			rows++
			from := codeList(n.Owners)
			if from == "" {
				from = "nobody: no code owner at the base commit"
			}
			if len(n.Approvers) > 0 {
				from += "; and one of the role's approvers: " + codeList(n.Approvers)
			}
			fmt.Fprintf(&t, "| %s | %s | %d | %s |\n", codeCell(r.Path), grantText(n.Provider, n.Role), n.Missing, from)
		}
	}
	var blocked []PRRequest
	for _, r := range c.Requests {
		if r.Errors == 0 && (r.PreviewError != "" || (r.Previewed && !r.Ready && blockedBeyondApprovals(r))) {
			blocked = append(blocked, r)
		}
	}
	if rows == 0 && len(blocked) == 0 {
		return
	}
	b.WriteString("\n#### Approvals\n")
	if rows > 0 {
		b.WriteString("\nCode owners approve on the pull request's final commit; an approval of an earlier commit does not count.\n\n")
		fold(&t, rows, c.FoldAfter, "missing approvals")
		b.WriteString(t.String())
	}
	for _, r := range blocked {
		if r.PreviewError != "" {
			fmt.Fprintf(b, "\n%s: approvals not checked: %s\n", CodeSpan(r.Path), MarkdownText(r.PreviewError))
			continue
		}
		var list strings.Builder
		for _, reason := range r.Reasons {
			fmt.Fprintf(&list, "- %s\n", MarkdownText(reason))
		}
		// The path stays out of the <summary>: HTML is no place for text
		// a requester chose.
		fmt.Fprintf(b, "\n%s would not be granted if merged now.\n\n", CodeSpan(r.Path))
		b.WriteString(foldText("Why", list.String()))
	}
}

// codeList writes logins and teams as code spans in a table cell, so
// that they do not ping.
func codeList(names []string) string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = codeCell(n)
	}
	return strings.Join(out, ", ")
}

// grantText is provider/role as Markdown text.
func grantText(provider, role string) string {
	return MarkdownText(provider + "/" + role)
}

// principalCell is a principal as code in a table cell, or a dash for
// none.
func principalCell(s string) string {
	if s == "" {
		return "-"
	}
	return codeCell(s)
}

func foldText(summary, body string) string {
	return "<details><summary>" + summary + "</summary>\n\n" + body + "\n</details>\n"
}

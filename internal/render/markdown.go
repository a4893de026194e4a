package render

import (
	"regexp"
	"strconv"
	"strings"
	"unicode"
)

// Everything gitgrant writes to GitHub in Markdown (the validate comment,
// the check run, the job summary, the reconcile comments, the emergency
// follow-up issue) carries text that requesters wrote: reasons, tickets,
// file names, principals, logins. GitHub renders that text as Markdown and
// HTML, turns @login and @org/team into mentions that notify, and #12 into
// references that link back. Every piece of such text goes through
// MarkdownText or CodeSpan, so that it renders as the characters it holds
// and does nothing else.

// zeroWidthSpace goes after every @ and before the digits of a #12: the
// text still reads "@alice" and "#12", but GitHub links and notifies only
// when a login follows the @ directly (Dependabot and Renovate break
// mentions in quoted release notes the same way). It is written as an
// entity so that it shows in golden files.
const zeroWidthSpace = "&#8203;"

// MarkdownText returns s as inline Markdown that renders as the text s
// holds, in running text, a list item or a table cell: Markdown and HTML
// syntax is escaped (no links, images, emphasis, headings, lists, quotes,
// tables, math or HTML comments), mentions and issue references are
// broken, white space (newlines included) collapses to single spaces, and
// other invisible characters (controls, bidi overrides) are shown as \u
// escapes.
func MarkdownText(s string) string {
	var b strings.Builder
	b.Grow(len(s) + len(s)/4)
	runes := []rune(s)
	pendingSpace := false
	leadingDigits := true // the output so far is digits only: "1." would start a list
	for i, r := range runes {
		if unicode.IsSpace(r) {
			pendingSpace = b.Len() > 0
			continue
		}
		if pendingSpace {
			b.WriteByte(' ')
			pendingSpace = false
			leadingDigits = false
		}
		atStart := b.Len() == 0
		switch {
		case strings.ContainsRune("\\`*_[]()!|~$", r):
			// Always markup somewhere: emphasis, code, links and images,
			// tables, strikethrough, math.
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '<':
			b.WriteString("&lt;")
		case r == '>':
			b.WriteString("&gt;")
		case r == '&':
			b.WriteString("&amp;")
		case r == '@':
			b.WriteString("@" + zeroWidthSpace)
		case r == '#':
			b.WriteString(`\#`)
			if i+1 < len(runes) && unicode.IsDigit(runes[i+1]) {
				b.WriteString(zeroWidthSpace)
			}
		case atStart && strings.ContainsRune("-+=", r), r == '.' && leadingDigits && !atStart:
			// Markup only where a block starts: a list item, a setext
			// underline, "1." of an ordered list. The output starts a line
			// when a caller writes it after "- " or at the start of a line.
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\u200d':
			// The zero-width joiner of emoji sequences (👩‍💻).
			b.WriteRune(r)
		case !strconv.IsPrint(r):
			b.WriteString(`\` + visibleRune(r))
		default:
			b.WriteRune(r)
		}
		leadingDigits = leadingDigits && r >= '0' && r <= '9'
	}
	return b.String()
}

// CodeSpan returns s as an inline code span for running text or a list
// item (in a table cell use codeCell): GitHub renders a code span's
// content literally and links no mention in it. The fence is one backtick
// longer than the longest run of backticks in s, and control, format and
// other invisible characters are shown as Go escapes (\n, \t, \u202e), so
// that a file name with a newline cannot end the line it is on.
func CodeSpan(s string) string {
	var b strings.Builder
	longest, run := 0, 0
	for _, r := range s {
		if r == '`' {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
		if !strconv.IsPrint(r) {
			b.WriteString(visibleRune(r))
		} else {
			b.WriteRune(r)
		}
	}
	content := b.String()
	// CommonMark strips one space at each end when both ends have one, and
	// a backtick at either end would join the fence: pad with a space.
	if content == "" {
		content = " "
	} else if strings.HasPrefix(content, "`") || strings.HasSuffix(content, "`") ||
		(strings.HasPrefix(content, " ") && strings.HasSuffix(content, " ") && strings.Trim(content, " ") != "") {
		content = " " + content + " "
	}
	fence := strings.Repeat("`", longest+1)
	return fence + content + fence
}

// codeCell is CodeSpan inside a table cell, where a pipe would end the
// cell even within the span: GitHub's tables take \| as a literal pipe
// before reading the span.
func codeCell(s string) string {
	return strings.ReplaceAll(CodeSpan(s), "|", `\|`)
}

// githubLogin is GitHub's rule for user names.
var githubLogin = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9]|-[A-Za-z0-9]){0,38}$`)

// Mention returns a mention of login, which notifies the person, when
// login is a GitHub user name; anything else is shown as a code span
// that notifies nobody.
func Mention(login string) string {
	if githubLogin.MatchString(login) {
		return "@" + login
	}
	return CodeSpan("@" + login)
}

// visibleRune writes r as a Go escape without quotes: \n, \x00, \u202e.
func visibleRune(r rune) string {
	q := strconv.QuoteRune(r)
	return q[1 : len(q)-1]
}

// ShortSHA is the first twelve characters of a commit hash, as every
// output names commits.
func ShortSHA(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}

// PRRef is "#n" for pull request n, "" for none (0).
func PRRef(n int) string {
	if n == 0 {
		return ""
	}
	return "#" + strconv.Itoa(n)
}

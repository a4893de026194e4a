package render

import (
	"bytes"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gitgrant/gitgrant/internal/testing/golden"

	"github.com/google/go-cmp/cmp"
	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/extension"
	gmhtml "github.com/yuin/goldmark/renderer/html"
	"golang.org/x/net/html"

	"github.com/gitgrant/gitgrant"
)

// escapeCase is an input and what an escaping function must make of it.
type escapeCase struct{ in, want string }

// wantEscapes fails the test for each case that f, named name, gets wrong.
func wantEscapes(t *testing.T, name string, f func(string) string, cases []escapeCase) {
	t.Helper()
	for _, tt := range cases {
		if got := f(tt.in); got != tt.want {
			t.Errorf("%s(%q)\n got %q\nwant %q", name, tt.in, got, tt.want)
		}
	}
}

func TestMarkdownText(t *testing.T) {
	t.Parallel()
	wantEscapes(t, "MarkdownText", MarkdownText, []escapeCase{
		{"Repair stuck orders after INC-1234", "Repair stuck orders after INC-1234"},
		{"✅ approved by @org/security", "✅ approved by @&#8203;org/security"},
		{"cc @alice and alice@example.com", "cc @&#8203;alice and alice@&#8203;example.com"},
		{"see #12 and org/repo#7, not #x", `see \#&#8203;12 and org/repo\#&#8203;7, not \#x`},
		{"![x](https://evil/x.png)", `\!\[x\]\(https://evil/x.png\)`},
		{"<img src=x> <!-- hide & seek -->", `&lt;img src=x&gt; &lt;\!-- hide &amp; seek --&gt;`},
		{"**b** _i_ ~~s~~ `c` $m$ a|b \\", `\*\*b\*\* \_i\_ \~\~s\~\~ \` + "`c\\`" + ` \$m\$ a\|b \\`},
		{"  first\n\n# Heading\n\t- item  ", `first \# Heading - item`},
		{"- item", `\- item`},
		{"+ item", `\+ item`},
		{"=====", `\=====`},
		{"> quote", "&gt; quote"},
		{"12. ordered", `12\. ordered`},
		{"1) ordered", `1\) ordered`},
		{"v1.2 is fine", "v1.2 is fine"},
		{"left\u202eright\x00", `left\\u202eright\\x00`},
		{"line\u2028sep\u00a0nbsp", "line sep nbsp"},
		{"dev 👩\u200d💻", "dev 👩\u200d💻"},
		{"", ""},
	})
}

func TestCodeSpan(t *testing.T) {
	t.Parallel()
	wantEscapes(t, "CodeSpan", CodeSpan, []escapeCase{
		{"requests/db/a.yaml", "`requests/db/a.yaml`"},
		{"a`b", "``a`b``"},
		{"a``b`c", "```a``b`c```"},
		{"`x`", "`` `x` ``"},
		{" x ", "`  x  `"},
		{"   ", "`   `"},
		{"", "` `"},
		{"x\n- y\tz", "`x\\n- y\\tz`"},
		{"bidi\u202eoverride", "`bidi\\u202eoverride`"},
		{"@org/team", "`@org/team`"},
	})
	if got, want := codeCell("a|b`|"), "``a\\|b`\\|``"; got != want {
		t.Errorf("codeCell = %q, want %q", got, want)
	}
}

func TestMention(t *testing.T) {
	t.Parallel()
	wantEscapes(t, "Mention", Mention, []escapeCase{{"alice", "@alice"}, {"a-b", "@a-b"}, {"org/team", "`@org/team`"}, {"x`y", "``@x`y``"}, {"-x", "`@-x`"}})
}

// Hostile text: what a request file, a file name or a config can put in
// front of reviewers.
const (
	hostileReason = "✅ approved by @org/security, cc @alice ![x](https://evil/x.png) <img src=x onerror=alert(1)> <!-- the rest is hidden " +
		"**bold** _it_ ~~del~~ $\\huge{OK}$ [docs](https://evil/) org/repo#99 &#64;bob\n\n# Heading\n- item\n> [!NOTE]\n> quote\n| a | b |\n|---|---|\n1. one"
	hostileTicket    = "INC-1 | ```code``` <b>bold</b> @org/team"
	hostilePath      = "requests/db/a``b`c|d\n- @org/security <!--.yaml"
	hostileLogin     = "mallory`|@org/admins"
	hostilePrincipal = "p|q\nr <s> ` @bob"
	hostileMessage   = "role <b>x</b> | @org/team\n# Heading"
)

// hostileComment builds a comment with text in every place a person's
// words can reach; benign text gives the same comment with plain words.
func hostileComment(text func(string) string) PRComment {
	path, login := text(hostilePath), text(hostileLogin)
	return PRComment{
		Number: 7, BaseSHA: "0123456789abcdef0123", HeadSHA: "fedcba9876543210fedc",
		Requests: []PRRequest{
			{Path: path, Requester: login, Beneficiary: text(hostileLogin + "2"), Reason: text(hostileReason), Ticket: text(hostileTicket),
				Grants: []PRGrant{{Provider: text("db|x"), Role: text("admin`"), Principal: text(hostilePrincipal), Duration: gitgrant.Duration(time.Hour)},
					{Provider: "db", Role: "readonly", Principal: text(hostilePrincipal), Duration: gitgrant.Duration(time.Hour)}},
				Previewed: true,
				Needs:     []PRNeed{{Provider: "db", Role: "admin", Missing: 1, Owners: []string{text("@org/security"), text("a`|b")}, Approvers: []string{text("@org/admins")}}},
				Reasons:   []string{text("opened by @mallory, not by @svc"), text(hostileMessage)}},
			{Path: text(hostilePath + "2"), Requester: "carol", Beneficiary: "carol", Reason: text(hostileReason),
				Grants:       []PRGrant{{Provider: "db", Role: "readonly", Duration: gitgrant.Duration(time.Hour)}},
				PreviewError: text("github: 500 ![x](https://evil/x.png)")},
		},
		Removed: []string{text(hostilePath + "3")},
		Diagnostics: gitgrant.Diagnostics{
			{Position: gitgrant.Position{File: text(hostilePath), Line: 3}, Severity: gitgrant.SeverityError, Field: text("reason|x"), Message: text(hostileMessage), Hint: text("- fix\n> it")},
		},
		Problems: []string{text("github: 502 <!-- @org/team")},
	}
}

// Every piece of hostile text renders as text: the rendered comment has
// the same elements as one with plain words (no image, link, heading,
// list, quote, HTML or extra table cell), the words themselves appear, and
// no @ outside code is followed by a name GitHub would notify.
func TestHostileTextRendersInert(t *testing.T) {
	t.Parallel()
	var hostile, benign bytes.Buffer
	if err := PRCommentMarkdown(&hostile, hostileComment(func(s string) string { return s })); err != nil {
		t.Fatal(err)
	}
	plain := func(s string) string { return fmt.Sprintf("word%d", len(s)) } // one word for each text
	if err := PRCommentMarkdown(&benign, hostileComment(plain)); err != nil {
		t.Fatal(err)
	}
	golden.Check(t, filepath.Join("testdata", "prcomment-hostile.md"), hostile.Bytes())

	gotTags, gotText, outsideCode := renderGFM(t, hostile.String())
	wantTags, _, _ := renderGFM(t, benign.String())
	if diff := cmp.Diff(wantTags, gotTags); diff != "" {
		t.Errorf("hostile text changed the rendered structure (-plain words +hostile):\n%s", diff)
	}
	if m := regexp.MustCompile(`(^|[^\w])@[A-Za-z0-9][\w/-]*`).FindAllString(outsideCode, -1); len(m) > 0 {
		t.Errorf("mentions GitHub would notify: %q", m)
	}
	if strings.Contains(outsideCode, "#99") {
		t.Errorf("issue reference org/repo#99 would link")
	}
	for _, s := range []string{hostileReason, hostileTicket, hostileMessage} {
		if want := inert(s); !strings.Contains(gotText, want) {
			t.Errorf("the text %q does not appear as itself, %q", s, want)
		}
	}
	for _, s := range []string{hostilePath, hostilePath + "3", hostileLogin, hostilePrincipal} {
		if want := strings.NewReplacer("\n", `\n`).Replace(s); !strings.Contains(gotText, want) {
			t.Errorf("the code %q does not appear as itself", want)
		}
	}
}

// inert is how MarkdownText's output reads: white space collapsed, a zero
// width space after @ and before an issue number.
func inert(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	s = strings.ReplaceAll(s, "@", "@\u200b")
	return regexp.MustCompile(`#([0-9])`).ReplaceAllString(s, "#\u200b$1")
}

// renderGFM renders Markdown as GitHub does (CommonMark, tables,
// strikethrough, task lists, autolinks, raw HTML let through) and returns
// the start tags, the text, and the text outside <code>.
func renderGFM(t *testing.T, md string) (tags []string, text, outsideCode string) {
	t.Helper()
	var out bytes.Buffer
	gm := goldmark.New(goldmark.WithExtensions(extension.GFM), goldmark.WithRendererOptions(gmhtml.WithUnsafe()))
	if err := gm.Convert([]byte(md), &out); err != nil {
		t.Fatal(err)
	}
	var all, outside strings.Builder
	inCode := 0
	z := html.NewTokenizer(&out)
	for {
		switch z.Next() {
		case html.ErrorToken:
			return tags, all.String(), outside.String()
		case html.StartTagToken, html.SelfClosingTagToken:
			name, _ := z.TagName()
			tags = append(tags, string(name))
			if string(name) == "code" {
				inCode++
			}
		case html.EndTagToken:
			if name, _ := z.TagName(); string(name) == "code" {
				inCode--
			}
		case html.CommentToken:
			tags = append(tags, "<!--"+string(z.Token().Data)+"-->")
		case html.TextToken:
			s := html.UnescapeString(string(z.Text()))
			all.WriteString(s)
			if inCode == 0 {
				outside.WriteString(s)
			}
		}
	}
}

package report

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gitgrant/gitgrant/internal/testing/browser"
	"github.com/gitgrant/gitgrant/internal/testing/golden"
)

// hostile is text a requester controls (a file name, a login, a role
// in a config they proposed) that tries to become markup.
// The escape would clear a terminal.
const hostile = "<img src=x onerror=\"document.title='pwned'\"><script>document.title='pwned'</script>\x1b[2J"

func sampleReport() *Report { return sample(hostile) }

// sample is a month of a busy repository; role names the third role.
func sample(role string) *Report {
	reason := "merged; gitgrant told the pull request why it grants nothing"
	if role == hostile {
		reason = hostile
	}
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	s := func(n int, p50, p90 float64) Stat { return Stat{Count: n, P50: &p50, P90: &p90} }
	return &Report{Version: Version, Head: "0123456789abcdef0123456789abcdef01234567", GeneratedAt: at.Add(30 * 24 * time.Hour),
		Since: at, Until: at.Add(30 * 24 * time.Hour),
		Sources: Sources{LedgerSince: at.Add(-90 * 24 * time.Hour), Policy: "trusted", PullRequestOpened: "unknown"},
		TimeToAccess: []Latency{
			{Provider: "orders-db", Role: "readonly", Granted: 41, WrittenToApproved: s(38, 900, 5400), ApprovedToMerged: s(38, 60, 600), MergedToGranted: s(41, 35, 70), WrittenToGranted: s(41, 1100, 6300)},
			{Provider: "orders-db", Role: "readwrite", Granted: 12, WrittenToApproved: s(12, 2700, 14400), ApprovedToMerged: s(12, 120, 900), MergedToGranted: s(12, 40, 75), WrittenToGranted: s(12, 3000, 15500)},
			{Provider: "warehouse", Role: role, Granted: 3, MergedToGranted: s(3, 50, 60), WrittenToGranted: s(3, 600, 800)},
			{Granted: 56, WrittenToApproved: s(50, 1200, 9000), ApprovedToMerged: s(50, 70, 700), MergedToGranted: s(56, 36, 72), WrittenToGranted: s(56, 1400, 9800)},
		},
		Privilege: []Privilege{
			{Provider: "orders-db", Role: "readonly", JITHours: 164, JITGrants: 41, JITPeople: 17, StandingHours: 720, JITShare: ptr(164.0 / 884),
				Standing: []StandingPoint{{At: at, Members: 1, Commit: "aaaa"}}},
			{Provider: "orders-db", Role: "readwrite", JITHours: 30.5, JITGrants: 12, JITPeople: 6, StandingHours: 1080, JITShare: ptr(30.5 / 1110.5),
				Standing: []StandingPoint{{At: at, Members: 2, Commit: "aaaa"}, {At: at.Add(15 * 24 * time.Hour), Members: 1, Commit: "bbbb"}}},
			{Provider: "warehouse", Role: role, JITHours: 6, JITGrants: 3, JITPeople: 1, Standing: []StandingPoint{{At: at, Members: 0}}, JITShare: ptr(1)},
		},
		Usage: []Usage{
			{Provider: "orders-db", Role: "readonly", Grants: 41, Used: 29, NotSeen: 9, Unknown: 3, Rate: ptr(29.0 / 38)},
			{Provider: "orders-db", Role: "readwrite", Grants: 12, Used: 11, NotSeen: 1, Rate: ptr(11.0 / 12)},
			{Provider: "warehouse", Role: role, Grants: 3, Unknown: 3},
		},
		Refusals: Refusals{Counts: map[string]int{RefusedUnreviewed: 2, RefusedInvalid: 1, RefusedAfterMerge: 3, RefusedNotGranted: 1, RefusedCommitTime: 0, RefusedDriftRemove: 2},
			Items: []Refused{
				{Time: at.Add(50 * time.Hour), Kind: RefusedUnreviewed, Request: "requests/orders-db/mallory.yaml", Requester: "mallory", Grants: []string{"orders-db/readwrite"}, Commit: "cccc", Detail: "direct push"},
				{Time: at.Add(70 * time.Hour), Kind: RefusedAfterMerge, Request: "requests/warehouse/" + role + ".yaml", Requester: role, Grants: []string{"warehouse/" + role}, PullRequest: 77, Commit: "dddd", Detail: reason},
			}},
		Approvals: []ApprovalStat{
			{Provider: "orders-db", Role: "readonly", Month: "2026-10", Merged: 20, Granted: 18, Refused: 2, Rate: ptr(0.9), Time: s(20, 1500, 7200)},
			{Provider: "orders-db", Role: "readonly", Month: "2026-11", Merged: 23, Granted: 23, Rate: ptr(1), Time: s(23, 1100, 6000), RateChange: ptr(0.1), P50Change: ptr(-400)},
			{Provider: "orders-db", Role: "readwrite", Month: "2026-11", Merged: 14, Granted: 12, Refused: 2, Rate: ptr(12.0 / 14), Time: s(14, 3000, 15000)},
		},
		Emergencies: []Emergency{
			{Time: at.Add(100 * time.Hour), Request: "requests/orders-db/erin.yaml", Requester: "erin", Grants: []string{"orders-db/readwrite"}, Commit: "eeee", Granted: true, FollowUp: FollowUpOpened},
		},
	}
}

func ptr(v float64) *float64 { return &v }

func TestRenderGolden(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name  string
		write func(*bytes.Buffer, *Report) error
	}{
		{"report.html", func(b *bytes.Buffer, r *Report) error { return WriteHTML(b, r) }},
		{"report.txt", func(b *bytes.Buffer, r *Report) error { return WriteText(b, r) }},
		{"report.csv", func(b *bytes.Buffer, r *Report) error { return WriteCSV(b, r) }},
		{"report.json", func(b *bytes.Buffer, r *Report) error { return WriteJSON(b, r) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var b bytes.Buffer
			if err := tt.write(&b, sampleReport()); err != nil {
				t.Fatal(err)
			}
			golden.Check(t, filepath.Join("testdata", tt.name), b.Bytes())
		})
	}
}

// TestHTMLIsSelfContained: nothing in the page can reach the network or
// run code, whatever the report holds.
func TestHTMLIsSelfContained(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	if err := WriteHTML(&b, sampleReport()); err != nil {
		t.Fatal(err)
	}
	page := strings.Replace(b.String(), `xmlns="http://www.w3.org/2000/svg"`, "", -1) // a name, never fetched
	// Attribute values hold escaped text only (html/template quotes
	// them and escapes quotes): what matters is the markup around them.
	page = regexp.MustCompile(`="[^"]*"`).ReplaceAllString(page, `=""`)
	for _, bad := range []*regexp.Regexp{
		regexp.MustCompile(`<(script|img|link|iframe|object|embed|image|use|foreignObject)\b`),
		regexp.MustCompile(`<[a-zA-Z][^>]*\s(src|href|on[a-z]+)=`),
		regexp.MustCompile(`@import|url\(|https?://`),
	} {
		if loc := bad.FindStringIndex(page); loc != nil {
			t.Errorf("the page matches %s: %s", bad, page[max(0, loc[0]-60):min(len(page), loc[1]+60)])
		}
	}
	if !strings.Contains(b.String(), `http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'"`) {
		t.Error("the page does not forbid everything but its inline style")
	}
}

var (
	rectRE  = regexp.MustCompile(`<rect class="bar ([a-z0-9]+)"`)
	chartRE = regexp.MustCompile(`<svg[^>]*data-chart="([a-z-]+)"`)
)

// TestHTMLInChromium renders the page in headless Chromium: the charts
// are there with a bar per row and segment, the hostile role and reason
// stay text, and the screenshot in docs/ comes from here (-update).
func TestHTMLInChromium(t *testing.T) {
	t.Parallel()
	rep := sampleReport()
	dir := t.TempDir()
	path := filepath.Join(dir, "report.html")
	var b bytes.Buffer
	if err := WriteHTML(&b, rep); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	url := browser.FileURL(t, path)
	dom := browser.DOM(t, url)

	var charts []string
	for _, m := range chartRE.FindAllStringSubmatch(dom, -1) {
		charts = append(charts, m[1])
	}
	if diff := cmp.Diff([]string{"time-to-access", "privilege", "usage", "refusals", "approvals"}, charts); diff != "" {
		t.Errorf("charts (-want +got):\n%s", diff)
	}
	bars := map[string]int{}
	for _, m := range rectRE.FindAllStringSubmatch(dom, -1) {
		bars[m[1]]++
	}
	want := map[string]int{
		"p50": len(rep.TimeToAccess), "p90": len(rep.TimeToAccess),
		"jit": len(rep.Privilege), "standing": len(rep.Privilege),
		"used": len(rep.Usage), "notseen": len(rep.Usage), "unknown": len(rep.Usage),
		"refused": len(refusalKinds), "rate": len(rep.Approvals),
	}
	if diff := cmp.Diff(want, bars); diff != "" {
		t.Errorf("bars by class (-want +got):\n%s", diff)
	}
	for _, label := range []string{`data-label="orders-db/readwrite"`, `data-label="orders-db/readonly 2026-11"`, `>all</text>`, `>used 76.3%</text>`} {
		if !strings.Contains(dom, label) {
			t.Errorf("the DOM lacks %s", label)
		}
	}
	// The hostile text is there, as text: no element came of it and no
	// script ran (the title would say so).
	if strings.Contains(dom, "<img") || strings.Contains(dom, "<script") || strings.Contains(dom, "pwned</title>") {
		t.Errorf("hostile text became markup:\n%s", dom)
	}
	if !strings.Contains(dom, "&lt;img src=x onerror=") {
		t.Errorf("the hostile role is not shown as text")
	}

}

// TestScreenshot renders the page docs/report.md shows; -update writes it
// to docs/report.png.
func TestScreenshot(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "report.html")
	var b bytes.Buffer
	if err := WriteHTML(&b, sample("analyst")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	png := browser.Screenshot(t, browser.FileURL(t, path), filepath.Join(dir, "report.png"), 1000, 1400)
	if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
		t.Fatalf("the screenshot is not a PNG")
	}
	if golden.Updating() {
		if err := os.WriteFile(filepath.Join("..", "..", "docs", "report.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestDocJSONExample: the example in docs/report.md is what the report
// prints: it decodes into Report without an unknown field.
func TestDocJSONExample(t *testing.T) {
	t.Parallel()
	var r Report
	if _, err := golden.DocExample(t, "../../docs/report.md", "## `--output json`", &r); err != nil {
		t.Errorf("the example does not decode: %v", err)
	}
	if r.Version != Version || len(r.TimeToAccess) == 0 || len(r.Emergencies) == 0 {
		t.Errorf("the example lost its content: %+v", r)
	}
}

package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/report"
	"github.com/gitgrant/gitgrant/internal/testing/gitserver"
)

// TestReportCommand runs `gitgrant report` on a local clone: every format,
// the filters, a file as output, and the usage errors.
func TestReportCommand(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	_, w := gitserver.NewAccess(t, "token", start, map[string]string{"gitgrant.yaml": "version: 1\n"})
	w.MergePR(1, "alice", "requests/orders-db/alice.yaml", auditRequest("alice", "readonly", "1h"))
	w.SquashPR(2, "bob", "requests/orders-db/bob.yaml", auditRequest("bob", "readwrite", "2h"))
	w.Write("requests/orders-db/mallory.yaml", auditRequest("mallory", "readwrite", "8h"))
	w.Commit("Give myself access")

	res := runCLI(t, nil, "report", "--repo", w.Dir, "--output", "json")
	if res.code != gitgrant.ExitOK {
		t.Fatalf("report: %d\n%s", res.code, res.stderr)
	}
	var rep report.Report
	dec := json.NewDecoder(strings.NewReader(res.stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rep); err != nil {
		t.Fatalf("%v\n%s", err, res.stdout)
	}
	if rep.Version != report.Version || !rep.Until.Equal(testNow) || rep.Refusals.Counts[report.RefusedUnreviewed] != 1 || len(rep.TimeToAccess) != 3 {
		t.Errorf("report = %+v", rep)
	}

	res = runCLI(t, nil, "report", "--repo", w.Dir, "--role", "readwrite", "--since", "2026-11-20", "--output", "csv")
	if res.code != gitgrant.ExitOK || !strings.HasPrefix(res.stdout, "section,provider,role,month,metric,value\n") ||
		!strings.Contains(res.stdout, "refusals,,readwrite,,unreviewed,1\n") || strings.Contains(res.stdout, "orders-db,readonly") {
		t.Errorf("csv: %d\n%s%s", res.code, res.stdout, res.stderr)
	}

	res = runCLI(t, nil, "report", "--repo", w.Dir)
	if res.code != gitgrant.ExitOK || !strings.Contains(res.stdout, "TIME TO ACCESS") || !strings.Contains(res.stdout, "orders-db/readwrite") {
		t.Errorf("text: %d\n%s%s", res.code, res.stdout, res.stderr)
	}

	page := filepath.Join(t.TempDir(), "report.html")
	res = runCLI(t, nil, "report", "--repo", w.Dir, "--output", "html", "--out", page)
	html, err := os.ReadFile(page)
	if res.code != gitgrant.ExitOK || res.stdout != "" || err != nil || !strings.Contains(string(html), `data-chart="privilege"`) {
		t.Errorf("html: %d %v\n%s%s", res.code, err, res.stdout, res.stderr)
	}

	for _, args := range [][]string{
		{"--output", "pdf"},
		{"--since", "2026-11-21", "--until", "2026-11-20"},
		{"--since", "yesterday"},
		{"extra"},
	} {
		if res := runCLI(t, nil, append([]string{"report", "--repo", w.Dir}, args...)...); res.code != gitgrant.ExitUsage {
			t.Errorf("report %v: exit %d, want %d\n%s", args, res.code, gitgrant.ExitUsage, res.stderr)
		}
	}
}

package render

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitgrant/gitgrant/internal/testing/golden"

	"github.com/gitgrant/gitgrant"
)

// sampleResult has one of everything, with text that must be escaped: a
// request path with a comma and a colon, an error with %, a carriage
// return and newlines, and a pipe that would split a table cell.
func sampleResult() Result {
	return Result{
		Actions: []Applied{
			{Action: gitgrant.Action{Op: gitgrant.OpGrant, Provider: "orders-db", Role: "readwrite", Principal: "alice", Request: "requests/orders-db/alice.yaml", Reason: "requests/orders-db/alice.yaml until 2026-11-22T16:00:00Z"}},
			{Action: gitgrant.Action{Op: gitgrant.OpRevoke, Provider: "orders-db", Role: "readonly", Principal: "bob", Request: "requests/orders-db/bob.yaml", Cause: gitgrant.CauseExpired, Reason: "requests/orders-db/bob.yaml expired at 2026-11-22T11:00:00Z"}},
			{Action: gitgrant.Action{Op: gitgrant.OpRevoke, Provider: "orders-db", Role: "readwrite", Principal: "mallory", Cause: gitgrant.CauseDrift, Reason: "no request explains it"}},
			{Action: gitgrant.Action{Op: gitgrant.OpReport, Provider: "orders-db", Role: "readonly", Principal: "eve", Reason: "drift: report only"}},
			{Action: gitgrant.Action{Op: gitgrant.OpGrant, Provider: "ldap", Role: "ops", Principal: "carol", Request: "requests/ldap/carol, ops:1.yaml"},
				Err: "ldap: connection refused at 100% load\r\nline two | with a pipe"},
			{Action: gitgrant.Action{Op: gitgrant.OpRevoke, Provider: "ldap", Role: "ops", Principal: "dave", Request: "requests/ldap/dave.yaml", Cause: gitgrant.CauseWithdrawn},
				Err: "timeout after 30s"},
		},
		Held:          []gitgrant.Action{{Op: gitgrant.OpRevoke, Provider: "orders-db", Role: "readonly", Principal: "frank", Cause: gitgrant.CauseDrift, Reason: "no request explains it"}},
		Notes:         3,
		CleanupCommit: "0123456789abcdef0123456789abcdef01234567",
		Removed:       []string{"requests/orders-db/bob.yaml"},
		CleanupPR:     12,
		Errors:        []string{"commenting on pull request #7: GitHub answered 502"},
	}
}

func TestResultMarkdown(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	if err := ResultMarkdown(&b, sampleResult(), 20); err != nil {
		t.Fatal(err)
	}
	golden.Check(t, filepath.Join("testdata", "result.md"), b.Bytes())
}

func TestResultMarkdownAllDone(t *testing.T) {
	t.Parallel()
	res := Result{Actions: sampleResult().Actions[:3], Notes: 1}
	var b bytes.Buffer
	if err := ResultMarkdown(&b, res, 2); err != nil {
		t.Fatal(err)
	}
	golden.Check(t, filepath.Join("testdata", "result-done.md"), b.Bytes())
}

func TestResultAnnotations(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	if err := ResultAnnotations(&b, sampleResult()); err != nil {
		t.Fatal(err)
	}
	golden.Check(t, filepath.Join("testdata", "result-annotations.txt"), b.Bytes())
	for i, line := range strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n") {
		if !strings.HasPrefix(line, "::error ") {
			t.Errorf("line %d is not a workflow command (a newline escaped the escaping): %q", i+1, line)
		}
	}
}

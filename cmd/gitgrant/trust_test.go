package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/gitgrant/gitgrant/internal/render"
	"github.com/gitgrant/gitgrant/internal/testing/accesstest"
)

// The first run of `gitgrant trust` names the missing root and the fix;
// --root first records it in git, pushed, so a fresh clone without
// GITGRANT_TRUST_ROOT honours it; a policy change pushed to main afterwards
// is listed as not in force.
func TestTrustCommand(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	r := accesstest.New(t, func() time.Time { return at }, map[string]string{
		"gitgrant.yaml":      "version: 1\nproviders:\n  db: {type: postgres, dsn_env: DB_DSN, roles: {ro: {approvals: 1}}}\n",
		".github/CODEOWNERS": "/gitgrant.yaml @security\n/requests/ @owner\n",
	}, at)
	noRoot := map[string]string{"GITGRANT_TRUST_ROOT": ""}

	res := runCLI(t, noRoot, "trust", "--repo", r.Work)
	if res.code != 1 || !strings.Contains(res.stdout, "gitgrant trust --root first") {
		t.Fatalf("before any root: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	res = runCLI(t, noRoot, "trust", "--repo", r.Work, "--root", "first")
	if res.code != 0 || !strings.Contains(res.stdout, "Policy in force") || !strings.Contains(res.stderr, "trust root recorded") {
		t.Fatalf("--root first: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	if notes := accesstest.Git(t, r.Remote, time.Time{}, "", "for-each-ref", "refs/notes/gitgrant"); notes == "" {
		t.Fatalf("the root was not pushed to the remote")
	}

	// A fresh clone, no environment: the recorded root is honoured.
	clone := t.TempDir() + "/clone"
	accesstest.Git(t, t.TempDir(), time.Time{}, "", "clone", "-q", r.Remote, clone)
	accesstest.Git(t, clone, time.Time{}, "", "fetch", "-q", "origin", "refs/notes/gitgrant:refs/notes/gitgrant")
	res = runCLI(t, noRoot, "trust", "--repo", clone, "--output", "json")
	var doc render.Trust
	if err := json.Unmarshal([]byte(res.stdout), &doc); err != nil || res.code != 0 || doc.How != "trust root" {
		t.Fatalf("fresh clone: exit %d, %+v, %v\n%s%s", res.code, doc, err, res.stdout, res.stderr)
	}

	// A policy change pushed straight to main is not in force.
	r.Commit(at.Add(time.Hour), "mallory", "owners", map[string]string{".github/CODEOWNERS": "/requests/ @mallory\n"})
	res = runCLI(t, noRoot, "trust", "--repo", r.Work)
	if res.code != 1 || !strings.Contains(res.stdout, "Not in force") || !strings.Contains(res.stdout, ".github/CODEOWNERS") {
		t.Errorf("after a pushed change: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}

	if res := runCLI(t, noRoot, "trust", "--repo", r.Work, "--root", "abc123"); res.code != 2 || !strings.Contains(res.stderr, "GITGRANT_TRUST_ROOT=abc123") {
		t.Errorf("--root SHA: exit %d\n%s", res.code, res.stderr)
	}
}

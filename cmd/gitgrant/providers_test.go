package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/render"
	"github.com/gitgrant/gitgrant/internal/testing/testenv"
)

// providersRepo writes an access repository whose gitgrant.yaml declares
// the given providers (YAML under `providers:`).
func providersRepo(t *testing.T, providersYAML string) string {
	t.Helper()
	dir := t.TempDir()
	cfg := `version: 1
policy:
  max_duration: 1d
identities:
  alice:
    email: alice@example.com
providers:
` + providersYAML + `cleanup:
  mode: push
`
	if err := os.WriteFile(filepath.Join(dir, "gitgrant.yaml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// groupRole creates a uniquely named group role on the test server
// (pgRoles), named after prefix.
func groupRole(t *testing.T, prefix string) (dsn, name string) {
	t.Helper()
	dsn, roles := pgRoles(t, prefix, []string{"group"}, nil)
	return dsn, roles["group"]
}

const cliDownPassword = "hunter2-never-print"

func TestProvidersCheck(t *testing.T) {
	t.Parallel()
	dsn, group := groupRole(t, "pcheck")
	downDSN := fmt.Sprintf("postgres://gitgrant:%s@127.0.0.1:%d/postgres?sslmode=disable&connect_timeout=5", cliDownPassword, testenv.FreePort(t))
	good := pgProvider("app-db", "APP_DB_DSN", "reader: {target: "+group+", approvals: 1}")
	down := pgProvider("down-db", "DOWN_DB_DSN", "reader: {approvals: 0}")
	missingRole := pgProvider("ghost-db", "APP_DB_DSN", "reader: {target: gitgrant_no_such_group, approvals: 0}")
	vars := map[string]string{"APP_DB_DSN": dsn, "DOWN_DB_DSN": downDSN}
	tests := []struct {
		name      string
		providers string
		wantCode  int
		wantLines []string
	}{
		{"reachable", good, gitgrant.ExitOK, []string{"ok    app-db (postgres): reachable, 1 role checked"}},
		{"down", good + down, gitgrant.ExitSystem, []string{
			"ok    app-db (postgres): reachable, 1 role checked",
			"FAIL  down-db (postgres): postgres down-db: connect: ",
		}},
		{"missing group role", missingRole, gitgrant.ExitSystem, []string{
			`FAIL  ghost-db (postgres): provider ghost-db: role reader: group role "gitgrant_no_such_group" does not exist`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			repo := providersRepo(t, tt.providers)
			r := runCLI(t, vars, "providers", "check", "--repo", repo)
			if r.code != tt.wantCode {
				t.Errorf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, tt.wantCode, r.stdout, r.stderr)
			}
			lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
			for _, want := range tt.wantLines {
				found := false
				for _, l := range lines {
					found = found || strings.HasPrefix(l, want)
				}
				if !found {
					t.Errorf("no line starts with %q in:\n%s", want, r.stdout)
				}
			}
			if strings.Contains(r.stdout+r.stderr, cliDownPassword) {
				t.Errorf("the output shows a password from a DSN:\n%s%s", r.stdout, r.stderr)
			}
		})
	}
}

func TestProvidersCheckJSON(t *testing.T) {
	t.Parallel()
	dsn, group := groupRole(t, "pjson")
	repo := providersRepo(t, pgProvider("app-db", "APP_DB_DSN", "reader: {target: "+group+", approvals: 1}", "writer: {target: "+group+", approvals: 1}")+
		pgProvider("unset-db", "UNSET_DSN", "reader: {approvals: 0}"))
	r := runCLI(t, map[string]string{"APP_DB_DSN": dsn}, "providers", "check", "--repo", repo, "--output", "json")
	if r.code != gitgrant.ExitSystem {
		t.Errorf("exit code %d, want %d; stderr: %s", r.code, gitgrant.ExitSystem, r.stderr)
	}
	var got render.ProvidersCheck
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, r.stdout)
	}
	want := render.ProvidersCheck{Version: 1, OK: false, Providers: []render.ProviderCheck{
		{Name: "app-db", Type: "postgres", OK: true, Roles: 2},
		{Name: "unset-db", Type: "postgres", OK: false, Roles: 1, Error: "provider unset-db: environment variable UNSET_DSN (from dsn_env) is not set"},
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("JSON (-want +got):\n%s", diff)
	}
}

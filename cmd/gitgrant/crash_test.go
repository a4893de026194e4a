package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gitgrant/gitgrant/internal/testing/accesstest"

	"github.com/google/go-cmp/cmp"

	"github.com/gitgrant/gitgrant/internal/ghfake"
)

// crashProvider is an exec provider whose target keeps one member per line
// in $CRASH_STATE/<target>. While $CRASH_STATE/block exists, a grant
// writes its pid to $CRASH_STATE/blocked and hangs: a pass stopped in the
// middle of its actions.
const crashProvider = `#!/usr/bin/env bash
set -euo pipefail
state=$CRASH_STATE
req=$(cat)
op=$(jq -r .op <<<"$req")
target=$(jq -r '.target // ""' <<<"$req")
principal=$(jq -r '.principal // ""' <<<"$req")
file=$state/$target
touch "$file"
case $op in
check) echo '{"ok":true}' ;;
list) jq -cR '{principal: .}' "$file" | jq -cs '{ok: true, members: .}' ;;
grant)
	if [[ -f $state/block ]]; then
		echo $$ >"$state/blocked"
		sleep 300
	fi
	grep -qxF "$principal" "$file" || echo "$principal" >>"$file"
	echo '{"ok":true}' ;;
revoke)
	grep -vxF "$principal" "$file" >"$file.tmp" || true
	mv "$file.tmp" "$file"
	echo '{"ok":true}' ;;
esac
`

// buildGitgrant compiles this command into a temporary directory.
func buildGitgrant(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "gitgrant")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestKillMidPassConverges: `gitgrant reconcile` is killed with SIGKILL
// while a grant is in flight (after the revocation, before the cleanup
// commit). The next run converges: the grant is made, the expired file is
// removed by exactly one cleanup commit, and a third run changes nothing.
func TestKillMidPassConverges(t *testing.T) {
	t.Parallel()
	if runtime.GOOS == "windows" {
		t.Skip("SIGKILL and the bash provider need a Unix system")
	}
	for _, tool := range []string{"bash", "jq"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is needed: %v", tool, err)
			}
			t.Skipf("SKIPPED: %s is not installed", tool)
		}
	}
	bin := buildGitgrant(t)
	now := time.Now().UTC().Truncate(time.Second)
	state := t.TempDir()
	script := filepath.Join(t.TempDir(), "provider.sh")
	if err := os.WriteFile(script, []byte(crashProvider), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(state, "wiki-editors"), []byte("bob\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	gh := ghfake.New(time.Now)
	t.Cleanup(gh.Close)
	gh.AddToken("crash-token")
	repo := gh.AddRepo("acme", "access", "main")
	w := newGitWork(t)
	w.write(map[string]string{
		"gitgrant.yaml": fmt.Sprintf(`identities:
  alice: {principals: {wiki: alice}}
  bob: {principals: {wiki: bob}}
providers:
  wiki:
    type: exec
    command: [%q]
    env: [CRASH_STATE]
    roles:
      editor: {target: wiki-editors, max_duration: 8h, approvals: 1}
`, script),
		".github/CODEOWNERS": "/requests/ @carol\n",
	})
	initial := w.commit(now.Add(-24*time.Hour), "admin", "Set up access repository")
	accesstest.Git(t, w.dir, time.Time{}, "", "push", "-q", "origin", "main")
	gh.AddCommit(repo, ghfake.Commit{SHA: initial, Author: "admin", Committer: "admin", Message: "init", Date: now.Add(-24 * time.Hour)}, nil)
	w.pullRequest(gh, repo, 1, "bob", map[string]string{"requests/wiki/bob.yaml": "requester: bob\ngrants: [{provider: wiki, role: editor}]\nduration: 1h\nreason: Fix the runbook\n"}, now.Add(-3*time.Hour), "carol")
	w.pullRequest(gh, repo, 2, "alice", map[string]string{"requests/wiki/alice.yaml": "requester: alice\ngrants: [{provider: wiki, role: editor}]\nduration: 2h\nreason: Write the postmortem\n"}, now.Add(-time.Minute), "carol")

	reconcile := func() *exec.Cmd {
		cmd := exec.Command(bin, "reconcile", "--repo", w.dir, "--log-format", "json")
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "CRASH_STATE=" + state,
			"GITHUB_TOKEN=crash-token", "GITGRANT_TRUST_ROOT=first", "GITHUB_REPOSITORY=acme/access", "GITHUB_API_URL=" + gh.BaseURL()}
		return cmd
	}
	members := func() []string {
		b, err := os.ReadFile(filepath.Join(state, "wiki-editors"))
		if err != nil {
			t.Fatal(err)
		}
		ms := strings.Fields(string(b))
		slices.Sort(ms)
		return ms
	}
	cleanups := func() int {
		log := accesstest.Git(t, w.remote, time.Time{}, "", "log", "--format=%B", "main")
		return strings.Count(log, "Gitgrant-Request: requests/wiki/bob.yaml\n")
	}

	// First run: hangs in alice's grant, after bob's revocation.
	if err := os.WriteFile(filepath.Join(state, "block"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	first := reconcile()
	var out strings.Builder
	first.Stdout, first.Stderr = &out, &out
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { first.Wait(); close(exited) }()
	deadline := time.Now().Add(60 * time.Second)
	var blocked []byte
	for {
		var err error
		if blocked, err = os.ReadFile(filepath.Join(state, "blocked")); err == nil && len(blocked) > 0 {
			break
		}
		select {
		case <-exited:
			t.Fatalf("the first run ended before reaching the grant:\n%s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			first.Process.Kill()
			<-exited
			t.Fatalf("the first run never reached the grant:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-exited
	// The grant call dies with it (as a connection to a target would).
	if pid, err := strconv.Atoi(strings.TrimSpace(string(blocked))); err == nil {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	os.Remove(filepath.Join(state, "block"))
	if got := members(); len(got) != 0 {
		t.Errorf("members after the kill = %v; want none (bob revoked, alice not yet granted)", got)
	}
	if n := cleanups(); n != 0 {
		t.Fatalf("a cleanup commit landed before the kill (%d)", n)
	}

	// Second run: converges.
	second := reconcile()
	if b, err := second.CombinedOutput(); err != nil {
		t.Fatalf("second run: %v\n%s", err, b)
	}
	if diff := cmp.Diff([]string{"alice"}, members()); diff != "" {
		t.Errorf("members after the restart (-want +got):\n%s", diff)
	}
	if n := cleanups(); n != 1 {
		t.Errorf("%d cleanup commits for bob's expired request, want exactly 1", n)
	}
	if files := accesstest.Git(t, w.remote, time.Time{}, "", "ls-tree", "-r", "--name-only", "main", "requests/"); files != "requests/wiki/alice.yaml" {
		t.Errorf("requests on the remote:\n%s", files)
	}

	// Third run: nothing left to do, no new commit.
	head := accesstest.Git(t, w.remote, time.Time{}, "", "rev-parse", "main")
	third := reconcile()
	b, err := third.CombinedOutput()
	if err != nil || !strings.Contains(string(b), "applied 0 action(s), 0 failed") {
		t.Errorf("third run: %v\n%s", err, b)
	}
	if again := accesstest.Git(t, w.remote, time.Time{}, "", "rev-parse", "main"); again != head {
		t.Errorf("a converged run made a commit")
	}
	if diff := cmp.Diff([]string{"alice"}, members()); diff != "" {
		t.Errorf("members after the third run (-want +got):\n%s", diff)
	}
}

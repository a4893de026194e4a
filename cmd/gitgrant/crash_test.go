package main

import (
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

	"github.com/google/go-cmp/cmp"

	"github.com/gitgrant/gitgrant/internal/testing/gitserver"
	"github.com/gitgrant/gitgrant/internal/testing/testenv"
)

// requireBashProvider stops a test whose exec provider is a bash script
// (bash, jq and flock) and that sends the signals named: it skips on
// Windows, and skips (fails in CI) where a tool is missing.
func requireBashProvider(t *testing.T, signals string) {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip(signals + " and the bash provider need a Unix system")
	}
	for _, tool := range []string{"bash", "jq", "flock"} {
		if _, err := exec.LookPath(tool); err != nil {
			testenv.Unavailable(t, tool, "install it (util-linux has flock)", err)
		}
	}
}

// TestKillMidPassConverges: `gitgrant reconcile` is killed with SIGKILL
// while a grant is in flight (after the revocation, before the cleanup
// commit). The next run converges: the grant is made, the expired file is
// removed by exactly one cleanup commit, and a third run changes nothing.
func TestKillMidPassConverges(t *testing.T) {
	t.Parallel()
	requireBashProvider(t, "SIGKILL")
	bin := buildGitgrant(t)
	w := newWikiWorld(t, "crash-token", "carol", "alice")
	w.merge(1, "bob", "1h", "carol", time.Now().UTC().Add(-3*time.Hour))
	w.merge(2, "alice", "2h", "carol", time.Now().UTC().Add(-time.Minute))
	env, args := w.env(t), []string{"reconcile", "--repo", w.Work, "--log-format", "json"}
	reconcile := func() ([]byte, error) {
		cmd := exec.Command(bin, args...)
		cmd.Env = env
		return cmd.CombinedOutput()
	}
	members := func() []string { ms := w.members(t); slices.Sort(ms); return ms }
	cleanups := func() int {
		log := gitserver.Run(t, w.Remote, "log", "--format=%B", "main")
		return strings.Count(log, "Gitgrant-Request: requests/wiki/bob.yaml\n")
	}

	// First run: hangs in alice's grant, after bob's revocation.
	if err := os.WriteFile(filepath.Join(w.state, "block"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	first := startProcess(t, bin, env, args...)
	var blocked []byte
	waitFor(t, "the first run to reach the grant", first.out, func() bool {
		if first.exited() {
			t.Fatalf("the first run ended before reaching the grant:\n%s", first.out)
		}
		blocked, _ = os.ReadFile(filepath.Join(w.state, "blocked"))
		return len(blocked) > 0
	})
	first.signal(t, syscall.SIGKILL)
	<-first.done
	// The grant call dies with it (as a connection to a target would).
	if pid, err := strconv.Atoi(strings.TrimSpace(string(blocked))); err == nil {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	os.Remove(filepath.Join(w.state, "block"))
	if got := members(); len(got) != 0 {
		t.Errorf("members after the kill = %v; want none (bob revoked, alice not yet granted)", got)
	}
	if n := cleanups(); n != 0 {
		t.Fatalf("a cleanup commit landed before the kill (%d)", n)
	}

	// Second run: converges.
	if b, err := reconcile(); err != nil {
		t.Fatalf("second run: %v\n%s", err, b)
	}
	if diff := cmp.Diff([]string{"alice"}, members()); diff != "" {
		t.Errorf("members after the restart (-want +got):\n%s", diff)
	}
	if n := cleanups(); n != 1 {
		t.Errorf("%d cleanup commits for bob's expired request, want exactly 1", n)
	}
	if files := gitserver.Run(t, w.Remote, "ls-tree", "-r", "--name-only", "main", "requests/"); files != "requests/wiki/alice.yaml" {
		t.Errorf("requests on the remote:\n%s", files)
	}

	// Third run: nothing left to do, no new commit.
	head := gitserver.Run(t, w.Remote, "rev-parse", "main")
	b, err := reconcile()
	if err != nil || !strings.Contains(string(b), "applied 0 action(s), 0 failed") {
		t.Errorf("third run: %v\n%s", err, b)
	}
	if again := gitserver.Run(t, w.Remote, "rev-parse", "main"); again != head {
		t.Errorf("a converged run made a commit")
	}
	if diff := cmp.Diff([]string{"alice"}, members()); diff != "" {
		t.Errorf("members after the third run (-want +got):\n%s", diff)
	}
}

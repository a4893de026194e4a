package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gitgrant/gitgrant/internal/testing/accesstest"
)

// wikiProvider is an exec provider whose target keeps one member per line
// in $WIKI_STATE/<target>, and which appends every grant and revoke it
// makes to $WIKI_STATE/calls as "op target principal pid", pid being the
// gitgrant process that ran it: the record of who did what, across
// processes. While $WIKI_STATE/block exists, a grant writes its pid to
// $WIKI_STATE/blocked and hangs first: a pass stopped in the middle of
// its actions.
const wikiProvider = `#!/usr/bin/env bash
set -euo pipefail
state=$WIKI_STATE
req=$(cat)
op=$(jq -r .op <<<"$req")
target=$(jq -r '.target // ""' <<<"$req")
principal=$(jq -r '.principal // ""' <<<"$req")
file=$state/$target
if [[ $op == grant && -f $state/block ]]; then
	echo $$ >"$state/blocked"
	sleep 300
fi
exec 9>"$state/lock"
flock 9
touch "$file"
case $op in
check) echo '{"ok":true}' ;;
list) jq -cR '{principal: .}' "$file" | jq -cs '{ok: true, members: .}' ;;
grant)
	grep -qxF "$principal" "$file" || echo "$principal" >>"$file"
	echo "grant $target $principal $PPID" >>"$state/calls"
	echo '{"ok":true}' ;;
revoke)
	grep -vxF "$principal" "$file" >"$file.tmp" || true
	mv "$file.tmp" "$file"
	echo "revoke $target $principal $PPID" >>"$state/calls"
	echo '{"ok":true}' ;;
esac
`

// wikiWorld is an access repository on the fake GitHub (clock: now,
// token: token) whose one provider, wiki, is wikiProvider with bob
// already an editor, for gitgrant run as its own process.
type wikiWorld struct {
	*accesstest.Repo
	state string // the provider's directory (WIKI_STATE)
	token string
}

func newWikiWorld(t *testing.T, token, owner string, people ...string) *wikiWorld {
	t.Helper()
	state := t.TempDir()
	script := filepath.Join(t.TempDir(), "provider.sh")
	if err := os.WriteFile(script, []byte(wikiProvider), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(state, "wiki-editors"), []byte("bob\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	identities := ""
	for _, p := range append([]string{"bob"}, people...) {
		identities += fmt.Sprintf("  %s: {principals: {wiki: %s}}\n", p, p)
	}
	w := accesstest.New(t, time.Now, map[string]string{
		"gitgrant.yaml": fmt.Sprintf(`identities:
%sproviders:
  wiki:
    type: exec
    command: [%q]
    env: [WIKI_STATE]
    roles:
      editor: {target: wiki-editors, max_duration: 8h, approvals: 1}
`, identities, script),
		".github/CODEOWNERS": "/requests/ @" + owner + "\n",
	}, time.Now().UTC().Add(-24*time.Hour))
	w.GH.AddToken(token)
	return &wikiWorld{Repo: w, state: state, token: token}
}

// merge brings in who's request for the wiki, for duration, through pull
// request n merged at merged and approved by the owner.
func (w *wikiWorld) merge(n int, who, duration, owner string, merged time.Time) {
	w.T.Helper()
	w.MergePR(n, who, map[string]string{
		"requests/wiki/" + who + ".yaml": "requester: " + who + "\ngrants: [{provider: wiki, role: editor}]\nduration: " + duration + "\nreason: Write the runbook\n",
	}, merged, owner)
}

// members are the wiki's editors, sorted as the provider keeps them.
func (w *wikiWorld) members(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(w.state, "wiki-editors"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(b))
}

// calls are the provider's record: "op target principal pid" lines.
func (w *wikiWorld) calls() []string {
	b, err := os.ReadFile(filepath.Join(w.state, "calls"))
	if err != nil {
		return nil
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

// env is the environment of a gitgrant process on the world: GitHub's
// address and token, the provider's directory, a home of its own, and
// extra.
func (w *wikiWorld) env(t *testing.T, extra ...string) []string {
	return append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "XDG_CACHE_HOME=" + t.TempDir(), "WIKI_STATE=" + w.state,
		"GITHUB_TOKEN=" + w.token, "GITGRANT_TRUST_ROOT=first", "GITHUB_REPOSITORY=acme/access", "GITHUB_API_URL=" + w.GH.BaseURL()}, extra...)
}

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

// process is a gitgrant built by buildGitgrant, running as its own
// process: its output collected, done closed once it has exited, and
// killed (resumed first, if stopped) when the test ends.
type process struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
}

func startProcess(t *testing.T, bin string, env []string, args ...string) *process {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	p := &process{cmd: cmd, out: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		if !p.exited() {
			cmd.Process.Signal(syscall.SIGCONT)
			cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

func (p *process) pid() string { return strconv.Itoa(p.cmd.Process.Pid) }

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// signal sends sig to the process.
func (p *process) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// exitCode waits for the process to exit and returns its status.
func (p *process) exitCode() int {
	<-p.done
	return p.cmd.ProcessState.ExitCode()
}

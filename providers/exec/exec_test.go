package exec

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/providers"
	"github.com/gitgrant/gitgrant/providers/providertest"
	"github.com/google/go-cmp/cmp"
)

// The test binary doubles as the program the provider runs: with
// GITGRANT_EXEC_HELPER=1 it serves one request against a state file.
func TestMain(m *testing.M) {
	if os.Getenv("GITGRANT_EXEC_HELPER") == "1" {
		os.Exit(helperMain(os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// state is the helper's pretend target system.
type state struct {
	Principals []string                     `json:"principals"`
	Members    map[string]map[string]string `json:"members"` // target -> principal -> until
}

func helperMain(stdin io.Reader, stdout, stderr io.Writer) int {
	path := os.Getenv("EXEC_STATE")
	switch os.Getenv("EXEC_MODE") {
	case "down":
		fmt.Fprintln(stderr, "dial tcp target.example:636: connection refused")
		return 2
	case "chatty":
		fmt.Fprint(stderr, strings.Repeat("noise ", 100_000))
		return 1
	case "garbage":
		fmt.Fprintln(stdout, "this is not json")
		return 0
	case "hang":
		child := exec.Command("sleep", "300")
		if err := child.Start(); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		os.WriteFile(path+".pid", []byte(strconv.Itoa(child.Process.Pid)), 0o600)
		time.Sleep(5 * time.Minute)
		return 0
	case "dumpenv":
		os.WriteFile(path+".env", []byte(strings.Join(os.Environ(), "\n")), 0o600)
	}
	var req Request
	if err := json.NewDecoder(stdin).Decode(&req); err != nil || req.Version != ProtocolVersion {
		fmt.Fprintln(stderr, "bad request", err)
		return 1
	}
	lock, err := os.OpenFile(path+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	defer lock.Close()
	syscall.Flock(int(lock.Fd()), syscall.LOCK_EX)
	var st state
	data, err := os.ReadFile(path)
	if err == nil {
		err = json.Unmarshal(data, &st)
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	ans := serve(&st, req)
	if data, err = json.Marshal(st); err == nil {
		err = os.WriteFile(path, data, 0o600)
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	json.NewEncoder(stdout).Encode(ans)
	return 0
}

func serve(st *state, req Request) Answer {
	if req.Op == "check" {
		return Answer{OK: true}
	}
	// The helper's target expires grants itself, like a system with
	// native expiry would.
	for _, ms := range st.Members {
		for p, until := range ms {
			if t, err := time.Parse(time.RFC3339, until); err == nil && time.Now().After(t) {
				delete(ms, p)
			}
		}
	}
	members, ok := st.Members[req.Target]
	if !ok {
		return Answer{Error: "no role " + req.Target, NotFound: true}
	}
	switch req.Op {
	case "list":
		ans := Answer{OK: true}
		for p, until := range members {
			ans.Members = append(ans.Members, AnswerMember{Principal: p, Until: until})
		}
		return ans
	case "grant":
		if strings.Contains(req.Principal, "!") {
			return Answer{Error: "names cannot contain !", InvalidName: true}
		}
		if !slices.Contains(st.Principals, req.Principal) {
			return Answer{Error: "no user " + req.Principal, NotFound: true}
		}
		members[req.Principal] = req.Until
	case "revoke":
		delete(members, req.Principal)
	default:
		return Answer{Error: "unknown op " + req.Op}
	}
	return Answer{OK: true}
}

// target writes a fresh state file and returns its path.
func newTarget(t *testing.T, principals []string, targets ...string) string {
	t.Helper()
	st := state{Principals: principals, Members: map[string]map[string]string{}}
	for _, tg := range targets {
		st.Members[tg] = map[string]string{}
	}
	data, _ := json.Marshal(st)
	path := filepath.Join(t.TempDir(), "state.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func config(command []any, settings map[string]any) gitgrant.ProviderConfig {
	return providertest.Config(Type, "exectest", map[string]string{"reader": "app-readers", "writer": "app-writers"}, map[string]any{
		"command": command,
		"env":     []any{"GITGRANT_EXEC_HELPER", "EXEC_STATE", "EXEC_MODE"},
	}, settings)
}

func deps(vars map[string]string) providers.Deps {
	d := providers.DefaultDeps()
	d.Getenv = func(k string) string {
		if k == "PATH" {
			return os.Getenv("PATH")
		}
		return vars[k]
	}
	return d
}

func openHelper(t *testing.T, state, mode string, settings map[string]any) providers.Provider {
	t.Helper()
	p, err := Open(t.Context(), config([]any{os.Args[0]}, settings),
		deps(map[string]string{"GITGRANT_EXEC_HELPER": "1", "EXEC_STATE": state, "EXEC_MODE": mode, "SECRET_TOKEN": "hunter2"}))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// testPrincipals is 20 names, the first four hard to pass through a shell.
func testPrincipals() []string {
	return append([]string{`o'brien"; rm -rf / #`, "$(id)", "ünïcødé", "`whoami`"}, providertest.Numbered("user%02d", 16)...)
}

func TestConformance(t *testing.T) {
	t.Parallel()
	for _, native := range []bool{false, true} {
		t.Run(fmt.Sprintf("native_expiry=%v", native), func(t *testing.T) {
			t.Parallel()
			ps := testPrincipals()
			st := newTarget(t, ps, "app-readers", "app-writers")
			settings := map[string]any{"native_expiry": native}
			providertest.Run(t, providertest.Harness{
				Open:             func(t *testing.T) providers.Provider { return openHelper(t, st, "", settings) },
				Roles:            []string{"reader", "writer"},
				Principals:       ps,
				MissingPrincipal: "nobody",
				OpenWithTarget: func(t *testing.T, target string) (providers.Provider, error) {
					cfg := config([]any{os.Args[0]}, nil)
					cfg.Roles = map[string]gitgrant.RoleConfig{"hostile": {Target: target}}
					return Open(t.Context(), cfg, deps(map[string]string{"GITGRANT_EXEC_HELPER": "1", "EXEC_STATE": st}))
				},
				Down: func(t *testing.T) (providers.Provider, error) {
					return openHelper(t, st, "down", nil), nil
				},
				Secrets: []string{"hunter2"},
			})
		})
	}
}

func TestEnvironmentIsOnlyPathAndAllowList(t *testing.T) {
	t.Parallel()
	st := newTarget(t, []string{"alice"}, "app-readers")
	p := openHelper(t, st, "dumpenv", nil)
	if _, err := p.Members(t.Context(), "reader"); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(st + ".env")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, kv := range strings.Split(string(data), "\n") {
		k, _, _ := strings.Cut(kv, "=")
		names = append(names, k)
	}
	slices.Sort(names)
	// SECRET_TOKEN is set in the parent but not allow-listed.
	want := []string{"EXEC_MODE", "EXEC_STATE", "GITGRANT_EXEC_HELPER", "PATH"}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("the program's environment (-want +got):\n%s", diff)
	}
}

func TestTimeoutKillsProcessGroup(t *testing.T) {
	t.Parallel()
	st := newTarget(t, []string{"alice"}, "app-readers")
	p := openHelper(t, st, "hang", map[string]any{"timeout": "1s"})
	_, err := p.Members(t.Context(), "reader")
	var sys *gitgrant.SystemError
	if !errors.As(err, &sys) || !sys.Retryable || !strings.Contains(err.Error(), "did not answer within 1s") {
		t.Fatalf("err = %v, want a retryable *gitgrant.SystemError about the timeout", err)
	}
	data, err := os.ReadFile(st + ".pid")
	if err != nil {
		t.Fatalf("the helper did not record its child: %v", err)
	}
	pid, _ := strconv.Atoi(string(data))
	// The grandchild was in the killed group; once reaped by init it is
	// gone. Poll rather than assume how quickly that happens.
	for i := 0; ; i++ {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			break
		}
		if i == 100 {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("the program's child %d outlived the timeout", pid)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestAnswersMapToErrorKinds(t *testing.T) {
	t.Parallel()
	st := newTarget(t, []string{"alice"}, "app-readers")
	p := openHelper(t, st, "", nil)
	tests := []struct {
		principal string
		want      error
	}{
		{"alice", nil},
		{"bob", providers.ErrNotFound},
		{"bang!", providers.ErrInvalidName},
	}
	for _, tt := range tests {
		err := p.Grant(t.Context(), providers.Grant{Role: "reader", Principal: tt.principal})
		if (tt.want == nil) != (err == nil) || (tt.want != nil && !errors.Is(err, tt.want)) {
			t.Errorf("Grant(%q) = %v, want %v", tt.principal, err, tt.want)
		}
	}
}

func TestStderrIsBounded(t *testing.T) {
	t.Parallel()
	st := newTarget(t, []string{"alice"}, "app-readers")
	p := openHelper(t, st, "chatty", nil)
	err := p.Revoke(t.Context(), "reader", "alice")
	if err == nil || !strings.Contains(err.Error(), "noise noise") || !strings.Contains(err.Error(), "[...]") {
		t.Fatalf("err = %.100v ... %q, want the start of stderr, marked as cut", err, err.Error()[max(0, len(err.Error())-40):])
	}
	if n := len(err.Error()); n > maxStderr+500 {
		t.Errorf("the error is %d bytes long; stderr must be bounded to %d", n, maxStderr)
	}
}

func TestBrokenPrograms(t *testing.T) {
	t.Parallel()
	st := newTarget(t, []string{"alice"}, "app-readers")
	tests := []struct {
		name      string
		command   []any
		mode      string
		want      string
		retryable bool
	}{
		{"not json", []any{os.Args[0]}, "garbage", "stdout is not one JSON answer", false},
		{"fails", []any{os.Args[0]}, "down", "connection refused", true},
		{"missing program", []any{"/nonexistent/gitgrant-helper"}, "", "cannot run /nonexistent/gitgrant-helper", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := Open(t.Context(), config(tt.command, nil), deps(map[string]string{"GITGRANT_EXEC_HELPER": "1", "EXEC_STATE": st, "EXEC_MODE": tt.mode}))
			if err != nil {
				t.Fatal(err)
			}
			err = p.Grant(t.Context(), providers.Grant{Role: "reader", Principal: "alice"})
			var sys *gitgrant.SystemError
			if !errors.As(err, &sys) || sys.Retryable != tt.retryable || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v (retryable %v), want a *gitgrant.SystemError mentioning %q, retryable %v", err, sys != nil && sys.Retryable, tt.want, tt.retryable)
			}
		})
	}
}

func TestOpenRejects(t *testing.T) {
	t.Parallel()
	open := func(cfg gitgrant.ProviderConfig) (providers.Provider, error) {
		return Open(t.Context(), cfg, deps(nil))
	}
	providertest.CheckRefusals(t, config([]any{"x"}, nil), open, []providertest.Refusal{
		{Name: "no command", Settings: map[string]any{"command": []any{}}, Says: "command must be"},
		{Name: "command not a list", Settings: map[string]any{"command": "sh -c 'x'"}, Says: "command must be"},
		{Name: "bad timeout", Settings: map[string]any{"timeout": "soon"}, Says: "timeout"},
		{Name: "bad env name", Settings: map[string]any{"env": []any{"lower"}}, Says: "env"},
		{Name: "env not a list", Settings: map[string]any{"env": "TOKEN"}, Says: "setting env must be a list"},
		{Name: "command with a number", Settings: map[string]any{"command": []any{"x", 1}}, Says: "setting command must be"},
		{Name: "unknown setting", Settings: map[string]any{"shell": true}, Says: `unknown setting "shell"`},
	})
}

// TestExampleScript runs the documented example program through the suite,
// so the example in the docs is known to work.
func TestExampleScript(t *testing.T) {
	t.Parallel()
	script, err := filepath.Abs("../../docs/providers/exec-example.sh")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(script); err != nil {
		t.Fatalf("the example script is missing: %v", err)
	}
	for _, tool := range []string{"bash", "jq", "flock"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("SKIP: the example needs %s, which is not installed", tool)
		}
	}
	dir := t.TempDir()
	ps := testPrincipals()[:6]
	if err := os.WriteFile(filepath.Join(dir, "users"), []byte(strings.Join(ps, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{"EXAMPLE_STATE_DIR": dir}
	open := func(t *testing.T) providers.Provider {
		cfg := config([]any{"bash", script}, map[string]any{"env": []any{"EXAMPLE_STATE_DIR"}})
		p, err := Open(t.Context(), cfg, deps(vars))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	providertest.Run(t, providertest.Harness{
		Open:             open,
		Roles:            []string{"reader", "writer"},
		Principals:       ps,
		MissingPrincipal: "nobody",
		Down: func(t *testing.T) (providers.Provider, error) {
			cfg := config([]any{"bash", script}, map[string]any{"env": []any{"EXAMPLE_STATE_DIR"}})
			return Open(t.Context(), cfg, deps(map[string]string{"EXAMPLE_STATE_DIR": filepath.Join(dir, "missing")}))
		},
		Concurrency: 6,
	})
}

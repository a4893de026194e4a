package engine_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/engine"
	"github.com/gitgrant/gitgrant/internal/ghapi"
	"github.com/gitgrant/gitgrant/internal/ghfake"
	"github.com/gitgrant/gitgrant/internal/handoff"
	"github.com/gitgrant/gitgrant/internal/testing/accesstest"
	"github.com/gitgrant/gitgrant/internal/testing/fakeclock"
	"github.com/gitgrant/gitgrant/internal/testing/sshkeys"
	"github.com/gitgrant/gitgrant/providers"
	"github.com/gitgrant/gitgrant/providers/fake"
)

const ephemeralConfig = `identities:
  alice: {principals: {db: alice}%s}
providers:
  db:
    type: postgres
    dsn_env: UNUSED_DSN
    roles:
      ro: {max_duration: 8h, approvals: 1, mode: ephemeral}
`

// An ephemeral account is created for the window, its secret handed over
// and found nowhere else, and dropped at expiry; an account no ledger line
// explains is dropped as drift; no key, no account.
func TestEphemeralAccountLifecycle(t *testing.T) {
	t.Parallel()
	key := sshkeys.Generate(t, sshkeys.Ed25519, "")
	w := newWorld(t, fmt.Sprintf(ephemeralConfig, ", ssh_keys: [\""+key.Public+"\"]"))
	w.merge(1, "alice", "requests/db/alice.yaml", "requester: alice\ngrants: [{provider: db, role: ro}]\nduration: 1h\nreason: repair stuck orders\n", t0.Add(-10*time.Minute))
	p := fake.New(fake.Options{Name: "db", Roles: []string{"ro"}, Ephemeral: []string{"ro"}})
	id, err := handoff.LoadIdentity(key.Private, nil)
	if err != nil {
		t.Fatal(err)
	}
	// delivered opens every hand-off comment on the pull request.
	delivered := func() []handoff.Payload {
		var out []handoff.Payload
		for _, c := range w.GH.Comments(w.Repo.Repo) {
			n, ok, err := handoff.ParseNotice(c.Body)
			if !ok || err != nil {
				continue
			}
			pl, err := handoff.Open(n.Sealed, id)
			if err != nil {
				t.Fatalf("the hand-off does not open with alice's key: %v", err)
			}
			out = append(out, pl)
		}
		return out
	}
	var logs bytes.Buffer
	ctx := context.Background()
	pass := func(now time.Time) error {
		t.Helper()
		eng := ephemeralEngine(w, p, now)
		eng.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		ps := mustPlan(t, eng)
		defer ps.Close()
		_, err := eng.Apply(ctx, ps, engine.ApplyOptions{Cleanup: true})
		return err
	}

	if err := pass(t0); err != nil {
		t.Fatal(err)
	}
	accounts, _ := p.Accounts(ctx, "ro")
	got := delivered()
	if len(accounts) != 1 || len(got) != 1 || got[0].Account.Name != accounts[0] || !strings.HasPrefix(accounts[0], "gg_ro_") {
		t.Fatalf("accounts %v, delivered %v: want one account, handed over", accounts, got)
	}
	secret := got[0].Account.Secret
	if len(secret) < 32 {
		t.Fatalf("secret %d characters", len(secret))
	}

	// Steady state: the account stands, nothing is created again.
	if err := pass(t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got, _ := p.Accounts(ctx, "ro"); len(got) != 1 || len(delivered()) != 1 {
		t.Fatalf("steady state: accounts %v, %d hand-offs", got, len(delivered()))
	}

	// An account made outside gitgrant (or by a crash before its record).
	if _, err := p.CreateAccount(ctx, "ro", "gg_ro_orphan000000", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := pass(t0.Add(2 * time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got, _ := p.Accounts(ctx, "ro"); len(got) != 1 || got[0] != accounts[0] {
		t.Fatalf("after drift: accounts %v, want only %s", got, accounts[0])
	}

	// Expiry drops it.
	if err := pass(t0.Add(51 * time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got, _ := p.Accounts(ctx, "ro"); len(got) != 0 {
		t.Fatalf("after expiry: accounts %v", got)
	}

	// The secret went to the hand-off only: not the logs, not git.
	if strings.Contains(logs.String(), secret) {
		t.Errorf("the secret is in the log")
	}
	for _, r := range w.GH.Requests() {
		if strings.Contains(string(r.Body), secret) {
			t.Errorf("the secret went to GitHub in the clear: %s %s", r.Method, r.Path)
		}
	}
	objects, err := exec.Command("git", "-C", w.Remote, "cat-file", "--batch-all-objects", "--batch").Output()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(objects, []byte(secret)) {
		t.Errorf("the secret is in a git object")
	}
	if !bytes.Contains(objects, []byte(accounts[0])) {
		t.Errorf("the account name is not in the ledger")
	}
}

func TestEphemeralNeedsAKeyAndADelivery(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		keys  string
		fault bool
		want  string
	}{
		{"no key", "", false, "no SSH key"},
		{"hand-off fails", ", ssh_keys: [\"KEY\"]", true, "it was dropped"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w, p, eng, ps := plannedAccount(t, tc.keys)
			if tc.fault {
				w.GH.Inject(ghfake.Fault{Method: "POST", PathContains: "/comments", Status: 503, Times: 100})
			}
			_, err := eng.Apply(context.Background(), ps, engine.ApplyOptions{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("apply error %v, want %q", err, tc.want)
			}
			if got, _ := p.Accounts(context.Background(), "ro"); len(got) != 0 {
				t.Errorf("accounts %v: none may be left that nobody holds the secret of", got)
			}
			if !tc.fault {
				told := false
				for _, c := range w.GH.Comments(w.Repo.Repo) {
					told = told || (c.Issue == 1 && strings.Contains(c.Body, "ssh-keygen -t ed25519"))
				}
				if !told {
					t.Errorf("the pull request was not told how to add a key")
				}
			}
		})
	}
}

// ephemeralEngine is the world's engine with the in-memory provider
// standing in for a postgres one (ephemeral accounts are a postgres and
// mysql mode).
func ephemeralEngine(w *world, p *fake.Provider, now time.Time) *engine.Engine {
	eng := w.engine(p, now)
	eng.Registry = providers.Registry{"postgres": func(context.Context, gitgrant.ProviderConfig, providers.Deps) (providers.Provider, error) {
		return keepOpen{p}, nil
	}}
	return eng
}

// Simulation, PostgreSQL seeds 1, 4 and 5: with GitHub hanging, the
// hand-off comment was sent under no deadline, holding the pass (and the
// revocations of the next one) for as long as GitHub hung. It is sent
// under the GitHub budget; the account is dropped.
func TestHandOffHasAGitHubDeadline(t *testing.T) {
	t.Parallel()
	w, p, eng, ps := plannedAccount(t, `, ssh_keys: ["KEY"]`)
	// From here on GitHub takes every comment and never answers.
	target, _ := url.Parse(w.GH.BaseURL())
	proxy := httputil.NewSingleHostReverseProxy(target)
	stop := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.Contains(r.URL.Path, "/comments") {
			select { // until the client gives up, or the test ends
			case <-r.Context().Done():
			case <-stop:
			}
			return
		}
		proxy.ServeHTTP(rw, r)
	}))
	defer hang.Close()
	defer close(stop)
	hung, err := ghapi.New(ghapi.Config{Token: accesstest.Token, APIURL: hang.URL + strings.TrimPrefix(w.GH.BaseURL(), target.Scheme+"://"+target.Host), Repository: "acme/access"}, ghapi.Options{Clock: fakeclock.NewAuto(t0)})
	if err != nil {
		t.Fatal(err)
	}
	eng.GitHub, eng.GitHubBudget = hung, 200*time.Millisecond
	done := make(chan error, 1)
	go func() {
		_, err := eng.Apply(context.Background(), ps, engine.ApplyOptions{})
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "it was dropped") {
			t.Errorf("apply error %v, want the hand-off to fail and the account dropped", err)
		}
	case <-time.After(time.Minute): // a hang, not a speed: the budget is 200 ms
		t.Fatal("apply still waits on a GitHub that never answers the hand-off")
	}
	if got, _ := p.Accounts(context.Background(), "ro"); len(got) != 0 {
		t.Errorf("accounts %v: none may be left that nobody holds the secret of", got)
	}
}

// plannedAccount is a world where alice's merged request for the
// ephemeral role ro is planned (not yet applied); keys is the identity's
// extra YAML, with KEY standing for a fresh public key.
func plannedAccount(t *testing.T, keys string) (*world, *fake.Provider, *engine.Engine, *engine.Pass) {
	t.Helper()
	key := sshkeys.Generate(t, sshkeys.Ed25519, "")
	w := newWorld(t, fmt.Sprintf(ephemeralConfig, strings.Replace(keys, "KEY", key.Public, 1)))
	w.merge(1, "alice", "requests/db/alice.yaml", "requester: alice\ngrants: [{provider: db, role: ro}]\nduration: 1h\nreason: repair stuck orders\n", t0.Add(-10*time.Minute))
	p := fake.New(fake.Options{Name: "db", Roles: []string{"ro"}, Ephemeral: []string{"ro"}})
	eng := ephemeralEngine(w, p, t0)
	ps := mustPlan(t, eng)
	t.Cleanup(func() { ps.Close() })
	return w, p, eng, ps
}

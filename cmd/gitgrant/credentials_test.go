package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gitgrant/gitgrant/internal/testing/accesstest"
	"github.com/gitgrant/gitgrant/internal/testing/golden"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/ghapi"
	"github.com/gitgrant/gitgrant/internal/ghfake"
	"github.com/gitgrant/gitgrant/internal/handoff"
	"github.com/gitgrant/gitgrant/internal/testing/fakeclock"
	"github.com/gitgrant/gitgrant/internal/testing/sshkeys"
	"github.com/gitgrant/gitgrant/internal/testing/testenv"
	"github.com/gitgrant/gitgrant/providers"
	"github.com/gitgrant/gitgrant/providers/postgres"
)

// handoffWorld is an access repository with a merged request for an
// ephemeral role (pull request 42), on a real git remote and the fake
// GitHub, where gitgrant (gitgrant[bot]) posts hand-offs and alice, whose
// public keys GitHub lists, reads them with her own token.
type handoffWorld struct {
	t           *testing.T
	gh          *ghfake.Server
	repo        *ghfake.Repo
	w           *accesstest.Repo
	gitgrant    *ghapi.Client
	ed, rsa     sshkeys.Pair
	log         *bytes.Buffer // everything gitgrant's side logged
	requestPath string
}

const handoffPR = 42

func newHandoffWorld(t *testing.T, group string) *handoffWorld {
	t.Helper()
	gh := ghfake.New(func() time.Time { return testNow })
	t.Cleanup(gh.Close)
	gh.AddInstallationToken("gitgrant-token", "gitgrant[bot]")
	gh.AddUserToken("alice-token", "alice")
	gh.AddUserToken("mallory-token", "mallory")
	repo := gh.AddRepo("acme", "access", "main")
	cfg := "identities:\n  alice: {}\nproviders:\n" + pgProvider("orders-db", "ORDERS_DB_DSN", fmt.Sprintf("support: {target: %q, mode: ephemeral, approvals: 0}", group))
	h := &handoffWorld{t: t, gh: gh, repo: repo, w: accesstest.On(t, gh, repo, map[string]string{"gitgrant.yaml": cfg}, testNow.Add(-48*time.Hour)),
		log: &bytes.Buffer{}, requestPath: "requests/orders-db/alice-support.yaml",
		ed: sshkeys.Generate(t, sshkeys.Ed25519, ""), rsa: sshkeys.Generate(t, sshkeys.RSA, "")}
	gh.SetUserKeys("alice", h.ed.Public, h.rsa.Public)
	h.w.MergePR(handoffPR, "alice", map[string]string{h.requestPath: "requester: alice\ngrants: [{provider: orders-db, role: support}]\nduration: 1h\nreason: Look at order 7\n"}, testNow.Add(-time.Hour))
	logger := slog.New(slog.NewJSONHandler(h.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c, err := ghapi.New(ghapi.Config{APIURL: gh.BaseURL(), Repository: "acme/access", Token: "gitgrant-token"}, ghapi.Options{Clock: fakeclock.NewAuto(testNow), Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	h.gitgrant = c
	return h
}

// handOff does what the engine does for an ephemeral grant after it
// recorded the account's name and created it: seal the secret to alice's
// keys and post it on the pull request.
func (h *handoffWorld) handOff(a providers.Account, until time.Time) {
	h.t.Helper()
	ctx := context.Background()
	keys, err := handoff.KeysFor(ctx, "alice", gitgrant.Identity{}, h.gitgrant)
	if err != nil {
		h.t.Fatal(err)
	}
	n, err := handoff.NewNotice(handoff.Payload{Account: a, Provider: "orders-db", Role: "support",
		Repository: "acme/access", PullRequest: handoffPR, Request: h.requestPath, Until: until}, "alice", keys)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := h.gitgrant.Comment(ctx, handoffPR, n.Markdown(handoffPR)); err != nil {
		h.t.Fatal(err)
	}
}

func (h *handoffWorld) vars(kv ...string) map[string]string {
	out := map[string]string{"GITHUB_TOKEN": "alice-token", "GITHUB_REPOSITORY": "acme/access", "GITHUB_API_URL": h.gh.BaseURL(), "HOME": h.t.TempDir()}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

// The whole hand-off on a real PostgreSQL: gitgrant records the name,
// creates the login, seals its password to the keys GitHub lists for
// alice and posts it; alice's `gitgrant credentials` finds gitgrant's
// comment (not mallory's look-alike), decrypts it with her ed25519 or RSA
// key and prints a DSN that logs in. Then no log, no request to GitHub
// and no git object holds the password.
func TestCredentialsEndToEnd(t *testing.T) {
	t.Parallel()
	dsn := testenv.PostgresDSN(t)
	suffix := make([]byte, 4)
	rand.Read(suffix)
	group := "gg" + hex.EncodeToString(suffix) + "_support"
	pgExec(t, dsn, `CREATE ROLE "`+group+`" NOLOGIN`, `CREATE TABLE "`+group+`_orders" (id int)`, `INSERT INTO "`+group+`_orders" VALUES (7)`,
		`GRANT SELECT ON "`+group+`_orders" TO "`+group+`"`)
	t.Cleanup(func() { pgExec(t, dsn, `DROP TABLE "`+group+`_orders"`, `DROP ROLE "`+group+`"`) })
	h := newHandoffWorld(t, group)
	ctx := t.Context()

	// gitgrant's side. The ledger names the account before it exists.
	prefix := gitgrant.DefaultAccountPrefix("support")
	name := gitgrant.NewAccountName(prefix)
	merge := accesstest.Git(t, h.w.Work, time.Time{}, "", "rev-parse", "HEAD")
	accesstest.Git(t, h.w.Work, time.Time{}, "", "notes", "--ref=gitgrant", "add", "-m", `{"event":"granted","account":"`+name+`"}`, merge)
	accesstest.Git(t, h.w.Work, time.Time{}, "", "push", "-q", "origin", "refs/notes/gitgrant")
	deps := providers.DefaultDeps()
	deps.Getenv = testEnv(map[string]string{"ORDERS_DB_DSN": dsn})
	deps.Logger = slog.New(slog.NewJSONHandler(h.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	p, err := postgres.Open(ctx, gitgrant.ProviderConfig{Name: "orders-db", Type: "postgres", Settings: map[string]any{"dsn_env": "ORDERS_DB_DSN"},
		Roles: map[string]gitgrant.RoleConfig{"support": {Target: group, Mode: gitgrant.ModeEphemeral}}}, deps)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() }) // after the drop below (cleanups run last first)
	eph := p.(providers.Ephemeral)
	until := time.Now().Add(time.Hour).UTC().Truncate(time.Second) // the server's clock judges VALID UNTIL
	a, err := eph.CreateAccount(ctx, "support", name, until)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := eph.DropAccount(context.Background(), "support", name); err != nil {
			t.Errorf("dropping the account: %v", err)
		}
	})
	deps.Logger.Info("created", "account", a)
	h.handOff(a, until)

	// mallory posts a look-alike, sealed to alice's key, pointing at a
	// server of hers.
	forged := a
	forged.Connect.Host, forged.Secret = "evil.example", "mallorys-password-0123456789abcdefghijk"
	n, err := handoff.NewNotice(handoff.Payload{Account: forged, Provider: "orders-db", Role: "support", Repository: "acme/access", PullRequest: handoffPR, Until: until}, "alice", []string{h.ed.Public})
	if err != nil {
		t.Fatal(err)
	}
	h.gh.AddComment(h.repo, handoffPR, "mallory", n.Markdown(handoffPR))

	// alice's side.
	var stderrs []string
	for _, key := range []sshkeys.Pair{h.ed, h.rsa} {
		r := runCLI(t, h.vars(), "credentials", "--pr", fmt.Sprint(handoffPR), "--identity", key.Private)
		stderrs = append(stderrs, r.stderr)
		if r.code != gitgrant.ExitOK || strings.TrimSpace(r.stdout) != handoff.DSN(a) {
			t.Fatalf("%s: exit %d, stdout %q, want the DSN; stderr:\n%s", filepath.Base(key.Private), r.code, r.stdout, r.stderr)
		}
		wantContains(t, "stderr", r.stderr, "ignored 1 hand-off comment(s) not written by a bot account", name+" on 127.0.0.1:5432/postgres (orders-db/support)", "from gitgrant[bot]'s comment")
	}
	conn, err := pgx.Connect(ctx, strings.TrimSpace(handoff.DSN(a))+"?sslmode=disable")
	if err != nil {
		t.Fatalf("logging in with the printed DSN: %v", err)
	}
	var id int
	if err := conn.QueryRow(ctx, `SELECT id FROM "`+group+`_orders"`).Scan(&id); err != nil || id != 7 {
		t.Errorf("SELECT as the ephemeral login: %d, %v", id, err)
	}
	conn.Close(ctx)

	// The default key, the request file instead of the number, the other
	// outputs.
	home := t.TempDir()
	os.MkdirAll(filepath.Join(home, ".ssh"), 0o700)
	key, _ := os.ReadFile(h.ed.Private)
	os.WriteFile(filepath.Join(home, ".ssh", "id_ed25519"), key, 0o600)
	r := runCLI(t, h.vars("HOME", home), "credentials", "--request", h.requestPath, "--repo", h.w.Work, "--output", "psql")
	stderrs = append(stderrs, r.stderr)
	if want := handoff.Command(a); r.code != gitgrant.ExitOK || strings.TrimSpace(r.stdout) != want {
		t.Errorf("--request --output psql: exit %d, %q, want %q; stderr:\n%s", r.code, r.stdout, want, r.stderr)
	}
	r = runCLI(t, h.vars("HOME", home), "credentials", "--pr", fmt.Sprint(handoffPR), "--output", "json")
	stderrs = append(stderrs, r.stderr)
	var doc credentialsJSON
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil || r.code != gitgrant.ExitOK {
		t.Fatalf("--output json: exit %d, %v\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	want := credentialsJSON{Version: 1, PullRequest: handoffPR, Credentials: []credentialJSON{{Provider: "orders-db", Role: "support", Account: name,
		Password: a.Secret, Kind: "postgres", Host: "127.0.0.1", Port: 5432, Database: "postgres", DSN: handoff.DSN(a), Until: until}}}
	if diff := cmp.Diff(want, doc); diff != "" {
		t.Errorf("--output json (-want +got):\n%s", diff)
	}

	// Where the password must never be: gitgrant's logs, alice's stderr,
	// whatever went to GitHub and back, and every object in the
	// repository and its remote (the ledger's notes included).
	places := map[string]string{"gitgrant's log": h.log.String(), "credentials' stderr": strings.Join(stderrs, "\n")}
	for i, req := range h.gh.Requests() {
		places[fmt.Sprintf("GitHub request %d %s %s", i, req.Method, req.Path)] = string(req.Body) + string(req.Response)
	}
	for _, dir := range []string{h.w.Work, h.w.Remote} {
		places["git objects of "+dir] = accesstest.Git(t, dir, time.Time{}, "", "cat-file", "--batch-all-objects", "--batch")
	}
	if !strings.Contains(places["git objects of "+h.w.Remote], name) || !strings.Contains(h.log.String(), name) {
		t.Fatal("the account's name is not in the ledger's notes or the log: the search below would prove nothing")
	}
	for where, text := range places {
		if strings.Contains(text, a.Secret) {
			t.Errorf("%s holds the password", where)
		}
	}
}

// What alice sees when there is nothing she can use, and why.
func TestCredentialsRefusals(t *testing.T) {
	t.Parallel()
	h := newHandoffWorld(t, "orders_support")
	a := providers.Account{Name: "gg_support_abcdef123456", Secret: "S3cret0123456789S3cret0123456789S3cret01",
		Connect: providers.Connection{Host: "db.internal", Port: 5432, Database: "orders", Kind: "postgres"}}
	stranger := sshkeys.Generate(t, sshkeys.Ed25519, "")
	pr := fmt.Sprint(handoffPR)
	tests := []struct {
		name    string
		setup   func()
		args    []string
		code    int
		wantErr []string
	}{
		{name: "nothing posted yet", args: []string{"--pr", pr, "--identity", h.ed.Private}, code: gitgrant.ExitInvalid,
			wantErr: []string{"no credentials on #42 from a bot account", "after the merge, at reconcile"}},
		{name: "only a look-alike by a person", setup: func() {
			n, _ := handoff.NewNotice(handoff.Payload{Account: a, Provider: "orders-db", Role: "support", Repository: "acme/access", PullRequest: handoffPR, Until: testNow.Add(time.Hour)}, "alice", []string{h.ed.Public})
			h.gh.AddComment(h.repo, handoffPR, "mallory", n.Markdown(handoffPR))
		}, args: []string{"--pr", pr, "--identity", h.ed.Private}, code: gitgrant.ExitInvalid,
			wantErr: []string{"ignored 1 hand-off comment(s) not written by a bot account (set --from to gitgrant's login): mallory", "no credentials on #42"}},
		{name: "another key", setup: func() { h.handOff(a, testNow.Add(time.Hour)) }, args: []string{"--pr", pr, "--identity", stranger.Private}, code: gitgrant.ExitInvalid,
			wantErr: []string{"encrypted to other SSH keys", "(ssh-ed25519)", "and not to " + stranger.Private}},
		{name: "from names someone else", args: []string{"--pr", pr, "--identity", h.ed.Private, "--from", "gitgrant-app[bot]"}, code: gitgrant.ExitInvalid,
			wantErr: []string{"not written by gitgrant-app[bot]"}},
		{name: "expired", setup: func() { h.handOff(a, testNow.Add(-time.Minute)) }, args: []string{"--pr", pr, "--identity", h.ed.Private}, code: gitgrant.ExitInvalid,
			wantErr: []string{"expired at 2026-11-22T11:59:00Z and has been dropped"}},
		{name: "no pull request named", args: []string{"--identity", h.ed.Private}, code: gitgrant.ExitUsage, wantErr: []string{"--pr N, or the request file with --request PATH"}},
		{name: "no key anywhere", args: []string{"--pr", pr}, code: gitgrant.ExitUsage, wantErr: []string{"no SSH key in", "--identity FILE"}},
		{name: "bad output", args: []string{"--pr", pr, "--output", "yaml"}, code: gitgrant.ExitUsage, wantErr: []string{"use dsn, command, psql, mariadb or json"}},
	}
	for _, tt := range tests { // in order: each adds comments
		if tt.setup != nil {
			tt.setup()
		}
		r := runCLI(t, h.vars(), append([]string{"credentials"}, tt.args...)...)
		if r.code != tt.code {
			t.Errorf("%s: exit %d, want %d; stderr:\n%s", tt.name, r.code, tt.code, r.stderr)
		}
		for _, w := range tt.wantErr {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("%s: stderr does not say %q:\n%s", tt.name, w, r.stderr)
			}
		}
		if strings.Contains(r.stderr+r.stdout, a.Secret) {
			t.Errorf("%s: the password was printed", tt.name)
		}
	}
	r := runCLI(t, map[string]string{"HOME": t.TempDir()}, "credentials", "--pr", pr, "--repo", h.w.Work)
	if r.code != gitgrant.ExitUsage || !strings.Contains(r.stderr, "set GITHUB_TOKEN") {
		t.Errorf("without a token: exit %d\n%s", r.code, r.stderr)
	}
}

// A hand-off comment whose clear text was edited after gitgrant posted
// it is refused.
func TestCredentialsRefusesAnEditedComment(t *testing.T) {
	t.Parallel()
	h := newHandoffWorld(t, "orders_support")
	a := providers.Account{Name: "gg_support_abcdef123456", Secret: "S3cret0123456789S3cret0123456789S3cret01",
		Connect: providers.Connection{Host: "db.internal", Port: 5432, Database: "orders", Kind: "postgres"}}
	h.handOff(a, testNow.Add(time.Hour))
	// Someone with write access rewrites gitgrant's comment.
	for _, c := range h.gh.Comments(h.repo) {
		edited := strings.Replace(c.Body, "host=db.internal", "host=evil.example", 1)
		ctx := context.Background()
		cl, err := ghapi.New(ghapi.Config{APIURL: h.gh.BaseURL(), Repository: "acme/access", Token: "gitgrant-token"}, ghapi.Options{Clock: fakeclock.NewAuto(testNow)})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := cl.UpsertComment(ctx, handoffPR, handoff.Marker, edited); err != nil {
			t.Fatal(err)
		}
	}
	r := runCLI(t, h.vars(), "credentials", "--pr", fmt.Sprint(handoffPR), "--identity", h.ed.Private)
	if r.code != gitgrant.ExitInvalid || !strings.Contains(r.stderr, "it was edited; do not use it") || r.stdout != "" {
		t.Errorf("exit %d, stdout %q; stderr:\n%s", r.code, r.stdout, r.stderr)
	}
}

// The JSON example in docs/ephemeral.md is what the command prints.
func TestEphemeralDocJSONExample(t *testing.T) {
	t.Parallel()
	var doc credentialsJSON
	if block, err := golden.DocExample(t, "../../docs/ephemeral.md", "`mariadb` or\n`json`:", &doc); err != nil || len(doc.Credentials) != 1 {
		t.Errorf("the example does not decode: %v\n%s", err, block)
	}
}

package gitrepo

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gitgrant/gitgrant/internal/testing/fakeclock"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/ssh"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/testing/gitserver"
	"github.com/gitgrant/gitgrant/internal/testing/testenv"
)

var at = time.Date(2026, 11, 2, 12, 0, 0, 0, time.UTC)

func removal(path, requester string) Removal {
	return Removal{Path: path, Requester: requester, Grants: []gitgrant.GrantRef{{Provider: "orders-db", Role: "readonly"}},
		ApprovedBy: []string{"dana"}, PullRequest: 7, GrantedAt: at.Add(-4 * time.Hour), ExpiredAt: at.Add(-time.Minute), RevokedAt: at}
}

func removeAll(rs ...Removal) Derive {
	return func(*Snapshot) ([]Removal, error) { return rs, nil }
}

func TestCleanupCommitAndTrailers(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.landAliceAndBob(7)
	r := w.open(t)
	opts := CommitOptions{Committer: Committer{Name: "Access Bot", Email: "bot@example.com"}, Clock: fakeclock.New(at)}

	res, err := r.Cleanup(context.Background(), removeAll(removal("requests/orders-db/alice.yaml", "alice"), removal("requests/orders-db/gone.yaml", "zed")), opts)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"requests/orders-db/alice.yaml"}, res.Removed); diff != "" {
		t.Errorf("removed (-want +got):\n%s", diff)
	}
	w.Git("pull", "-q", "--ff-only", "origin", "main")
	if got := w.Git("rev-parse", "HEAD"); got != res.Commit.String() {
		t.Fatalf("server main = %s, want the cleanup commit %s", got, res.Commit)
	}
	if got := w.Git("log", "-1", "--format=%cn <%ce> %cI"); got != "Access Bot <bot@example.com> 2026-11-02T12:00:00+00:00" {
		t.Errorf("committer = %q", got)
	}
	trailers := w.Git("log", "-1", "--format=%(trailers:only,unfold)")
	want := strings.Join([]string{
		"Gitgrant-Request: requests/orders-db/alice.yaml",
		"Gitgrant-Requester: alice",
		"Gitgrant-Grant: orders-db/readonly",
		"Gitgrant-Approved-By: dana",
		"Gitgrant-Granted-At: 2026-11-02T08:00:00Z",
		"Gitgrant-Expired-At: 2026-11-02T11:59:00Z",
		"Gitgrant-Revoked-At: 2026-11-02T12:00:00Z",
		"Gitgrant-Pull-Request: 7",
	}, "\n")
	if diff := cmp.Diff(want, trailers); diff != "" {
		t.Errorf("trailers as git parses them (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"requests/orders-db/bob.yaml"}, strings.Fields(w.Git("ls-files", "requests"))); diff != "" {
		t.Errorf("files left (-want +got):\n%s", diff)
	}

	// Running again finds nothing to do: no commit.
	again, err := r.Cleanup(context.Background(), removeAll(removal("requests/orders-db/alice.yaml", "alice")), opts)
	if err != nil || !again.Commit.IsZero() {
		t.Errorf("second run = %+v, %v; want no commit", again, err)
	}
}

// TestCleanupRetriesAfterConcurrentPush loses the race to another client
// twice, then lands; nothing the other client pushed is lost, and the
// removal is derived again from the main branch as it is then.
func TestCleanupRetriesAfterConcurrentPush(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.landAliceAndBob(1)
	r := w.open(t)
	calls := 0
	derive := func(s *Snapshot) ([]Removal, error) {
		calls++
		switch calls {
		case 1: // someone pushes between our fetch and our push
			w.Write("docs/one.md", "one\n")
			w.Commit("Concurrent change one")
			w.Push()
		case 2: // and someone removes bob's file meanwhile
			w.Git("rm", "-q", "requests/orders-db/bob.yaml")
			w.Commit("Done with bob's access")
			w.Push()
		}
		return []Removal{removal("requests/orders-db/alice.yaml", "alice"), removal("requests/orders-db/bob.yaml", "bob")}, nil
	}
	res, err := r.Cleanup(context.Background(), derive, CommitOptions{Clock: fakeclock.New(at)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Attempts != 3 {
		t.Errorf("attempts = %d, want 3", res.Attempts)
	}
	if diff := cmp.Diff([]string{"requests/orders-db/alice.yaml"}, res.Removed); diff != "" {
		t.Errorf("removed (-want +got):\n%s", diff)
	}
	w.Git("pull", "-q", "--ff-only", "origin", "main")
	log := w.Git("log", "--first-parent", "--format=%s", "-4")
	want := "gitgrant: remove 1 expired or revoked request\nDone with bob's access\nConcurrent change one\nRequest access (#2)"
	if diff := cmp.Diff(want, log); diff != "" {
		t.Errorf("history (-want +got):\n%s", diff)
	}
}

func TestCleanupToBranch(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.landAlice()
	mainBefore := w.Git("rev-parse", "HEAD")
	r := w.open(t)
	res, err := r.Cleanup(context.Background(), removeAll(removal("requests/orders-db/alice.yaml", "alice")), CommitOptions{Branch: "gitgrant/cleanup"})
	if err != nil {
		t.Fatal(err)
	}
	if got := gitserver.Run(t, w.bare, "rev-parse", "refs/heads/gitgrant/cleanup"); got != res.Commit.String() {
		t.Errorf("branch = %s, want %s", got, res.Commit)
	}
	if got := gitserver.Run(t, w.bare, "rev-parse", "refs/heads/main"); got != mainBefore {
		t.Errorf("main moved to %s", got)
	}
}

func TestCleanupSigned(t *testing.T) {
	t.Parallel()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	sshKey, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	entity, err := openpgp.NewEntity("gitgrant", "", "bot@example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	var pub bytes.Buffer
	aw, _ := armor.Encode(&pub, openpgp.PublicKeyType, nil)
	entity.Serialize(aw)
	aw.Close()

	tests := []struct {
		name   string
		signer Signer
		verify func(t *testing.T, w *world, commit plumbing.Hash, r *Repo)
	}{
		{"ssh", NewSSHSigner(sshKey), func(t *testing.T, w *world, commit plumbing.Hash, r *Repo) {
			if _, err := exec.LookPath("ssh-keygen"); err != nil {
				testenv.Unavailable(t, "ssh-keygen (git verifies SSH signatures with it)", "apt-get install openssh-client", err)
			}
			allowed := filepath.Join(t.TempDir(), "allowed_signers")
			os.WriteFile(allowed, []byte("bot@example.com "+string(ssh.MarshalAuthorizedKey(sshKey.PublicKey()))), 0o644)
			out := w.Git("-c", "gpg.format=ssh", "-c", "gpg.ssh.allowedSignersFile="+allowed, "log", "-1", "--format=%G?", commit.String())
			if out != "G" {
				t.Errorf("git verifies the SSH signature as %q, want G", out)
			}
		}},
		{"openpgp", &OpenPGPSigner{entity: entity}, func(t *testing.T, w *world, commit plumbing.Hash, r *Repo) {
			c, err := r.git.CommitObject(commit)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Verify(pub.String()); err != nil {
				t.Errorf("OpenPGP signature does not verify: %v", err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			w.landAlice()
			r := w.open(t)
			res, err := r.Cleanup(context.Background(), removeAll(removal("requests/orders-db/alice.yaml", "alice")),
				CommitOptions{Signer: tt.signer, Committer: Committer{Name: "bot", Email: "bot@example.com"}})
			if err != nil {
				t.Fatal(err)
			}
			w.Git("fetch", "-q", "origin")
			tt.verify(t, w, res.Commit, r)
		})
	}
}

func TestNotesRoundTrip(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	merge := w.MergePR(4, "alice", "requests/orders-db/alice.yaml", requestYAML("alice", "readonly", "4h"))
	w.Push()
	r := w.open(t)
	rec := NoteRecord{Version: NoteVersion, Event: "granted", Request: "requests/orders-db/alice.yaml", Requester: "alice",
		Grants: []gitgrant.GrantRef{{Provider: "orders-db", Role: "readonly"}}, PullRequest: 4, ApprovedBy: []string{"dana"},
		Approvals: []Approval{{Reviewer: "dana", ReviewID: 99, CommitID: merge, SubmittedAt: at.Add(-time.Hour), Via: "@acme/dba"}},
		GrantedAt: at, ExpiresAt: at.Add(4 * time.Hour), RecordedAt: at}
	note := Note{Commit: plumbing.NewHash(merge), Record: rec}
	if err := r.AddNotes(context.Background(), []Note{note}, CommitOptions{}); err != nil {
		t.Fatal(err)
	}
	// A second writer (a fresh cache) adds another record and repeats the first.
	r2 := w.open(t)
	ext := rec
	ext.Event, ext.ExpiresAt = "extended", at.Add(8*time.Hour)
	if err := r2.AddNotes(context.Background(), []Note{note, {Commit: note.Commit, Record: ext}}, CommitOptions{}); err != nil {
		t.Fatal(err)
	}
	w.Git("fetch", "-q", "origin", "refs/notes/*:refs/notes/*")
	shown := strings.Split(w.Git("notes", "--ref", "gitgrant", "show", merge), "\n")
	if len(shown) != 2 || !strings.Contains(shown[0]+shown[1], `"event":"extended"`) || !strings.Contains(shown[0]+shown[1], `"event":"granted"`) {
		t.Errorf("git notes show = %q, want the granted and the extended record once each", shown)
	}
	if err := r.Fetch(context.Background()); err != nil {
		t.Fatal(err)
	}
	notes, err := r.Notes()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]NoteRecord{ext, rec}, notes[note.Commit]); diff != "" {
		t.Errorf("notes (-want +got):\n%s", diff)
	}
}

func TestRepositoryFailures(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.landAlice()

	shallow := filepath.Join(t.TempDir(), "shallow")
	gitserver.Run(t, "", "clone", "-q", "--depth=1", "file://"+w.bare, shallow)
	corrupt := filepath.Join(t.TempDir(), "corrupt")
	gitserver.Run(t, "", "clone", "-q", "--no-local", w.bare, corrupt)
	packs, _ := filepath.Glob(filepath.Join(corrupt, ".git/objects/pack/*.pack"))
	for _, p := range packs {
		os.Truncate(p, 100)
	}
	down := gitserver.Start(t, testUser, testToken)
	down.NewBare(t, "access")
	downURL := down.URL("access")
	down.Close()
	hookDir := filepath.Join(w.bare, "hooks")

	tests := []struct {
		name string
		run  func(t *testing.T) error
		want string
	}{
		{"shallow clone", func(t *testing.T) error {
			_, err := Open(context.Background(), Options{Source: shallow})
			return err
		}, "shallow"},
		{"corrupt repository", func(t *testing.T) error {
			r, err := Open(context.Background(), Options{Source: corrupt})
			if err != nil {
				return err
			}
			_, err = r.ReadRevision("")
			return err
		}, "corrupt"},
		{"unreachable remote", func(t *testing.T) error {
			_, err := Open(context.Background(), Options{Source: downURL, Token: testToken, CacheDir: t.TempDir()})
			return err
		}, "connection refused"},
		{"wrong token", func(t *testing.T) error {
			_, err := Open(context.Background(), Options{Source: strings.Replace(w.server.URL("access"), "://", "://x:wrong-"+testToken+"@", 1), CacheDir: t.TempDir()})
			return err
		}, "authentication required"},
		{"missing branch", func(t *testing.T) error {
			r, err := Open(context.Background(), Options{Source: w.server.URL("access"), Token: testToken, CacheDir: t.TempDir(), Branch: "trunk"})
			if err != nil {
				return err
			}
			_, err = r.ReadRevision("")
			return err
		}, `branch "trunk" not found`},
		{"rejected push", func(t *testing.T) error {
			r := w.open(t)
			os.WriteFile(filepath.Join(hookDir, "pre-receive"), []byte("#!/bin/sh\necho 'protected branch' >&2\nexit 1\n"), 0o755)
			defer os.Remove(filepath.Join(hookDir, "pre-receive"))
			res, err := r.Cleanup(context.Background(), removeAll(removal("requests/orders-db/alice.yaml", "alice")), CommitOptions{})
			if err != nil && res.Attempts != 1 {
				t.Errorf("a rejection that is not a race was retried %d times", res.Attempts)
			}
			if ref, _ := r.git.Reference(plumbing.NewRemoteReferenceName("origin", "main"), true); ref != nil && ref.Hash() != plumbing.NewHash(w.Git("rev-parse", "HEAD")) {
				t.Errorf("the tracking branch moved to the rejected commit")
			}
			return err
		}, "pre-receive hook declined: the remote refused gitgrant's cleanup commit on main, which is how a protected branch answers a direct push: set `cleanup.mode: pull-request` in gitgrant.yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.run(t)
			var sys *gitgrant.SystemError
			if !errors.As(err, &sys) {
				t.Fatalf("err = %v (%T), want a *gitgrant.SystemError", err, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %q, want it to say %q", err, tt.want)
			}
			if strings.Contains(err.Error(), testToken) {
				t.Errorf("err = %q reveals the token", err)
			}
		})
	}
	// Nothing local was lost: the clones still hold their history.
	if got := gitserver.Run(t, shallow, "rev-list", "--count", "HEAD"); got != "1" {
		t.Errorf("shallow clone now has %s commits", got)
	}
}

func TestRedact(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"https://x-access-token:ghp_secret@github.com/acme/access.git", "https://REDACTED@github.com/acme/access.git"},
		{"https://github.com/acme/access.git", "https://github.com/acme/access.git"},
		{"git@github.com:acme/access.git", "git@github.com:acme/access.git"},
		{"/srv/access", "/srv/access"},
	}
	for _, tt := range tests {
		if got := Redact(tt.in); got != tt.want {
			t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	err := scrubbed{errors.New(`Get "https://u:ghp_secret@host/x": refused`)}
	if strings.Contains(err.Error(), "ghp_secret") {
		t.Errorf("scrubbed error = %q", err)
	}
}

// TestSSHRemote reads and pushes over ssh with a key, checking the host key
// against a known_hosts file.
func TestSSHRemote(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.landAlice()
	sshd := w.server.StartSSH(t)
	opts := Options{Source: sshd.URL("access"), SSHKeyFile: sshd.ClientKey, SSHKnownHosts: sshd.KnownHosts, CacheDir: t.TempDir()}
	r, err := Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	res, err := r.Cleanup(context.Background(), removeAll(removal("requests/orders-db/alice.yaml", "alice")), CommitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := gitserver.Run(t, w.bare, "rev-parse", "main"); got != res.Commit.String() {
		t.Errorf("main = %s, want the cleanup commit %s pushed over ssh", got, res.Commit)
	}

	// A host key that is not the known one is refused.
	other := filepath.Join(t.TempDir(), "known_hosts")
	os.WriteFile(other, []byte(strings.Replace(mustRead(t, sshd.KnownHosts), "127.0.0.1", "127.0.0.2", 1)), 0o600)
	opts.SSHKnownHosts, opts.CacheDir = other, t.TempDir()
	if _, err := Open(context.Background(), opts); err == nil || !strings.Contains(err.Error(), "is in no known_hosts file ("+other+"): add the host's published key there") {
		t.Errorf("unknown host: err = %v, want it refused with what to do", err)
	}

	// The same host with another key: someone in the middle.
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	sshPub, _ := ssh.NewPublicKey(pub)
	line := strings.Fields(mustRead(t, sshd.KnownHosts))[0] + " " + string(ssh.MarshalAuthorizedKey(sshPub))
	os.WriteFile(other, []byte(line), 0o600)
	opts.CacheDir = t.TempDir()
	if _, err := Open(context.Background(), opts); err == nil || !strings.Contains(err.Error(), "differs from the one in "+other+": refusing to connect") {
		t.Errorf("changed host key: err = %v, want it refused", err)
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

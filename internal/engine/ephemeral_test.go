package engine_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/engine"
	"github.com/gitgrant/gitgrant/providers"
	"github.com/gitgrant/gitgrant/providers/fake"
)

// handoff records what would be posted on pull requests, secrets included
// (the test checks they went nowhere else).
type handoff struct {
	mu        sync.Mutex
	delivered []providers.Account
	noKeys    bool
	fail      bool
}

func (h *handoff) Recipients(_ context.Context, login string, _ gitgrant.Identity) ([]string, error) {
	if h.noKeys {
		return nil, errors.New(login + " has no public SSH key on GitHub: add one (Settings → SSH keys), or list it under identities." + login + ".ssh_keys")
	}
	return []string{"ssh-ed25519 AAAAtest " + login}, nil
}

func (h *handoff) Deliver(_ context.Context, pr int, path string, acc providers.Account, recipients []string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.fail {
		return errors.New("GitHub: 503")
	}
	h.delivered = append(h.delivered, acc)
	return nil
}

const ephemeralConfig = `identities:
  alice: {principals: {db: alice}}
providers:
  db:
    type: exec
    command: [unused]
    roles:
      ro: {max_duration: 8h, approvals: 1, mode: ephemeral}
`

// An ephemeral account is created for the window, its secret handed over
// and found nowhere else, and dropped at expiry; an account no ledger line
// explains is dropped as drift; no key, no account.
func TestEphemeralAccountLifecycle(t *testing.T) {
	t.Parallel()
	w := newWorld(t, ephemeralConfig)
	w.merge(1, "alice", "requests/db/alice.yaml", "requester: alice\ngrants: [{provider: db, role: ro}]\nduration: 1h\nreason: repair stuck orders\n", t0.Add(-10*time.Minute))
	p := fake.New(fake.Options{Name: "db", Roles: []string{"ro"}, Ephemeral: []string{"ro"}})
	h := &handoff{}
	var logs bytes.Buffer
	ctx := context.Background()
	pass := func(now time.Time) error {
		t.Helper()
		eng := w.engine(p, now)
		eng.Handoff = h
		eng.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		ps, err := eng.Plan(ctx, false)
		if err != nil {
			t.Fatal(err)
		}
		defer ps.Close()
		_, err = eng.Apply(ctx, ps, engine.ApplyOptions{Cleanup: true})
		return err
	}

	if err := pass(t0); err != nil {
		t.Fatal(err)
	}
	accounts, _ := p.Accounts(ctx, "ro")
	if len(accounts) != 1 || len(h.delivered) != 1 || h.delivered[0].Name != accounts[0] || !strings.HasPrefix(accounts[0], "gg_ro_") {
		t.Fatalf("accounts %v, delivered %v: want one account, handed over", accounts, h.delivered)
	}
	secret := h.delivered[0].Secret
	if len(secret) < 32 {
		t.Fatalf("secret %d characters", len(secret))
	}

	// Steady state: the account stands, nothing is created again.
	if err := pass(t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got, _ := p.Accounts(ctx, "ro"); len(got) != 1 || len(h.delivered) != 1 {
		t.Fatalf("steady state: accounts %v, %d hand-offs", got, len(h.delivered))
	}

	// An account made outside gitgrant (or by a crash before its record).
	if _, err := p.CreateAccount(ctx, "ro", "gg_ro_orphan0000", t0.Add(time.Hour)); err != nil {
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
		name string
		h    *handoff
		want string
	}{
		{"no key", &handoff{noKeys: true}, "no public SSH key"},
		{"hand-off fails", &handoff{fail: true}, "it was dropped"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, ephemeralConfig)
			w.merge(1, "alice", "requests/db/alice.yaml", "requester: alice\ngrants: [{provider: db, role: ro}]\nduration: 1h\nreason: repair stuck orders\n", t0.Add(-10*time.Minute))
			p := fake.New(fake.Options{Name: "db", Roles: []string{"ro"}, Ephemeral: []string{"ro"}})
			eng := w.engine(p, t0)
			eng.Handoff = tc.h
			ps, err := eng.Plan(context.Background(), false)
			if err != nil {
				t.Fatal(err)
			}
			defer ps.Close()
			_, err = eng.Apply(context.Background(), ps, engine.ApplyOptions{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("apply error %v, want %q", err, tc.want)
			}
			if got, _ := p.Accounts(context.Background(), "ro"); len(got) != 0 {
				t.Errorf("accounts %v: none may be left that nobody holds the secret of", got)
			}
		})
	}
}

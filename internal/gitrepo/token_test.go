package gitrepo

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/testing/gitserver"
)

// rotatingTokens stands for a GitHub App: one installation token is valid
// at a time, and the source hands out the current one when asked.
type rotatingTokens struct {
	mu      sync.Mutex
	current string
	asked   int
}

func (r *rotatingTokens) rotate(tok string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.current = tok
}

func (r *rotatingTokens) valid(_, password string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return password == r.current
}

func (r *rotatingTokens) token() (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.asked++
	return r.current, nil
}

// A token source is asked before every fetch and push, so a long-running
// process never uses a token that lapsed since the last one.
func TestTokenSourceAskedForEveryFetchAndPush(t *testing.T) {
	t.Parallel()
	tokens := &rotatingTokens{current: "ghs_first"}
	s := gitserver.StartAuth(t, testUser, tokens.valid)
	s.NewBare(t, "access")
	work := gitserver.NewWork(t, strings.Replace(s.URL("access"), "://", "://"+testUser+":ghs_first@", 1), at)
	work.Write("gitgrant.yaml", "version: 1\nproviders: {}\n")
	work.Write("requests/orders-db/alice.yaml", requestYAML("alice", "readonly", "4h"))
	work.Commit("Initial access repository")
	work.Git("push", "-q", "origin", "main")

	r, err := Open(context.Background(), Options{Source: s.URL("access"), TokenSource: tokens.token, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatalf("Open with the first token: %v", err)
	}
	defer r.Close()

	tokens.rotate("ghs_second") // the first one lapsed; only a new one works
	if err := r.Fetch(context.Background()); err != nil {
		t.Fatalf("Fetch after the token changed: %v", err)
	}
	if _, err := r.Cleanup(context.Background(), removeAll(removal("requests/orders-db/alice.yaml", "alice")), CommitOptions{}); err != nil {
		t.Fatalf("Cleanup (fetch and push) after the token changed: %v", err)
	}
	if tokens.asked < 4 {
		t.Errorf("the token source was asked %d times, want once per fetch and push (at least 4)", tokens.asked)
	}
}

// A token source that fails is a system error that names no secret, and
// the fetch is not tried without credentials.
func TestTokenSourceFailure(t *testing.T) {
	t.Parallel()
	s := gitserver.Start(t, testUser, testToken)
	s.NewBare(t, "access")
	_, err := Open(context.Background(), Options{Source: s.URL("access"), CacheDir: t.TempDir(),
		TokenSource: func() (string, error) {
			return "", errors.New("GitHub App installation 7: get access token: 401 Unauthorized")
		}})
	var sys *gitgrant.SystemError
	if !errors.As(err, &sys) || !strings.Contains(err.Error(), "a token for git: GitHub App installation 7") {
		t.Fatalf("Open = %v, want a SystemError saying the token could not be had", err)
	}
}

package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gitgrant/gitgrant/internal/testing/accesstest"

	"github.com/google/go-cmp/cmp"

	"github.com/gitgrant/gitgrant/internal/testing/testenv"
)

// syncBuffer is a bytes.Buffer safe to write from the server while the
// test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func waitFor(t *testing.T, what string, logs *syncBuffer, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; log:\n%s", what, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func httpGet(url string) (int, string) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestServeEndToEnd: `gitgrant serve` on real parts (git, the fake GitHub
// behind go-github, PostgreSQL). The first pass revokes a member nobody
// asked for; a merged pull request's webhook grants; the timer set to the
// window's end revokes; the cleanup commit lands; the metrics say so.
func TestServeEndToEnd(t *testing.T) {
	t.Parallel()
	dsn, roles := pgRoles(t, "serve", []string{"rw"}, []string{"alice", "mallory"})
	rw, alice, mallory := roles["rw"], roles["alice"], roles["mallory"]
	pgExec(t, dsn, "GRANT "+rw+" TO "+mallory)

	now := time.Now().UTC().Truncate(time.Second)
	w := accesstest.New(t, time.Now, map[string]string{
		"gitgrant.yaml":      pgConfig("orders-db", "SERVE_DSN", map[string]string{"alice": alice}, "readwrite: {target: "+rw+", max_duration: 4h, approvals: 1}"),
		".github/CODEOWNERS": "/requests/orders-db/ @carol\n",
	}, now.Add(-24*time.Hour))
	w.GH.AddToken("serve-token") // distinct enough to look for in the log

	const secret = "serve-e2e-secret"
	vars := map[string]string{"SERVE_DSN": dsn, "GITHUB_TOKEN": "serve-token", "GITHUB_REPOSITORY": "acme/access", "GITHUB_API_URL": w.GH.BaseURL(), "GITGRANT_WEBHOOK_SECRET": secret}
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	logs := &syncBuffer{}
	e := &env{stdin: strings.NewReader(""), stdout: logs, stderr: logs, getenv: testEnv(vars)}
	ctx, cancel := context.WithCancel(context.Background())
	exit := make(chan int, 1)
	go func() {
		exit <- run(ctx, []string{"serve", "--listen", addr, "--repo", w.Work, "--resync", "1h", "--log-format", "json"}, e)
	}()
	t.Cleanup(func() {
		cancel()
		if code := <-exit; code != 0 {
			t.Errorf("serve exited %d; log:\n%s", code, logs.String())
		}
	})
	base := "http://" + addr
	waitFor(t, "/readyz", logs, func() bool { code, _ := httpGet(base + "/readyz"); return code == http.StatusOK })
	waitFor(t, "the drift revocation", logs, func() bool { return len(pgMembers(t, dsn, rw)) == 0 })

	// A pull request merges (its window, from the merge time on GitHub,
	// ends 10 seconds from now) and GitHub delivers the webhook.
	merged := time.Now().UTC().Add(-50 * time.Second)
	w.MergePR(1, "alice", map[string]string{"requests/orders-db/alice.yaml": "requester: alice\ngrants: [{provider: orders-db, role: readwrite}]\nduration: 1m\nreason: Repair stuck orders\n"}, merged, "carol")
	body := `{"ref":"refs/heads/main"}`
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(body))
	req, _ := http.NewRequest(http.MethodPost, base+"/webhook", strings.NewReader(body))
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("webhook: %d", resp.StatusCode)
	}
	waitFor(t, "the grant after the webhook", logs, func() bool { return cmp.Equal([]string{alice}, pgMembers(t, dsn, rw)) })
	waitFor(t, "the revocation at expiry", logs, func() bool { return len(pgMembers(t, dsn, rw)) == 0 })
	waitFor(t, "the cleanup commit", logs, func() bool {
		return accesstest.Git(t, w.Remote, time.Time{}, "", "ls-tree", "-r", "--name-only", "main", "requests/") == ""
	})
	waitFor(t, "the revocation delay in /metrics", logs, func() bool {
		_, m := httpGet(base + "/metrics")
		return strings.Contains(m, "gitgrant_revocation_delay_seconds_count 1") && strings.Contains(m, "gitgrant_merge_to_grant_seconds_count 1")
	})
	if strings.Contains(logs.String(), "serve-token") || strings.Contains(logs.String(), secret) {
		t.Errorf("a secret reached the log")
	}
	// git alone tells the whole story.
	audit := runCLI(t, nil, "audit", "--repo", w.Remote, "--output", "csv")
	var events []string
	for _, line := range strings.Split(strings.TrimSpace(audit.stdout), "\n")[1:] {
		if strings.Contains(line, "requests/orders-db/alice.yaml") {
			events = append(events, strings.Split(line, ",")[1])
		}
	}
	if diff := cmp.Diff([]string{"requested", "approved", "granted", "expired", "cleaned-up"}, events); diff != "" {
		t.Errorf("audit events (-want +got):\n%s\n%s", diff, audit.stdout)
	}
	msg := accesstest.Git(t, w.Remote, time.Time{}, "", "log", "-1", "--format=%B", "main")
	if !strings.Contains(msg, "Gitgrant-Request: requests/orders-db/alice.yaml") {
		t.Errorf("cleanup commit:\n%s", msg)
	}
}

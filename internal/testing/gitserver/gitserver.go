// Package gitserver runs git's own smart-HTTP server (git http-backend) behind
// net/http/cgi for tests, with basic authentication, serving bare
// repositories that the git CLI creates. Tests talk to it exactly as gitgrant
// talks to GitHub: over HTTPS-style smart HTTP with a token.
package gitserver

import (
	"bytes"
	"context"
	"crypto/subtle"
	"fmt"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gitgrant/gitgrant/internal/testing/testenv"
)

// Git finds the git CLI and its http-backend, or marks the test unavailable
// (skip locally, fail in CI).
func Git(t testing.TB) string {
	t.Helper()
	path, err := exec.LookPath("git")
	if err != nil {
		testenv.Unavailable(t, "the git CLI", "install git (apt-get install git)", err)
	}
	return path
}

// Server is a smart-HTTP git server over a directory of bare repositories.
type Server struct {
	*httptest.Server
	Root     string // directory holding <name>.git bare repositories
	User     string
	Password string
}

// Start serves the bare repositories under a new temporary directory.
// Every request must authenticate as user/password (basic auth), as with a
// GitHub token.
func Start(t testing.TB, user, password string) *Server {
	t.Helper()
	s := StartAuth(t, user, func(u, p string) bool {
		return subtle.ConstantTimeCompare([]byte(u), []byte(user)) == 1 && subtle.ConstantTimeCompare([]byte(p), []byte(password)) == 1
	})
	s.Password = password
	return s
}

// StartAuth is Start with a server that asks valid whether the basic auth
// of each request is a credential, as GitHub accepts any user name with a
// token that is valid now: an App's installation token until it lapses.
// user is the name the git CLI sends (AuthURL); Password is left empty.
func StartAuth(t testing.TB, user string, valid func(user, password string) bool) *Server {
	t.Helper()
	git := Git(t)
	out, err := exec.Command(git, "--exec-path").Output()
	if err != nil {
		testenv.Unavailable(t, "git --exec-path", "install git", err)
	}
	backend := filepath.Join(strings.TrimSpace(string(out)), "git-http-backend")
	if _, err := os.Stat(backend); err != nil {
		testenv.Unavailable(t, "git-http-backend", "install git (it ships with git-core)", err)
	}
	s := &Server{Root: t.TempDir(), User: user}
	h := &cgi.Handler{
		Path: backend,
		Dir:  s.Root,
		Env: []string{
			"GIT_PROJECT_ROOT=" + s.Root,
			"GIT_HTTP_EXPORT_ALL=1",
			"REMOTE_USER=" + user, // lets http-backend accept pushes
			"HOME=" + s.Root,
			"GIT_CONFIG_NOSYSTEM=1",
		},
	}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || !valid(u, p) {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

// URL is the clone URL of a repository, without credentials.
func (s *Server) URL(name string) string { return s.Server.URL + "/" + name + ".git" }

// AuthURL is the clone URL with the credentials in it, for the git CLI.
func (s *Server) AuthURL(name string) string {
	return strings.Replace(s.URL(name), "://", fmt.Sprintf("://%s:%s@", s.User, s.Password), 1)
}

// Path is the bare repository's directory on disk.
func (s *Server) Path(name string) string { return filepath.Join(s.Root, name+".git") }

// NewBare creates an empty bare repository whose default branch is main and
// that accepts pushes over HTTP.
func (s *Server) NewBare(t testing.TB, name string) string {
	t.Helper()
	dir := s.Path(name)
	Run(t, "", "init", "--bare", "--initial-branch=main", dir)
	Run(t, dir, "config", "http.receivepack", "true")
	return dir
}

// Run runs the git CLI in dir with a fixed, isolated identity and config,
// failing the test on error, and returns its trimmed stdout.
func Run(t testing.TB, dir string, args ...string) string {
	t.Helper()
	out, err := RunEnv(dir, nil, args...)
	if err != nil {
		t.Fatalf("git %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// RunAs is Run as who, author and committer (a GitHub login, with an
// @example.com address; "" is admin), at time at (zero: now).
func RunAs(t testing.TB, dir string, at time.Time, who string, args ...string) string {
	t.Helper()
	if who == "" {
		who = "admin"
	}
	env := []string{"GIT_AUTHOR_NAME=" + who, "GIT_AUTHOR_EMAIL=" + who + "@example.com", "GIT_COMMITTER_NAME=" + who, "GIT_COMMITTER_EMAIL=" + who + "@example.com"}
	if !at.IsZero() {
		d := at.Format(time.RFC3339)
		env = append(env, "GIT_AUTHOR_DATE="+d, "GIT_COMMITTER_DATE="+d)
	}
	out, err := RunEnv(dir, env, args...)
	if err != nil {
		t.Fatalf("git %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// RunEnv is Run without a test: extra holds additional environment
// variables, such as GIT_COMMITTER_DATE.
func RunEnv(dir string, extra []string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	cmd.Env = append(IsolatedEnv(), extra...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(stdout.String()), nil
}

// IsolatedEnv is an environment for the git CLI that ignores the user's
// and the system's configuration, with a fixed identity.
func IsolatedEnv() []string {
	env := []string{
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_AUTHOR_NAME=Test Author",
		"GIT_AUTHOR_EMAIL=author@example.com",
		"GIT_COMMITTER_NAME=Test Committer",
		"GIT_COMMITTER_EMAIL=committer@example.com",
		"GIT_TERMINAL_PROMPT=0",
	}
	for _, k := range []string{"PATH", "TMPDIR", "HOME"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

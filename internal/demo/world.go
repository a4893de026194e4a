// Package demo builds the world `gitgrant demo` runs the real engine in:
// an access repository in a temporary folder, served by the simulated
// GitHub (internal/ghfake: its API and git over smart HTTP, with a GitHub
// App), people who open, approve and merge pull requests, and a clock
// that jumps. Everything is local; nothing needs credentials. The
// repository is real git: what the demo leaves can be read with git log.
package demo

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/ghfake"
	"github.com/gitgrant/gitgrant/internal/gitrepo"
)

// The repository and App of the demo.
const (
	Owner          = "acme"
	Name           = "access"
	AppID          = 1
	InstallationID = 2
)

// World is the access repository on the simulated GitHub.
type World struct {
	// Dir holds everything the demo writes.
	Dir string
	// GitHub is the simulated GitHub; Repo the access repository on it.
	GitHub *ghfake.Server
	Repo   *ghfake.Repo
	// KeyFile is the GitHub App's private key, as gitgrant reads it.
	KeyFile string
	clock   *Clock
	bare    *gitrepo.BareRepo
	nextPR  int
}

// New creates the world under dir (which must exist): an empty bare
// repository served at GitURL, and a GitHub App installed on it.
func New(dir string, clock *Clock) (*World, error) {
	w := &World{Dir: dir, clock: clock, nextPR: 1}
	bare, err := gitrepo.InitBare(filepath.Join(dir, "github", Owner, Name+".git"), "main")
	if err != nil {
		return nil, err
	}
	w.bare = bare
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	w.KeyFile = filepath.Join(dir, "github-app.pem")
	if err := os.WriteFile(w.KeyFile, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600); err != nil {
		return nil, err
	}
	w.GitHub = ghfake.New(clock.Now)
	w.GitHub.AddApp(AppID, &key.PublicKey, InstallationID, time.Hour)
	w.GitHub.SetAppSlug(AppID, "gitgrant")
	w.Repo = w.GitHub.AddRepo(Owner, Name, "main")
	w.GitHub.ServeGit(Owner, Name, w.bare.Dir())
	return w, nil
}

// Close stops the simulated GitHub.
func (w *World) Close() { w.GitHub.Close() }

// GitURL is the access repository's clone URL.
func (w *World) GitURL() string { return w.GitHub.GitURL(Owner, Name) }

// Env is the environment gitgrant runs with: the GitHub App's variables,
// the simulated GitHub's API, and a cache for its clone inside Dir.
func (w *World) Env() map[string]string {
	return map[string]string{
		"GITGRANT_GITHUB_APP_ID":               fmt.Sprint(AppID),
		"GITGRANT_GITHUB_APP_INSTALLATION_ID":  fmt.Sprint(InstallationID),
		"GITGRANT_GITHUB_APP_PRIVATE_KEY_FILE": w.KeyFile,
		"GITHUB_API_URL":                       w.GitHub.BaseURL(),
		"GITHUB_REPOSITORY":                    Owner + "/" + Name,
		"XDG_CACHE_HOME":                       filepath.Join(w.Dir, "cache"),
	}
}

// PR is a pull request of the demo.
type PR struct {
	N          int
	Author     string
	Base, Head string
	Branch     string
	Changes    map[string]string
}

// Push commits changes ("" deletes a file) straight to main as who, as the
// administrator who sets a repository up does, and returns the commit.
func (w *World) Push(who, msg string, changes map[string]string) (string, error) {
	main, files, err := w.bare.Branch("main")
	if err != nil {
		return "", err
	}
	var parents []string
	if main != "" {
		parents = []string{main}
	}
	sha, files, err := w.bare.Commit(parents, files, changes, who, who, msg, w.clock.Now())
	if err != nil {
		return "", err
	}
	if err := w.bare.SetBranch("main", sha); err != nil {
		return "", err
	}
	w.GitHub.AddCommit(w.Repo, ghfake.Commit{SHA: sha, Parents: parents, Author: who, Committer: who, Message: msg, Date: w.clock.Now(), Files: files}, nil)
	return sha, nil
}

// OpenPR opens a pull request by who with one commit on a branch of main.
func (w *World) OpenPR(who, title string, changes map[string]string) (*PR, error) {
	main, files, err := w.bare.Branch("main")
	if err != nil {
		return nil, err
	}
	head, files, err := w.bare.Commit([]string{main}, files, changes, who, who, title, w.clock.Now())
	if err != nil {
		return nil, err
	}
	pr := &PR{N: w.nextPR, Author: who, Base: main, Head: head, Branch: fmt.Sprintf("%s/request-%d", who, w.nextPR), Changes: changes}
	w.nextPR++
	if err := w.bare.SetBranch(pr.Branch, head); err != nil {
		return nil, err
	}
	w.GitHub.AddCommit(w.Repo, ghfake.Commit{SHA: pr.Head, Parents: []string{pr.Base}, Author: who, Committer: who, Message: title, Date: w.clock.Now(), Files: files}, nil)
	w.GitHub.AddPull(w.Repo, ghfake.Pull{Number: pr.N, Title: title, User: who, HeadRef: pr.Branch, HeadSHA: pr.Head, BaseSHA: pr.Base, Commits: []string{pr.Head}})
	w.GitHub.Associate(w.Repo, pr.Head, pr.N)
	return pr, nil
}

// Approve records reviewer's approval of the pull request's head.
func (w *World) Approve(pr *PR, reviewer string) {
	w.GitHub.AddReview(w.Repo, pr.N, ghfake.Review{User: reviewer, State: "APPROVED", CommitID: pr.Head, SubmittedAt: w.clock.Now()})
}

// Merge lands the pull request with a merge commit, as GitHub's "Create a
// merge commit" does, and returns it. GitHub would refuse it without the
// approvals branch protection asks for; an administrator can bypass that,
// which is why gitgrant checks the approvals itself.
func (w *World) Merge(pr *PR) (string, error) {
	main, files, err := w.bare.Branch("main")
	if err != nil {
		return "", err
	}
	msg := fmt.Sprintf("Merge pull request #%d from %s/%s", pr.N, Owner, pr.Branch)
	now := w.clock.Now()
	sha, files, err := w.bare.Commit([]string{main, pr.Head}, files, pr.Changes, pr.Author, "web-flow", msg, now)
	if err != nil {
		return "", err
	}
	if err := w.bare.SetBranch("main", sha); err != nil {
		return "", err
	}
	w.GitHub.AddCommit(w.Repo, ghfake.Commit{SHA: sha, Parents: []string{main, pr.Head}, Author: pr.Author, Committer: "web-flow", Message: msg, Date: now, Files: files}, nil)
	w.GitHub.AddPull(w.Repo, ghfake.Pull{Number: pr.N, User: pr.Author, HeadRef: pr.Branch, HeadSHA: pr.Head, BaseSHA: pr.Base, MergedAt: now, MergeCommitSHA: sha, Commits: []string{pr.Head}})
	w.GitHub.Associate(w.Repo, sha, pr.N)
	return sha, nil
}

// Clock is the demo's clock: it stands still while the engine works and
// jumps when the story moves on, so that hours pass in seconds. A wait
// (a retry's backoff) moves it forward by the wait at once.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

var _ gitgrant.Clock = (*Clock)(nil)

// NewClock starts the clock at t.
func NewClock(t time.Time) *Clock { return &Clock{now: t} }

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Set jumps to t (never backwards).
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.After(c.now) {
		c.now = t
	}
}

// Advance jumps forward by d.
func (c *Clock) Advance(d time.Duration) { c.Set(c.Now().Add(d)) }

// NewTimer fires at once, the clock moved on by d.
func (c *Clock) NewTimer(d time.Duration) gitgrant.Timer {
	c.Advance(d)
	t := &firedTimer{c: make(chan time.Time, 1)}
	t.c <- c.Now()
	return t
}

type firedTimer struct{ c chan time.Time }

func (t *firedTimer) C() <-chan time.Time { return t.c }
func (t *firedTimer) Stop() bool          { return false }

// Main is main's commit on the simulated GitHub and its message.
func (w *World) Main() (sha, message string, err error) {
	sha, _, err = w.bare.Branch("main")
	if err != nil || sha == "" {
		return "", "", fmt.Errorf("main has no commit: %v", err)
	}
	message, err = w.bare.Message(sha)
	return sha, message, err
}

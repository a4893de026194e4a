package main

import (
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"

	"github.com/gitgrant/gitgrant/internal/ghapi"
	"github.com/gitgrant/gitgrant/internal/gitrepo"
)

// Environment variables for git alone. GitHub's own credentials
// (GITHUB_TOKEN, the GitHub App) reach git too; these override them.
const (
	envGitToken          = "GITGRANT_GIT_TOKEN"
	envGitSSHKeyFile     = "GITGRANT_GIT_SSH_KEY_FILE"
	envGitSSHKnownHosts  = "GITGRANT_GIT_SSH_KNOWN_HOSTS"
	envServerURL         = "GITHUB_SERVER_URL"
	legacySSHKeyFile     = "GITGRANT_SSH_KEY" // the names audit read first
	legacySSHKnownHosts  = "GITGRANT_SSH_KNOWN_HOSTS"
	defaultGitHubWebHost = "github.com"
)

// access is how a command reaches GitHub and the access repository's git
// remote, from the environment.
type access struct {
	// GitHub is the API configuration, its Repository filled in from the
	// origin remote when GITHUB_REPOSITORY is not set.
	GitHub ghapi.Config
	// Client is nil without GitHub credentials.
	Client *ghapi.Client
	// Git holds the credentials for fetch and push: GITGRANT_GIT_TOKEN,
	// else the GitHub App's installation token (asked for before every
	// fetch and push, so a long-running serve never uses a lapsed one),
	// else GITHUB_TOKEN; ssh remotes use GITGRANT_GIT_SSH_KEY_FILE (or the
	// SSH agent) and the known hosts in GITGRANT_GIT_SSH_KNOWN_HOSTS.
	Git gitrepo.Options
	// Derived says where the repository name came from, when it was not
	// GITHUB_REPOSITORY.
	Derived string
}

// resolveAccess reads the environment for a command on source (a local
// directory or a remote URL). needRepository makes GitHub credentials
// without a repository a usage error: a command that verifies approvals
// must never fall back to an offline pass because a variable is missing.
func resolveAccess(e *env, source string, needRepository bool, logger *slog.Logger) (*access, error) {
	cfg, err := ghapi.ConfigFromEnv(e.getenv, os.ReadFile)
	if err != nil {
		return nil, usageError{fmt.Sprintf("GitHub settings: %v", err)}
	}
	a := &access{}
	hasCredentials := cfg.Token != "" || cfg.AppID != 0
	if hasCredentials && cfg.Repository == "" {
		origin := source
		if !gitrepo.IsRemote(source) {
			origin = gitrepo.OriginURL(source)
		}
		if repo, ok := githubRepository(origin, e.getenv(envServerURL), cfg.APIURL); ok {
			cfg.Repository = repo
			a.Derived = "the origin remote " + gitrepo.Redact(origin)
		} else if needRepository {
			where := "the repository has no origin remote"
			if origin != "" {
				where = fmt.Sprintf("the origin remote %s is not an owner/name repository on %s", gitrepo.Redact(origin), webHost(e.getenv(envServerURL), cfg.APIURL))
			}
			return nil, usagef("GitHub credentials are set but %s is not, and %s: set %s=owner/name (the access repository on GitHub), or the approvals cannot be verified",
				ghapi.EnvRepository, where, ghapi.EnvRepository)
		}
	}
	a.GitHub = cfg
	if hasCredentials {
		client, err := ghapi.New(cfg, ghapi.Options{Clock: e.clock(), Logger: logger})
		if err != nil {
			return nil, usageError{fmt.Sprintf("GitHub settings: %v", err)}
		}
		a.Client = client
	}

	a.Git = gitrepo.Options{
		SSHKeyFile:    firstSet(e, envGitSSHKeyFile, legacySSHKeyFile),
		SSHKnownHosts: firstSet(e, envGitSSHKnownHosts, legacySSHKnownHosts),
	}
	switch {
	case e.getenv(envGitToken) != "":
		a.Git.Token = e.getenv(envGitToken)
	case a.Client != nil && a.Client.App != nil:
		app := a.Client.App
		a.Git.TokenSource = func() (string, error) {
			tok, err := app.Token()
			if err != nil {
				return "", err
			}
			return tok.AccessToken, nil
		}
	case cfg.Token != "":
		a.Git.Token = cfg.Token
	}
	return a, nil
}

func firstSet(e *env, names ...string) string {
	for _, n := range names {
		if v := e.getenv(n); v != "" {
			return v
		}
	}
	return ""
}

// githubRepository reads owner/name from a remote URL on github.com or on
// the GitHub Enterprise Server that GITHUB_SERVER_URL (or GITHUB_API_URL)
// names: https://HOST/owner/name(.git), ssh://git@HOST/owner/name.git or
// git@HOST:owner/name.git.
func githubRepository(remote, serverURL, apiURL string) (string, bool) {
	if remote == "" || !gitrepo.IsRemote(remote) {
		return "", false
	}
	host, path, ok := gitrepo.RemoteHostPath(remote)
	if !ok || !strings.EqualFold(host, webHost(serverURL, apiURL)) {
		return "", false
	}
	path = strings.TrimSuffix(strings.Trim(path, "/"), ".git")
	owner, name, ok := strings.Cut(path, "/")
	if !ok || owner == "" || name == "" || strings.Contains(name, "/") {
		return "", false
	}
	return owner + "/" + name, true
}

// webHost is the host git remotes of the GitHub in use live on.
func webHost(serverURL, apiURL string) string {
	if u, err := url.Parse(serverURL); err == nil && u.Hostname() != "" {
		return u.Hostname()
	}
	if u, err := url.Parse(apiURL); err == nil && u.Hostname() != "" && u.Hostname() != "api.github.com" {
		return strings.TrimPrefix(u.Hostname(), "api.")
	}
	return defaultGitHubWebHost
}

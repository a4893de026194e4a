// Package ghapi owns talking to GitHub: a go-github client authenticated by
// a token or as a GitHub App installation, a transport that honours rate
// limits, retries idempotent calls, revalidates with ETags and counts its
// calls, one classification of GitHub's errors, and the webhook receiver
// used by `gitgrant serve`. It is the only package that imports go-github
// (providers/githubteam aside): its methods take and return root-package
// types and plain values, which the consumers' own interfaces name.
package ghapi

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/google/go-github/v60/github"
	"golang.org/x/oauth2"

	"github.com/gitgrant/gitgrant"
)

// DefaultAPIURL is github.com's API.
const DefaultAPIURL = "https://api.github.com"

// Config says how to reach GitHub and as whom. Exactly one of Token and
// the App fields is used; a configured App wins.
type Config struct {
	// Token is a personal, fine-grained or Actions token (GITHUB_TOKEN).
	Token string
	// AppID, InstallationID and PrivateKey (PEM) authenticate as a GitHub
	// App installation.
	AppID          int64
	InstallationID int64
	PrivateKey     []byte
	// APIURL is GITHUB_API_URL: https://api.github.com, or a GitHub
	// Enterprise Server's https://HOST/api/v3.
	APIURL string
	// Repository is GITHUB_REPOSITORY, "owner/name".
	Repository string
}

// String never shows a credential.
func (c Config) String() string {
	auth := "none"
	switch {
	case c.AppID != 0:
		auth = fmt.Sprintf("app %d installation %d", c.AppID, c.InstallationID)
	case c.Token != "":
		auth = "token"
	}
	return fmt.Sprintf("github(%s, %s, auth: %s)", c.apiURL(), c.Repository, auth)
}

// GoString keeps %#v from printing secrets too.
func (c Config) GoString() string { return c.String() }

func (c Config) apiURL() string {
	if c.APIURL == "" {
		return DefaultAPIURL
	}
	return c.APIURL
}

// Environment variables read by ConfigFromEnv.
const (
	EnvToken          = "GITHUB_TOKEN"
	EnvAPIURL         = "GITHUB_API_URL"
	EnvRepository     = "GITHUB_REPOSITORY"
	EnvAppID          = "GITGRANT_GITHUB_APP_ID"
	EnvInstallationID = "GITGRANT_GITHUB_APP_INSTALLATION_ID"
	EnvPrivateKeyFile = "GITGRANT_GITHUB_APP_PRIVATE_KEY_FILE"
)

// ConfigFromEnv reads the configuration from environment variables, the
// App's private key from the file the environment names.
func ConfigFromEnv(getenv func(string) string, readFile func(string) ([]byte, error)) (Config, error) {
	c := Config{Token: getenv(EnvToken), APIURL: getenv(EnvAPIURL), Repository: getenv(EnvRepository)}
	var errs []error
	if v := getenv(EnvAppID); v != "" {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil || id <= 0 {
			errs = append(errs, fmt.Errorf("%s: not a positive number", EnvAppID))
		}
		c.AppID = id
		inst, err := strconv.ParseInt(getenv(EnvInstallationID), 10, 64)
		if err != nil || inst <= 0 {
			errs = append(errs, fmt.Errorf("%s: required with %s, a positive number", EnvInstallationID, EnvAppID))
		}
		c.InstallationID = inst
		path := getenv(EnvPrivateKeyFile)
		if path == "" {
			errs = append(errs, fmt.Errorf("%s: required with %s", EnvPrivateKeyFile, EnvAppID))
		} else if key, err := readFile(path); err != nil {
			errs = append(errs, fmt.Errorf("%s: cannot read the key file %s", EnvPrivateKeyFile, path))
		} else {
			c.PrivateKey = key
		}
	}
	if c.Repository != "" {
		if _, _, err := splitRepository(c.Repository); err != nil {
			errs = append(errs, err)
		}
	}
	return c, errors.Join(errs...)
}

func splitRepository(full string) (string, string, error) {
	owner, name, ok := strings.Cut(full, "/")
	if !ok || owner == "" || name == "" || strings.Contains(name, "/") {
		return "", "", fmt.Errorf("%s: %q is not owner/name", EnvRepository, full)
	}
	return owner, name, nil
}

// Options are the parts tests and `serve` replace.
type Options struct {
	// Base is the network transport (default http.DefaultTransport).
	Base http.RoundTripper
	// Clock times waits and token lifetimes; nil is the wall clock.
	Clock  gitgrant.Clock
	Logger *slog.Logger
}

// Client talks to GitHub about one repository, authenticated.
type Client struct {
	gh          *github.Client
	Owner, Repo string
	// Transport counts the client's calls: Transport.Stats().
	Transport *Transport
	// App is set when authenticated as a GitHub App.
	App *AppTokenSource

	identity identityMemo
}

// New builds a client. Without a token or App it is anonymous (enough for
// a public repository's reads, and for tests).
func New(cfg Config, opts Options) (*Client, error) {
	t := &Transport{Base: opts.Base, Clock: opts.Clock, Logger: opts.Logger}
	base, err := baseURL(cfg.apiURL())
	if err != nil {
		return nil, err
	}
	c := &Client{Transport: t}
	if cfg.Repository != "" {
		if c.Owner, c.Repo, err = splitRepository(cfg.Repository); err != nil {
			return nil, err
		}
	}
	var rt http.RoundTripper = t
	switch {
	case cfg.AppID != 0:
		key, err := ParsePrivateKey(cfg.PrivateKey)
		if err != nil {
			return nil, err
		}
		c.App = &AppTokenSource{
			AppID: cfg.AppID, InstallationID: cfg.InstallationID, Key: key, BaseURL: base,
			HTTP: &http.Client{Transport: t}, Clock: opts.Clock,
		}
		if c.Repo != "" {
			c.App.Repositories = []string{c.Repo}
		}
		rt = &oauth2.Transport{Source: c.App, Base: t}
	case cfg.Token != "":
		rt = &oauth2.Transport{Source: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: cfg.Token}), Base: t}
	}
	gh := github.NewClient(&http.Client{Transport: rt})
	gh.UserAgent = "gitgrant"
	if base != DefaultAPIURL+"/" {
		upload := strings.Replace(base, "/api/v3/", "/api/uploads/", 1)
		if gh, err = gh.WithEnterpriseURLs(base, upload); err != nil {
			return nil, fmt.Errorf("%s: %w", EnvAPIURL, err)
		}
	}
	c.gh = gh
	return c, nil
}

// baseURL normalises GITHUB_API_URL to go-github's form: trailing slash,
// and /api/v3/ for a GitHub Enterprise Server host given without it.
func baseURL(raw string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", fmt.Errorf("%s: %q is not an http(s) URL", EnvAPIURL, raw)
	}
	u.User = nil
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	if u.Host != "api.github.com" && !strings.HasSuffix(u.Path, "/api/v3/") && !strings.HasPrefix(u.Host, "api.") {
		u.Path += "api/v3/"
	}
	return u.String(), nil
}

// RepoURL is the repository's web address, for links in issues and
// comments: https://github.com/OWNER/REPO, or the GitHub Enterprise
// Server host's.
func (c *Client) RepoURL() string {
	u := *c.gh.BaseURL
	if u.Host == "api.github.com" {
		u.Host = "github.com"
	}
	u.Path = "/" + c.Owner + "/" + c.Repo
	u.RawQuery = ""
	return u.String()
}

// Org is the repository's owner: the only organisation whose teams
// CODEOWNERS may name (GitHub ignores the others').
func (c *Client) Org() string { return c.Owner }

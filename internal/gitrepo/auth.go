// Credentials of the access repository: picked to fit the URL, asked
// afresh before each fetch and push, checked against known hosts for SSH,
// and kept out of every URL and error gitgrant prints or stores.

package gitrepo

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"

	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/gitgrant/gitgrant"
)

// Redact removes credentials from a URL so that it can be printed.
func Redact(source string) string {
	u, err := url.Parse(source)
	if err != nil || u.User == nil {
		return source
	}
	if _, hasPassword := u.User.Password(); hasPassword {
		u.User = url.UserPassword(u.User.Username(), "REDACTED")
		if u.Scheme == "http" || u.Scheme == "https" {
			u.User = url.User("REDACTED")
		}
	}
	return u.String()
}

// stripCredentials splits user:password out of an http(s) URL, so that the
// URL stored in a cache's config never holds a secret.
func stripCredentials(source string) (clean, user, password string) {
	u, err := url.Parse(source)
	if err != nil || u.User == nil || (u.Scheme != "http" && u.Scheme != "https") {
		return source, "", ""
	}
	user = u.User.Username()
	password, _ = u.User.Password()
	u.User = nil
	return u.String(), user, password
}

// credentials are those of the next fetch or push: a token source is
// asked each time, so the token is never one that lapsed meanwhile.
func (r *Repo) credentials() (transport.AuthMethod, error) {
	if r.auth == nil {
		return nil, nil
	}
	auth, err := r.auth()
	if err != nil {
		return nil, r.fail("authenticate", err, true)
	}
	return auth, nil
}

// authFor picks credentials that fit the URL's scheme, as a function
// called before each fetch and push.
func authFor(rawURL string, o Options) (func() (transport.AuthMethod, error), error) {
	fixed := func(a transport.AuthMethod) func() (transport.AuthMethod, error) {
		return func() (transport.AuthMethod, error) { return a, nil }
	}
	if o.Auth != nil {
		return fixed(o.Auth), nil
	}
	ep, err := transport.NewEndpoint(rawURL)
	if err != nil {
		return nil, fmt.Errorf("bad repository URL %s: %w", Redact(rawURL), err)
	}
	switch ep.Protocol {
	case "http", "https":
		user := o.TokenUser
		if user == "" {
			user = "x-access-token"
		}
		switch {
		case o.Token != "":
			return fixed(&githttp.BasicAuth{Username: user, Password: o.Token}), nil
		case o.TokenSource != nil:
			return func() (transport.AuthMethod, error) {
				tok, err := o.TokenSource()
				if err != nil {
					return nil, fmt.Errorf("a token for git: %w", err)
				}
				return &githttp.BasicAuth{Username: user, Password: tok}, nil
			}, nil
		}
		return nil, nil
	case "ssh":
		auth, err := sshAuth(ep, o)
		if err != nil {
			return nil, err
		}
		return fixed(auth), nil
	}
	return nil, nil
}

// sshAuth is a key file's or the SSH agent's, with host keys checked
// against known_hosts: a host found in none is refused.
func sshAuth(ep *transport.Endpoint, o Options) (transport.AuthMethod, error) {
	user := ep.User
	if user == "" {
		user = "git"
	}
	var files []string
	if o.SSHKnownHosts != "" {
		files = []string{o.SSHKnownHosts}
	}
	known, err := gitssh.NewKnownHostsCallback(files...)
	if err != nil {
		return nil, fmt.Errorf("reading known hosts (%s): %w", knownHostsName(files), err)
	}
	hostKeys := func(host string, remote net.Addr, key ssh.PublicKey) error {
		err := known(host, remote, key)
		var kerr *knownhosts.KeyError
		if errors.As(err, &kerr) {
			if len(kerr.Want) == 0 {
				return fmt.Errorf("the host key of %s is in no known_hosts file (%s): add the host's published key there (for github.com: https://api.github.com/meta, \"ssh_keys\"), never accept it blindly", host, knownHostsName(files))
			}
			return fmt.Errorf("the host key of %s differs from the one in %s: refusing to connect (a changed key or someone in the middle)", host, knownHostsName(files))
		}
		return err
	}
	if o.SSHKeyFile != "" {
		auth, err := gitssh.NewPublicKeysFromFile(user, o.SSHKeyFile, o.SSHKeyPassword)
		if err != nil {
			return nil, fmt.Errorf("reading SSH key %s: %w", o.SSHKeyFile, err)
		}
		auth.HostKeyCallback = hostKeys
		return auth, nil
	}
	auth, err := gitssh.NewSSHAgentAuth(user)
	if err != nil {
		return nil, fmt.Errorf("no SSH key given and no SSH agent: %w", err)
	}
	auth.HostKeyCallback = hostKeys
	return auth, nil
}

func knownHostsName(files []string) string {
	if len(files) > 0 {
		return files[0]
	}
	return "$SSH_KNOWN_HOSTS, ~/.ssh/known_hosts or /etc/ssh/ssh_known_hosts"
}

// fail wraps err as a SystemError about this repository, scrubbing any
// credential that a transport may have echoed.
func (r *Repo) fail(op string, err error, retryable bool) error {
	return &gitgrant.SystemError{System: "git", Op: op + " " + r.source, Err: scrubbed{err}, Retryable: retryable}
}

// scrubbed hides URL credentials in a wrapped error's text while keeping it
// inspectable with errors.Is and errors.As.
type scrubbed struct{ err error }

var credentialsInURL = regexp.MustCompile(`(://)[^/@\s]+@`)

func (s scrubbed) Error() string {
	return credentialsInURL.ReplaceAllString(s.err.Error(), "${1}REDACTED@")
}

func (s scrubbed) Unwrap() error { return s.err }

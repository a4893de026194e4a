package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/gitrepo"
	"github.com/gitgrant/gitgrant/internal/handoff"
	"github.com/gitgrant/gitgrant/internal/render"
	"github.com/gitgrant/gitgrant/providers"
)

// credentialsOptions are the flags of `gitgrant credentials`.
type credentialsOptions struct {
	PR         int
	Request    string
	Repo       string
	Identities []string
	Output     string
	Provider   string
	From       string
}

// stringList is a flag that may be given more than once.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

var _ flag.Value = (*stringList)(nil)

func runCredentials(ctx context.Context, args []string, e *env) error {
	fs := newFlags("credentials", "(--pr N | --request PATH) [--identity FILE]... [--output dsn|command|psql|mariadb|json] [--provider NAME] [--from LOGIN]", `
Print the login gitgrant created for your request (a role with mode:
ephemeral) with its password: gitgrant posted it on the request's pull
request, encrypted to your public SSH keys, and this decrypts it with your
private key. Nothing is written to disk.

The pull request is --pr N, or the one that added --request PATH to the
main branch. GitHub is read with GITHUB_TOKEN (a token that can read the
pull request, such as 'gh auth token' prints) and GITHUB_REPOSITORY
(default: the origin remote of --repo).

Only comments written by a bot account (gitgrant's GitHub App, or
github-actions) count, or by --from LOGIN when set; the decrypted content
must match what the comment shows and name this pull request.

Output: dsn (default) postgres://user:password@host:port/db or
mysql://...; command, psql or mariadb: a command line that opens a session
(psql for PostgreSQL, mariadb for MySQL and MariaDB); json. The account
name, host and expiry are also printed to stderr.

Exit status: 0 printed, 1 nothing to decrypt (no hand-off, other keys,
expired), 2 usage error, 3 GitHub could not be read.`, e)
	var o credentialsOptions
	var identities stringList
	fs.IntVar(&o.PR, "pr", 0, "pull request `number`")
	fs.StringVar(&o.Request, "request", "", "request file `PATH` (finds its pull request on the main branch)")
	fs.StringVar(&o.Repo, "repo", ".", "access repository `DIR`, for --request and the origin remote")
	fs.Var(&identities, "identity", "SSH private key `FILE` (default ~/.ssh/id_ed25519, then ~/.ssh/id_rsa); may be repeated")
	fs.StringVar(&o.Output, "output", "dsn", "`format`: dsn, command, psql, mariadb or json")
	fs.StringVar(&o.Provider, "provider", "", "only the grant on provider `NAME`")
	fs.StringVar(&o.From, "from", "", "only comments written by `LOGIN` (gitgrant's identity)")
	if err := parseFlagsOnly(fs, args); err != nil {
		return err
	}
	o.Identities = identities
	if err := checkOutput("credentials", o.Output, "dsn", "command", "psql", "mariadb", "json"); err != nil {
		return err
	}
	if (o.PR == 0) == (o.Request == "") {
		return usagef("credentials: name the pull request with --pr N, or the request file with --request PATH (one of them)")
	}
	acc, err := resolveAccess(e, o.Repo, true, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	if acc.Client == nil {
		return usagef("credentials: GitHub cannot be read: set GITHUB_TOKEN (for instance GITHUB_TOKEN=$(gh auth token)) and, outside the access repository, GITHUB_REPOSITORY=owner/name")
	}
	if o.Request != "" {
		if o.PR, err = pullRequestOfRequest(ctx, o.Repo, o.Request, acc.Client); err != nil {
			return err
		}
	}
	return credentials(ctx, o, e, acc.Client, acc.GitHub.Repository)
}

// commentLister is what credentials needs of GitHub (ghapi.Client).
type commentLister interface {
	Comments(ctx context.Context, number int) ([]gitgrant.Comment, error)
}

// pullRequestLister finds the pull request that merged a commit.
type pullRequestLister interface {
	PullRequestsWithCommit(ctx context.Context, sha string) ([]gitgrant.PullRequest, error)
}

// pullRequestOfRequest finds the pull request that added path to the
// main branch of the local repository dir.
func pullRequestOfRequest(ctx context.Context, dir, path string, gh pullRequestLister) (int, error) {
	root, paths, err := localRepo(dir, []string{path})
	if err != nil {
		return 0, err
	}
	rel := filepath.ToSlash(filepath.Clean(paths[0]))
	repo, err := gitrepo.Open(ctx, gitrepo.Options{Source: root})
	if err != nil {
		return 0, err
	}
	provs, err := repo.Provenances(ctx)
	if err != nil {
		return 0, err
	}
	pv, ok := provs[rel]
	if !ok {
		return 0, usagef("credentials: %s is not on the main branch of %s (pull it first, or give --pr N)", rel, root)
	}
	if pv.PullRequest != 0 {
		return pv.PullRequest, nil
	}
	prs, err := gh.PullRequestsWithCommit(ctx, pv.Commit.String())
	if err != nil {
		return 0, err
	}
	for _, p := range prs {
		if p.Merged && p.MergeCommitSHA == pv.Commit.String() {
			return p.Number, nil
		}
	}
	return 0, usagef("credentials: no pull request merged %s (commit %s): give --pr N", rel, pv.Commit)
}

// handoffFound is one hand-off comment that counts.
type handoffFound struct {
	notice  handoff.Notice
	comment gitgrant.Comment
}

// credentialsJSON is the documented shape of `gitgrant credentials
// --output json` (docs/ephemeral.md).
type credentialsJSON struct {
	Version     int              `json:"version"`
	PullRequest int              `json:"pull_request"`
	Credentials []credentialJSON `json:"credentials"`
}

type credentialJSON struct {
	Provider string    `json:"provider"`
	Role     string    `json:"role"`
	Account  string    `json:"account"`
	Password string    `json:"password"`
	Kind     string    `json:"kind"`
	Host     string    `json:"host"`
	Port     int       `json:"port,omitempty"`
	Database string    `json:"database,omitempty"`
	DSN      string    `json:"dsn"`
	Until    time.Time `json:"until"`
}

// credentials finds the newest hand-off of each grant on the pull
// request, decrypts it and prints it.
func credentials(ctx context.Context, o credentialsOptions, e *env, gh commentLister, repository string) error {
	comments, err := gh.Comments(ctx, o.PR)
	if err != nil {
		return err
	}
	newest := map[string]handoffFound{}
	var ignored []string
	for _, c := range comments {
		n, ok, err := handoff.ParseNotice(c.Body)
		if !ok {
			continue
		}
		if !fromGitgrant(c, o.From) {
			ignored = append(ignored, c.Author)
			continue
		}
		if err != nil {
			fmt.Fprintf(e.stderr, "gitgrant: skipping the hand-off comment %s: %v\n", c.URL, err)
			continue
		}
		if o.Provider != "" && n.Provider != o.Provider {
			continue
		}
		newest[n.Provider+"/"+n.Role] = handoffFound{n, c} // comments come oldest first
	}
	if len(ignored) > 0 {
		fmt.Fprintf(e.stderr, "gitgrant: ignored %d hand-off comment(s) not written by %s: %s\n", len(ignored), authorRule(o.From), strings.Join(ignored, ", "))
	}
	if len(newest) == 0 {
		what := "no credentials"
		if o.Provider != "" {
			what += " for provider " + o.Provider
		}
		fmt.Fprintf(e.stderr, "gitgrant: %s on #%d from %s: gitgrant posts them once it has created the account (after the merge, at reconcile)\n", what, o.PR, authorRule(o.From))
		return errInvalid
	}
	ids, files, err := loadIdentities(o.Identities, e)
	if err != nil {
		return err
	}
	keys := make([]string, 0, len(newest))
	for k := range newest {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []credentialJSON
	var problems []string
	now := e.now()
	for _, k := range keys {
		f := newest[k]
		n := f.notice
		if !n.Until.After(now) {
			problems = append(problems, fmt.Sprintf("%s: the account %s expired at %s and has been dropped; file a new request", k, n.Account, n.Until.Format(time.RFC3339)))
			continue
		}
		p, err := handoff.Open(n.Sealed, ids...)
		if errors.Is(err, handoff.ErrNotForYou) {
			problems = append(problems, fmt.Sprintf("%s: %v (%s) and not to %s", k, err, keyList(n.Keys), strings.Join(files, ", ")))
			continue
		}
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", k, err))
			continue
		}
		if err := n.Check(p, repository, o.PR); err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", k, err))
			continue
		}
		fmt.Fprintf(e.stderr, "gitgrant: %s on %s (%s/%s), until %s, from %s's comment %s\n",
			p.Account.Name, p.Account.Connect, p.Provider, p.Role, p.Until.UTC().Format(time.RFC3339), f.comment.Author, f.comment.URL)
		a := p.Account
		out = append(out, credentialJSON{Provider: p.Provider, Role: p.Role, Account: a.Name, Password: a.Secret, Kind: a.Connect.Kind,
			Host: a.Connect.Host, Port: a.Connect.Port, Database: a.Connect.Database, DSN: handoff.DSN(a), Until: p.Until.UTC()})
	}
	for _, msg := range problems {
		fmt.Fprintf(e.stderr, "gitgrant: %s\n", msg)
	}
	if err := writeCredentials(e, o, out); err != nil {
		return err
	}
	if len(out) == 0 {
		return errInvalid
	}
	return nil
}

func writeCredentials(e *env, o credentialsOptions, out []credentialJSON) error {
	if o.Output == "json" {
		if out == nil {
			out = []credentialJSON{}
		}
		if err := render.WriteJSON(e.stdout, credentialsJSON{Version: render.JSONVersion, PullRequest: o.PR, Credentials: out}); err != nil {
			return &gitgrant.SystemError{System: "output", Op: "write", Err: err}
		}
		return nil
	}
	for _, c := range out {
		a := handoffAccount(c)
		line := c.DSN
		switch o.Output {
		case "command", "psql", "mariadb":
			if want := map[string]string{"psql": handoff.KindPostgres, "mariadb": handoff.KindMySQL}[o.Output]; want != "" && want != c.Kind {
				fmt.Fprintf(e.stderr, "gitgrant: %s/%s is a %s account: --output %s does not fit; printing the command that does\n", c.Provider, c.Role, c.Kind, o.Output)
			}
			line = handoff.Command(a)
		}
		if _, err := fmt.Fprintln(e.stdout, line); err != nil {
			return &gitgrant.SystemError{System: "output", Op: "write", Err: err}
		}
	}
	return nil
}

// fromGitgrant reports whether a comment counts as gitgrant's: written by
// from when it is set, else by a bot account, which no person can sign in
// as (gitgrant's GitHub App, or github-actions).
func fromGitgrant(c gitgrant.Comment, from string) bool {
	if from != "" {
		return strings.EqualFold(c.Author, from) && (!strings.HasSuffix(from, "[bot]") || c.AuthorIsBot)
	}
	return c.AuthorIsBot
}

func authorRule(from string) string {
	if from != "" {
		return from
	}
	return "a bot account (set --from to gitgrant's login)"
}

func keyList(keys []handoff.Key) string {
	if len(keys) == 0 {
		return "the requester's keys"
	}
	s := make([]string, len(keys))
	for i, k := range keys {
		s[i] = k.String()
	}
	return strings.Join(s, ", ")
}

// loadIdentities reads the private keys to decrypt with: those given, or
// the default ones that exist.
func loadIdentities(given []string, e *env) ([]handoff.Identity, []string, error) {
	files := given
	if len(files) == 0 {
		home := e.getenv("HOME")
		if home == "" {
			home, _ = os.UserHomeDir()
		}
		for _, name := range []string{"id_ed25519", "id_rsa"} {
			p := filepath.Join(home, ".ssh", name)
			if _, err := os.Stat(p); err == nil {
				files = append(files, p)
			}
		}
		if len(files) == 0 {
			return nil, nil, usagef("credentials: no SSH key in %s: give the private key of one of the public keys the credentials are encrypted to with --identity FILE", filepath.Join(home, ".ssh"))
		}
	}
	ask := terminalPassphrase(e)
	var ids []handoff.Identity
	for _, f := range files {
		id, err := handoff.LoadIdentity(f, ask)
		if err != nil {
			return nil, nil, usagef("credentials: --identity: %v", err)
		}
		ids = append(ids, id)
	}
	return ids, files, nil
}

// terminalPassphrase asks for a key's passphrase on the terminal, when
// stdin is one; nil otherwise (the key is then refused with that reason).
func terminalPassphrase(e *env) handoff.Passphrase {
	f, ok := e.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return func(keyFile string) ([]byte, error) {
		fmt.Fprintf(e.stderr, "Passphrase for %s: ", keyFile)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(e.stderr)
		return b, err
	}
}

func handoffAccount(c credentialJSON) providers.Account {
	return providers.Account{Name: c.Account, Secret: c.Password,
		Connect: providers.Connection{Host: c.Host, Port: c.Port, Database: c.Database, Kind: c.Kind}}
}

package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/demo"
	"github.com/gitgrant/gitgrant/internal/render"
	"github.com/gitgrant/gitgrant/providers"
	"github.com/gitgrant/gitgrant/providers/fake"
)

// The access repository of the demo.
const (
	demoConfig = `# The access repository of gitgrant demo.
version: 1
identities:
  alice:   {principals: {orders-db: alice}}
  mallory: {principals: {orders-db: mallory}}
providers:
  orders-db:
    type: postgres
    dsn_env: ORDERS_DB_DSN     # the demo's orders-db is in memory: no DSN is read
    roles:
      readwrite: {target: orders_readwrite, max_duration: 4h, approvals: 1}
# The simulated GitHub has no branch protection, so gitgrant may push its
# cleanup commit to main; gitgrant init writes pull-request, which works
# with a protected main.
cleanup:
  mode: push
`
	demoCodeowners = "/gitgrant.yaml       @carol\n/.github/            @carol\n/requests/orders-db/ @bob\n"
	demoRequest    = `requester: alice
grants:
  - provider: orders-db
    role: readwrite
duration: 2h
reason: Repair the orders stuck after INC-1234
ticket: INC-1234
`
	demoBypass = `requester: mallory
grants:
  - provider: orders-db
    role: readwrite
duration: 4h
reason: Quick look at production data
`
)

func runDemo(ctx context.Context, args []string, e *env) error {
	fs := newFlags("demo", "[--keep] [--dir DIR]", `
Show gitgrant end to end, on this machine alone and without credentials:
a throwaway access repository goes through request, approval, merge,
grant, expiry, revocation, cleanup commit and audit, each step printed with
its (simulated) time and the output of the real gitgrant commands.

Real: gitgrant's commands and engine, and git repositories in a temporary
folder. Simulated: GitHub (the fake GitHub gitgrant's own tests run against,
its API and git over HTTP with a GitHub App; docs/demo.md), the database
orders-db (in memory), and the clock, which jumps so that hours pass in
seconds.`, e)
	keep := fs.Bool("keep", false, "keep the repositories afterwards, to explore them with git and gitgrant")
	dir := fs.String("dir", "", "create the demo's folder in `DIR` (default: the system's temporary folder)")
	if err := parseFlagsOnly(fs, args); err != nil {
		return err
	}
	root, err := os.MkdirTemp(*dir, "gitgrant-demo-")
	if err != nil {
		return &gitgrant.SystemError{System: "file system", Op: "demo", Err: err}
	}
	if !*keep {
		defer os.RemoveAll(root)
	}
	started := time.Now() // the real time the demo takes, not the story's
	clk := demo.NewClock(e.now().UTC().Truncate(time.Minute))
	world, err := demo.New(root, clk)
	if err != nil {
		return &gitgrant.SystemError{System: "demo", Op: "set up", Err: err}
	}
	defer world.Close()
	d := &demoRun{ctx: ctx, out: e.stdout, clk: clk, world: world, start: clk.Now(),
		db: fake.New(fake.Options{Name: "orders-db", Roles: []string{"readwrite"}, Clock: clk})}
	if err := d.story(); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "\nDone: %s of the story in %.1fs.", render.HumanDuration(clk.Now().Sub(d.start)), time.Since(started).Seconds())
	if *keep {
		fmt.Fprintf(e.stdout, " The repositories are in %s:\n  git -C %s/github/acme/access.git log --stat main\n  gitgrant audit --repo %s/github/acme/access.git\n", root, root, root)
	} else {
		fmt.Fprintln(e.stdout, " The repositories are gone (--keep keeps them).")
	}
	fmt.Fprintln(e.stdout, "Next: gitgrant init writes an access repository of your own (docs/demo.md, README.md).")
	return nil
}

// demoRun is one run of the story.
type demoRun struct {
	ctx   context.Context
	out   io.Writer
	clk   *demo.Clock
	world *demo.World
	start time.Time
	db    *fake.Provider
	// comments counts the pull request comments already shown.
	comments int
}

func (d *demoRun) story() error {
	w := d.world
	fmt.Fprintf(d.out, `gitgrant demo: the real gitgrant, end to end, on this machine alone.

Real:      gitgrant's commands and engine; git repositories in a temporary folder.
Simulated: GitHub, at %s (the fake GitHub gitgrant's tests run against:
           its API, and git over HTTP, with gitgrant signed in as a GitHub App);
           the database orders-db (in memory); and the clock, which jumps.
No credentials are needed, and nothing leaves this machine. %s, UTC.
`, w.GitHub.URL, d.start.Format("Monday 2 January 2006"))

	d.step(0, "carol, of the platform team, sets up the access repository and pushes it to main")
	if _, err := w.Push("carol", "Set up the access repository", map[string]string{"gitgrant.yaml": demoConfig, ".github/CODEOWNERS": demoCodeowners}); err != nil {
		return d.fail(err)
	}
	d.say("gitgrant.yaml: orders-db (PostgreSQL), role readwrite: at most 4h, 1 approval")
	d.say("CODEOWNERS: bob approves requests/orders-db/, carol the policy")

	d.step(time.Minute, "carol trusts this first policy, once; later changes need approved pull requests")
	if err := d.gitgrant("trust", "--root", "first", "--repo", w.GitURL()); err != nil {
		return err
	}

	d.step(time.Minute, "alice asks for access: pull request #1 adds requests/orders-db/alice-readwrite.yaml")
	d.say(demoRequest)
	pr1, err := w.OpenPR("alice", "Access to orders-db for INC-1234", map[string]string{"requests/orders-db/alice-readwrite.yaml": demoRequest})
	if err != nil {
		return d.fail(err)
	}
	d.step(time.Minute, "mallory opens pull request #2 for the same role, with no ticket and nobody's approval")
	pr2, err := w.OpenPR("mallory", "Access to orders-db", map[string]string{"requests/orders-db/mallory-readwrite.yaml": demoBypass})
	if err != nil {
		return d.fail(err)
	}

	d.step(12*time.Minute, "bob, the code owner of requests/orders-db/, approves pull request #1")
	w.Approve(pr1, "bob")
	d.step(5*time.Minute, "alice merges pull request #1; mallory merges #2 anyway, as a repository admin can")
	if _, err := w.Merge(pr1); err != nil {
		return d.fail(err)
	}
	if _, err := w.Merge(pr2); err != nil {
		return d.fail(err)
	}

	d.step(time.Minute, "gitgrant reconcile, as the workflow runs it on every push to main: it checks each\n        approval itself through GitHub, records what it grants in git, then grants")
	if err := d.gitgrant("reconcile", "--repo", w.GitURL()); err != nil {
		return err
	}
	d.members()
	d.newComments()

	d.step(time.Minute, "gitgrant status: who has what, for how long")
	if err := d.gitgrant("status", "--repo", w.GitURL()); err != nil {
		return err
	}

	end := d.clk.Now().Add(2 * time.Hour).Truncate(time.Minute)
	d.step(end.Sub(d.clk.Now()), "two hours later alice's window has ended: the scheduled reconcile revokes her\n        access, then removes her file in a cleanup commit")
	if err := d.gitgrant("reconcile", "--repo", w.GitURL()); err != nil {
		return err
	}
	d.members()
	d.newComments()
	if sha, msg, err := w.Main(); err == nil {
		d.say("the cleanup commit on main, " + sha[:12] + ":")
		d.say("  " + strings.ReplaceAll(strings.TrimSpace(msg), "\n", "\n  "))
	}

	d.step(time.Minute, "gitgrant audit: who had what, when, approved by whom, rebuilt from git alone")
	return d.gitgrant("audit", "--repo", w.GitURL(), "--who", "alice", "--cache-dir", w.Dir+"/audit-cache")
}

// step moves the clock on by d and announces what happens next.
func (d *demoRun) step(by time.Duration, what string) {
	d.clk.Advance(by)
	fmt.Fprintf(d.out, "\n[%s] %s\n", d.clk.Now().Format("15:04"), what)
}

// say prints narration, indented.
func (d *demoRun) say(text string) {
	for _, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		fmt.Fprintf(d.out, "        %s\n", line)
	}
}

// gitgrant runs one gitgrant command as a person or workflow would, as the
// GitHub App, with the in-memory database, and prints what it printed.
func (d *demoRun) gitgrant(args ...string) error {
	shown := append([]string{}, args...)
	for i, a := range shown {
		shown[i] = strings.ReplaceAll(a, d.world.Dir, "$DEMO")
	}
	fmt.Fprintf(d.out, "        $ gitgrant %s\n", strings.Join(shown, " "))
	vars := d.world.Env()
	var stdout, stderr bytes.Buffer
	e := &env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr, clk: d.clk,
		getenv: func(k string) string { return vars[k] },
		providers: providers.Registry{"postgres": func(context.Context, gitgrant.ProviderConfig, providers.Deps) (providers.Provider, error) {
			return sharedProvider{d.db}, nil
		}}}
	code := run(d.ctx, args, e)
	for _, line := range strings.Split(strings.TrimRight(stdout.String(), "\n"), "\n") {
		fmt.Fprintf(d.out, "        | %s\n", strings.TrimRight(line, " "))
	}
	if code != gitgrant.ExitOK {
		fmt.Fprint(d.out, stderr.String())
		return &gitgrant.SystemError{System: "demo", Op: "gitgrant " + args[0], Err: fmt.Errorf("exited %d", code)}
	}
	return nil
}

// members shows what the in-memory database holds.
func (d *demoRun) members() {
	ms, err := d.db.Members(d.ctx, "readwrite")
	if err != nil {
		d.say("orders-db: " + err.Error())
		return
	}
	if len(ms) == 0 {
		d.say("orders-db role readwrite now: nobody")
		return
	}
	var names []string
	for _, m := range ms {
		names = append(names, m.Principal)
	}
	d.say("orders-db role readwrite now: " + strings.Join(names, ", "))
}

// newComments shows what gitgrant wrote on pull requests since last time.
func (d *demoRun) newComments() {
	cs := d.world.GitHub.Comments(d.world.Repo)
	for _, c := range cs[d.comments:] {
		d.say(fmt.Sprintf("comment on pull request #%d by %s:", c.Issue, c.User))
		for _, line := range strings.Split(strings.TrimSpace(c.Body), "\n") {
			d.say("  > " + line)
		}
	}
	d.comments = len(cs)
}

func (d *demoRun) fail(err error) error {
	return &gitgrant.SystemError{System: "demo", Op: "story", Err: err}
}

// sharedProvider keeps the in-memory database across commands: each
// closes the providers it opened, and the database outlives them.
type sharedProvider struct{ providers.Provider }

func (sharedProvider) Close() error { return nil }

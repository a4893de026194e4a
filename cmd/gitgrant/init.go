package main

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"sort"
	"strings"
	"text/template"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/providers"
	"github.com/gitgrant/gitgrant/providers/all"
)

//go:embed templates/*.tmpl
var templateFS embed.FS

// initProvider is one provider the new access repository declares.
type initProvider struct {
	Name, Type string
	// Settings are YAML lines under the provider: how to reach it, with
	// secrets by reference.
	Settings []string
	// Role is the example role; Target, when set, what it maps to.
	Role, Target     string
	PrincipalExample string
	// Secrets are the environment variables the settings name.
	Secrets []string
	Owners  string
}

// initData is what the templates see.
type initData struct {
	Version, ActionCommit string
	Owners                string
	Cleanup               string
	Providers             []initProvider
	Secrets               []string
}

// providerExample is a new provider of a type, as the type's package
// describes it (providers.ExampleOf).
func providerExample(name, typ string) (initProvider, bool) {
	ex, ok := providers.ExampleOf(typ, name)
	if !ok {
		return initProvider{}, false
	}
	return initProvider{Name: name, Type: typ, Settings: ex.Settings, Role: ex.Role, Target: ex.Target,
		PrincipalExample: ex.Principal, Secrets: ex.Secrets}, true
}

var (
	providerName = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$`)
	ownerToken   = regexp.MustCompile(`^@[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})(?:/[A-Za-z0-9][A-Za-z0-9_.-]{0,99})?$`)
	releaseTag   = regexp.MustCompile(`^v[0-9]+\.[0-9]+\.[0-9]+$`)
	commitSHA    = regexp.MustCompile(`^[0-9a-f]{40}$`)
)

// listFlag collects a repeated flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func runInit(ctx context.Context, args []string, e *env) error {
	fs := newFlags("init", "--provider NAME=TYPE... --owners @ORG/TEAM [--dir DIR] [--request-owners NAME=@ORG/TEAM...] [--cleanup pull-request|push] [--version vX.Y.Z] [--action-commit SHA] [--force]", `
Write a new access repository into an empty folder (an empty git
repository, or a folder to run git init in later):

  gitgrant.yaml              the providers named by --provider, secrets by
                             reference (*_env), one example role each, no
                             identities yet, cleanup.mode: pull-request
  .github/CODEOWNERS         --owners own gitgrant.yaml, .github/ and this
                             README; each requests/<provider>/ folder is
                             owned by --request-owners (default --owners)
  .github/workflows/         validate.yml and review.yml (pull requests),
                             reconcile.yml (main, every 5 minutes), all with
                             the gitgrant release pinned
  README.md                  how to ask for access, for requesters

It then prints what to do next: push, trust the first policy, protect main,
create the GitHub App, and add the secrets.

The workflows install gitgrant --version (default: this binary's version,
when it is a release). With --action-commit, the commit that release's tag
points at, they use the gitgrant action pinned to it (no Go needed); a
release binary knows its own commit. Without it they install the version
with 'go install'.

cleanup.mode: pull-request is the default because a protected main refuses
gitgrant's direct push; "push" needs gitgrant's App to bypass the branch
protection.`, e)
	dir := fs.String("dir", ".", "the `folder` to write the access repository into")
	var provs, requestOwners listFlag
	fs.Var(&provs, "provider", "a provider `NAME=TYPE` (repeat for several); types: "+strings.Join(all.Registry().Types(), ", "))
	owners := fs.String("owners", "", "the code owners of the policy, `@ORG/TEAM` or @user (and of requests, unless --request-owners)")
	fs.Var(&requestOwners, "request-owners", "the code owners of one provider's requests, `NAME=@ORG/TEAM` (repeat per provider)")
	cleanup := fs.String("cleanup", "pull-request", "cleanup.mode: `pull-request` or push")
	versionFlag := fs.String("version", "", "the gitgrant release the workflows install, `vX.Y.Z` (default: this binary's, when it is a release)")
	actionCommit := fs.String("action-commit", "", "the commit `SHA` of that release's tag: the workflows then use the action pinned to it")
	force := fs.Bool("force", false, "overwrite files that exist")
	if err := parseFlagsOnly(fs, args); err != nil {
		return err
	}
	data, err := initSettings(provs, requestOwners, *owners, *cleanup, *versionFlag, *actionCommit)
	if err != nil {
		return err
	}
	files, err := renderInit(data)
	if err != nil {
		return err
	}
	if err := writeInit(*dir, files, *force); err != nil {
		return err
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	fmt.Fprintf(e.stdout, "Wrote a new access repository in %s:\n", *dir)
	for _, name := range names {
		fmt.Fprintf(e.stdout, "  %s\n", name)
	}
	fmt.Fprint(e.stdout, nextSteps(data))
	return nil
}

// initSettings checks the flags and fills in what the templates need.
func initSettings(provs, requestOwners []string, owners, cleanup, release, actionCommit string) (initData, error) {
	d := initData{Owners: owners, Cleanup: cleanup, ActionCommit: actionCommit}
	if len(provs) == 0 {
		return d, usagef("init: name at least one provider, --provider NAME=TYPE (for example --provider orders-db=postgres); types: %s", strings.Join(all.Registry().Types(), ", "))
	}
	if !ownerToken.MatchString(owners) {
		return d, usagef("init: --owners %q: a GitHub team @ORG/TEAM or a user @login, who approve changes to the policy", owners)
	}
	if cleanup != "pull-request" && cleanup != "push" {
		return d, usagef("init: --cleanup %q: pull-request or push", cleanup)
	}
	perProvider := map[string]string{}
	for _, ro := range requestOwners {
		name, owner, ok := strings.Cut(ro, "=")
		if !ok || !ownerToken.MatchString(owner) {
			return d, usagef("init: --request-owners %q: write NAME=@ORG/TEAM", ro)
		}
		perProvider[name] = owner
	}
	seen := map[string]bool{}
	secrets := map[string]bool{}
	for _, pv := range provs {
		name, typ, ok := strings.Cut(pv, "=")
		if !ok || !providerName.MatchString(name) {
			return d, usagef("init: --provider %q: write NAME=TYPE, NAME in lower case letters, digits and hyphens (for example orders-db=postgres)", pv)
		}
		if seen[name] {
			return d, usagef("init: --provider %s given twice", name)
		}
		seen[name] = true
		p, ok := providerExample(name, typ)
		if !ok {
			return d, usagef("init: --provider %s: unknown type %q; types: %s", name, typ, strings.Join(all.Registry().Types(), ", "))
		}
		p.Owners = owners
		if o, ok := perProvider[name]; ok {
			p.Owners = o
			delete(perProvider, name)
		}
		for _, s := range p.Secrets {
			secrets[s] = true
		}
		d.Providers = append(d.Providers, p)
	}
	for name := range perProvider {
		return d, usagef("init: --request-owners %s: no --provider %s", name, name)
	}
	for s := range secrets {
		d.Secrets = append(d.Secrets, s)
	}
	sort.Strings(d.Secrets)

	if release == "" {
		release, d.ActionCommit = releaseOfThisBinary(actionCommit)
	}
	if !releaseTag.MatchString(release) {
		return d, usagef("init: this gitgrant (%s) is not a release: name the release the workflows install with --version vX.Y.Z (https://github.com/gitgrant/gitgrant/releases)", buildVersion())
	}
	d.Version = release
	if d.ActionCommit != "" && !commitSHA.MatchString(d.ActionCommit) {
		return d, usagef("init: --action-commit %q: the full 40-character commit SHA of the tag %s", d.ActionCommit, release)
	}
	return d, nil
}

// releaseOfThisBinary is the release this gitgrant is and, when it was
// stamped by the release build, the commit its tag points at.
func releaseOfThisBinary(actionCommit string) (string, string) {
	info, _ := debug.ReadBuildInfo()
	d := describeBuild(buildDetails{Version: version, Commit: commit, Date: date}, info)
	if actionCommit == "" && version != "" && d.Commit != "" && !d.Modified {
		actionCommit = d.Commit
	}
	return d.Version, actionCommit
}

func buildVersion() string {
	v, _ := releaseOfThisBinary("")
	return v
}

// renderInit renders every file of the new repository, by path.
func renderInit(d initData) (map[string][]byte, error) {
	funcs := template.FuncMap{"pad": func(name string) string {
		return strings.Repeat(" ", max(0, 16-len(name)))
	}}
	tmpl, err := template.New("init").Delims("{%", "%}").Funcs(funcs).ParseFS(templateFS, "templates/*.tmpl")
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	for path, name := range map[string]string{
		gitgrant.ConfigPath:               "gitgrant.yaml.tmpl",
		".github/CODEOWNERS":              "CODEOWNERS.tmpl",
		".github/workflows/validate.yml":  "validate.yml.tmpl",
		".github/workflows/review.yml":    "review.yml.tmpl",
		".github/workflows/reconcile.yml": "reconcile.yml.tmpl",
		"README.md":                       "README.md.tmpl",
	} {
		var b bytes.Buffer
		if err := tmpl.ExecuteTemplate(&b, name, d); err != nil {
			return nil, fmt.Errorf("template %s: %w", name, err)
		}
		out[path] = b.Bytes()
	}
	return out, nil
}

// writeInit writes the files, refusing to overwrite any unless force.
func writeInit(dir string, files map[string][]byte, force bool) error {
	if !force {
		var existing []string
		for path := range files {
			if _, err := os.Stat(filepath.Join(dir, path)); err == nil {
				existing = append(existing, path)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return &gitgrant.SystemError{System: "file system", Op: "init", Err: err}
			}
		}
		if len(existing) > 0 {
			sort.Strings(existing)
			return usagef("init: %s already exist(s) in %s: run init in an empty repository, or --force to overwrite", strings.Join(existing, ", "), dir)
		}
	}
	for path, content := range files {
		full := filepath.Join(dir, path)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return &gitgrant.SystemError{System: "file system", Op: "init", Err: err}
		}
		if err := os.WriteFile(full, content, 0o644); err != nil {
			return &gitgrant.SystemError{System: "file system", Op: "init", Err: err}
		}
	}
	return nil
}

// nextSteps is what a person does after init, in order.
func nextSteps(d initData) string {
	var b strings.Builder
	fmt.Fprintf(&b, `
Next steps:

1. Edit the settings marked "edit" in gitgrant.yaml, add the people who
   will ask for access under identities:, then check everything:
     gitgrant validate
2. Commit and push to main:
     git add -A && git commit -m "Start an access repository with gitgrant" && git push origin main
3. Trust this first policy, once (recorded in git, refs/notes/gitgrant);
   every later change to gitgrant.yaml or CODEOWNERS takes effect only
   through a pull request its code owners approve (docs/trust.md):
     gitgrant trust --root first
4. Protect main (Settings > Rules > Rulesets, or Branches):
   - require a pull request before merging, with 1 approval
   - require review from Code Owners; dismiss stale approvals on new commits
   - require the status check "gitgrant validate"
   - block force pushes and deletions; no bypass for anyone
`)
	if d.Cleanup == "push" {
		b.WriteString("   - cleanup.mode is push: let gitgrant's GitHub App bypass the protection\n     (and only it), or its cleanup pushes are refused\n")
	} else {
		b.WriteString("   gitgrant never pushes to main (cleanup.mode: pull-request): merge its\n   cleanup pull requests when they appear\n")
	}
	fmt.Fprintf(&b, `5. Create a GitHub App for gitgrant (Settings > Developer settings > GitHub
   Apps), no webhook needed for the workflows, with these permissions:
   - Repository: Contents read and write, Pull requests read and write,
     Issues read and write, Checks read and write, Commit statuses read
     and write (Metadata read is implied)
   - Organization: Members read (team code owners and team approvers)
   Install it on this repository only. Then, in this repository's settings:
   - variables GITGRANT_APP_ID and GITGRANT_APP_INSTALLATION_ID
   - secret GITGRANT_APP_PRIVATE_KEY (the App's private key, PEM)
   Without the App the workflows use GITHUB_TOKEN, which cannot read teams.
6. Create the environment "gitgrant" (Settings > Environments), limit its
   deployment branches to main, and add the providers' secrets to it:
`)
	if len(d.Secrets) == 0 {
		b.WriteString("   (none: these providers take their credentials from the runner; see\n   docs/providers/ for each type)\n")
	}
	for _, s := range d.Secrets {
		fmt.Fprintf(&b, "   - %s\n", s)
	}
	fmt.Fprintf(&b, `7. Check that gitgrant reaches every provider, with those secrets set:
     gitgrant providers check

The workflows install gitgrant %s`, d.Version)
	if d.ActionCommit != "" {
		fmt.Fprintf(&b, " through the action pinned to %s", d.ActionCommit)
	} else {
		b.WriteString(" with go install")
	}
	b.WriteString("; to upgrade, change\nthe version in .github/workflows/ in a pull request.\n")
	return b.String()
}

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/gitrepo"
	"github.com/gitgrant/gitgrant/internal/render"
	"github.com/gitgrant/gitgrant/schema"
)

// requestFile is the on-disk shape `gitgrant request` writes; field order
// is the order people read.
type requestFile struct {
	Requester string              `yaml:"requester"`
	Subject   string              `yaml:"subject,omitempty"`
	Grants    []gitgrant.GrantRef `yaml:"grants"`
	Duration  string              `yaml:"duration,omitempty"`
	Expires   string              `yaml:"expires,omitempty"`
	Starts    string              `yaml:"starts,omitempty"`
	Reason    string              `yaml:"reason"`
	Ticket    string              `yaml:"ticket,omitempty"`
	Emergency bool                `yaml:"emergency,omitempty"`
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func runRequest(ctx context.Context, args []string, e *env) error {
	fs := newFlags("request", "--provider P --role R (--for D | --until T) --reason TEXT [flags]\n       gitgrant request --extend FILE (--for D | --until T) [--open-pr]", `
Write a request file at requests/<provider>/<requester>-<role>-<date>.yaml,
checked against gitgrant.yaml before anything is written. Commit it on a
branch and open a pull request; the provider's code owners approve it.

  gitgrant request --provider orders-db --role readwrite --for 4h \
    --reason "Repair stuck orders after INC-1234" --ticket INC-1234

--extend FILE moves the end of an existing request: --for D makes access
last D from now (from its start, if that is later), --until T until T. The
file's duration: becomes expires:, since an extension's window starts
again when its own pull request merges; it must fit the role's maximum
from then.

--open-pr commits the new or extended file on a new branch on top of the
remote's main branch, pushes it and opens the pull request, printing its
URL; the work tree is not touched. It needs your own GitHub credentials
(GITHUB_TOKEN, such as $(gh auth token)): the pull request's author must be
the requester. git pushes with GITGRANT_GIT_TOKEN, else the GitHub token,
or SSH for an ssh:// or git@ origin.`, e)
	repo := fs.String("repo", ".", "access repository `DIR`")
	provider := fs.String("provider", "", "provider `name` from gitgrant.yaml (required)")
	var roles multiFlag
	fs.Var(&roles, "role", "`role` to request (required; repeat for several roles of the provider)")
	dur := fs.String("for", "", "how long, such as 30m, 4h, 2d (or use --until)")
	until := fs.String("until", "", "when access ends, RFC 3339 such as 2026-11-23T17:00:00Z")
	starts := fs.String("starts", "", "scheduled start, RFC 3339 (default: when the pull request merges)")
	reason := fs.String("reason", "", "why you need access (required)")
	ticket := fs.String("ticket", "", "ticket or incident reference")
	requester := fs.String("requester", "", "your GitHub `login` (default: git config github.user)")
	subject := fs.String("subject", "", "identity that receives the access, when asking on its behalf")
	emergency := fs.Bool("emergency", false, "break-glass request (only for policy.break_glass members)")
	stdout := fs.Bool("stdout", false, "print the file instead of writing it")
	extend := fs.String("extend", "", "request `FILE` to extend (with --for or --until)")
	openPR := fs.Bool("open-pr", false, "push a branch with the file and open the pull request")
	branch := fs.String("branch", gitrepo.DefaultBranch, "main `branch` the pull request goes into")
	if err := parseFlagsOnly(fs, args); err != nil {
		return err
	}
	if (*dur == "") == (*until == "") {
		return usagef("request: give exactly one of --for (how long) and --until (when it ends)")
	}
	if *openPR && *stdout {
		return usagef("request: --open-pr and --stdout do not go together")
	}
	if *extend != "" {
		if *provider != "" || len(roles) > 0 || *reason != "" || *ticket != "" || *starts != "" || *subject != "" || *emergency || *requester != "" {
			return usagef("request --extend: only --for or --until change; edit the file for anything else")
		}
		root, files, err := localRepo(*repo, []string{*extend})
		if err != nil {
			return err
		}
		rel, err := relToRepo(root, files[0])
		if err != nil {
			return err
		}
		end, err := extendEnd(*dur, *until, e.now())
		if err != nil {
			return err
		}
		ext, err := extendRequest(root, rel, end, e.now(), e)
		if err != nil {
			return err
		}
		if err := checkNewRequest(root, rel, ext.Data, e); err != nil {
			return err
		}
		p := proposal{Rel: rel, Data: ext.Data, Requester: ext.Request.Requester, Replaces: ext.Before,
			Branch:  "access/extend-" + strings.TrimSuffix(path.Base(rel), ".yaml") + "-" + e.now().UTC().Format("20060102-1504"),
			Title:   fmt.Sprintf("Extend %s until %s", rel, ext.Expires.Format(time.RFC3339)),
			Body:    extensionBody(ext),
			Message: fmt.Sprintf("Extend %s until %s", path.Base(rel), ext.Expires.Format(time.RFC3339))}
		switch {
		case *stdout:
			_, err := e.stdout.Write(ext.Data)
			return err
		case *openPR:
			return openPullRequest(ctx, root, *branch, p, e)
		}
		full := filepath.Join(root, filepath.FromSlash(rel))
		if err := os.WriteFile(full, ext.Data, 0o644); err != nil {
			return &gitgrant.SystemError{System: "filesystem", Op: "write " + full, Err: err}
		}
		fmt.Fprintf(e.stdout, "extended %s until %s\nnext: git checkout -b %s && git commit -am %q && git push, then open a pull request (or rerun with --open-pr)\n",
			rel, ext.Expires.Format(time.RFC3339), p.Branch, p.Message)
		return nil
	}
	switch {
	case *provider == "":
		return usagef("request: --provider is required")
	case len(roles) == 0:
		return usagef("request: --role is required")
	case *reason == "":
		return usagef("request: --reason is required: approvers and the audit trail need it")
	}
	if *requester == "" {
		*requester = gitConfig(*repo, "github.user")
		if *requester == "" {
			return usagef("request: cannot tell your GitHub login: pass --requester LOGIN, or run 'git config --global github.user LOGIN'")
		}
	}

	rf := requestFile{Requester: *requester, Subject: *subject, Duration: *dur, Expires: *until, Starts: *starts,
		Reason: *reason, Ticket: *ticket, Emergency: *emergency}
	for _, r := range roles {
		rf.Grants = append(rf.Grants, gitgrant.GrantRef{Provider: *provider, Role: r})
	}
	var buf bytes.Buffer
	buf.WriteString("# yaml-language-server: $schema=../../schema/request.schema.json\n")
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(rf); err != nil {
		return err
	}
	data := buf.Bytes()

	rel, err := freePath(*repo, *provider, *requester, strings.Join(roles, "+"), e.now())
	if err != nil {
		return err
	}
	if err := checkNewRequest(*repo, rel, data, e); err != nil {
		return err
	}
	if *stdout {
		_, err := e.stdout.Write(data)
		return err
	}
	title := "Request " + *provider + " " + strings.Join(roles, ", ")
	if *openPR {
		return openPullRequest(ctx, *repo, *branch, proposal{Rel: rel, Data: data, Requester: *requester,
			Branch: "access/" + strings.TrimSuffix(path.Base(rel), ".yaml"), Title: title, Message: title,
			Body: requestBody(rf, rel), New: true}, e)
	}
	full := filepath.Join(*repo, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		return &gitgrant.SystemError{System: "filesystem", Op: "create " + filepath.Dir(full), Err: err}
	}
	f, err := os.OpenFile(full, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return &gitgrant.SystemError{System: "filesystem", Op: "write " + full, Err: err}
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return &gitgrant.SystemError{System: "filesystem", Op: "write " + full, Err: err}
	}
	if err := f.Close(); err != nil {
		return &gitgrant.SystemError{System: "filesystem", Op: "write " + full, Err: err}
	}
	fmt.Fprintf(e.stdout, "wrote %s\nnext: git checkout -b access/%s && git add %s && git commit -m %q && git push, then open a pull request (or rerun with --open-pr)\n",
		rel, strings.TrimSuffix(path.Base(rel), ".yaml"), rel, title)
	return nil
}

// checkNewRequest validates the file about to be written against the
// repository's config, printing problems the same way `validate` does.
func checkNewRequest(repo, rel string, data []byte, e *env) error {
	cfgFile, _, err := schema.ReadFiles(repo, nil)
	if err != nil {
		return err
	}
	rep := schema.Validate(cfgFile, []schema.File{{Path: rel, Data: data, Size: int64(len(data))}}, schema.Options{Now: e.now()})
	if errs, _ := rep.Counts(); errs > 0 {
		fmt.Fprintln(e.stderr, "the request was not written:")
		render.TextDiagnostics(e.stderr, rep.Diagnostics())
		return errInvalid
	}
	return nil
}

// freePath picks requests/<provider>/<requester>-<role>-<date>.yaml, with a
// counter when that name is taken.
func freePath(repo, provider, requester, role string, now time.Time) (string, error) {
	base := fmt.Sprintf("%s-%s-%s", strings.ToLower(requester), role, now.UTC().Format("20060102"))
	for i := 1; i < 1000; i++ {
		name := base
		if i > 1 {
			name = fmt.Sprintf("%s-%d", base, i)
		}
		rel := path.Join(gitgrant.RequestsDir, provider, name+".yaml")
		_, err := os.Lstat(filepath.Join(repo, filepath.FromSlash(rel)))
		if errors.Is(err, fs.ErrNotExist) {
			return rel, nil
		}
		if err != nil {
			return "", &gitgrant.SystemError{System: "filesystem", Op: "stat " + rel, Err: err}
		}
	}
	return "", fmt.Errorf("too many requests named %s-*", base)
}

// gitConfig reads one git config value in dir, or "".
func gitConfig(dir, key string) string {
	cmd := exec.Command("git", "config", "--get", key)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return ""
	}
	return string(bytes.TrimSpace(out))
}

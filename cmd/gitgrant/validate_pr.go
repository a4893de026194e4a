package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/approval"
	"github.com/gitgrant/gitgrant/internal/ghapi"
	"github.com/gitgrant/gitgrant/internal/prcheck"
	"github.com/gitgrant/gitgrant/internal/render"
	"github.com/gitgrant/gitgrant/schema"
)

// prFlag is --pr: a pull request number, or bare --pr for the pull request
// of the workflow run's event (GITHUB_EVENT_PATH).
type prFlag struct {
	set    bool
	number int
}

func (p *prFlag) String() string {
	if p == nil || !p.set {
		return ""
	}
	if p.number == 0 {
		return "event"
	}
	return strconv.Itoa(p.number)
}

func (p *prFlag) Set(s string) error {
	p.set = true
	if s == "true" || s == "event" {
		p.number = 0
		return nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		return fmt.Errorf("--pr takes a pull request number, or nothing to read it from GITHUB_EVENT_PATH")
	}
	p.number = n
	return nil
}

// IsBoolFlag lets --pr stand alone.
func (p *prFlag) IsBoolFlag() bool { return true }

var prNumberRE = regexp.MustCompile(`^[1-9][0-9]*$`)

// joinPRNumber rewrites "--pr 12" as "--pr=12": a flag that may stand
// alone takes its value only after "=" in the flag package.
func joinPRNumber(args []string) []string {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(out, args[i:]...)
		}
		if (a == "--pr" || a == "-pr") && i+1 < len(args) && prNumberRE.MatchString(args[i+1]) {
			out = append(out, a+"="+args[i+1])
			i++
			continue
		}
		out = append(out, a)
	}
	return out
}

// prNumber is the pull request to check: --pr N, or the event's.
func prNumber(e *env, p prFlag) (int, error) {
	if p.number > 0 {
		return p.number, nil
	}
	path := e.getenv("GITHUB_EVENT_PATH")
	if path == "" {
		return 0, usagef("validate --pr: give the pull request number, or run in a pull_request workflow (GITHUB_EVENT_PATH is not set)")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, usagef("validate --pr: cannot read GITHUB_EVENT_PATH %s: %v", path, err)
	}
	ev, err := ghapi.ReadPullRequestEvent(data)
	if err != nil {
		return 0, usagef("validate --pr: %v (event %s); give the pull request number", err, e.getenv("GITHUB_EVENT_NAME"))
	}
	return ev.Number, nil
}

// runValidatePR is `validate --pr`: the changed files of one pull request,
// judged by its base, reported back on the pull request.
func runValidatePR(ctx context.Context, e *env, repoDir string, p prFlag, format render.Format) error {
	cfg, err := ghapi.ConfigFromEnv(e.getenv, os.ReadFile)
	if err != nil {
		return usagef("GitHub settings: %v", err)
	}
	if cfg.Repository == "" || (cfg.Token == "" && cfg.AppID == 0) {
		return usagef("validate --pr needs GITHUB_REPOSITORY and GITHUB_TOKEN (or a GitHub App: %s, %s, %s)", ghapi.EnvAppID, ghapi.EnvInstallationID, ghapi.EnvPrivateKeyFile)
	}
	number, err := prNumber(e, p)
	if err != nil {
		return err
	}
	logger := slog.New(slog.DiscardHandler)
	client, err := ghapi.New(cfg, ghapi.Options{Logger: logger})
	if err != nil {
		return usagef("GitHub settings: %v", err)
	}
	checker := &prcheck.Checker{Client: client, Local: prcheck.OpenLocal(repoDir), Clock: e.clock()}
	var files approval.FileReader
	if checker.Local != nil {
		files = checker.Local
	}
	checker.Verifier = approval.New(client, files, nil)
	checker.Verifier.Clock, checker.Verifier.Logger = e.clock(), logger

	res, err := checker.Check(ctx, number)
	if err != nil {
		return err
	}
	comment := prcheck.Comment(res, 10)
	var body strings.Builder
	if err := render.PRCommentMarkdown(&body, comment); err != nil {
		return err
	}
	if err := writePRValidation(e, format, res, comment, body.String()); err != nil {
		return &gitgrant.SystemError{System: "output", Op: "write", Err: err}
	}
	errs, _ := comment.Counts()
	skipped, err := checker.Publish(ctx, res, body.String(), prcheck.Conclusion(res), comment.Headline())
	for _, s := range skipped {
		fmt.Fprintf(e.stderr, "gitgrant: warning: GitHub refused %s (a pull request from a fork, or missing permissions); the annotations and job summary still show the result\n", s)
	}
	if err != nil {
		return err
	}
	if errs > 0 {
		return errInvalid
	}
	return problems(e, res.Problems)
}

// prJSON is `validate --pr --output json`: the validation document of
// plain validate, plus the pull request and each request's preview.
type prJSON struct {
	render.Validation
	PullRequest prJSONPull                   `json:"pull_request"`
	Previews    map[string]*approval.Preview `json:"previews"`
}

type prJSONPull struct {
	Number        int      `json:"number"`
	Base          string   `json:"base"`
	Head          string   `json:"head"`
	ConfigChanged bool     `json:"config_changed"`
	Removed       []string `json:"removed"`
}

func writePRValidation(e *env, format render.Format, res *prcheck.Result, c render.PRComment, body string) error {
	rep := res.Report
	errs, warnings := rep.Counts()
	if !res.ConfigChanged && len(rep.ConfigFile().Diagnostics) == 0 {
		rep = &schema.Report{Config: rep.Config, Files: rep.Requests()}
	}
	v := render.NewValidation(validatedFiles(rep))
	switch format {
	case render.JSON:
		out := prJSON{
			Validation:  v,
			PullRequest: prJSONPull{Number: res.PR.Number, Base: res.PR.BaseSHA, Head: res.PR.HeadSHA, ConfigChanged: res.ConfigChanged, Removed: append([]string{}, res.Removed...)},
			Previews:    map[string]*approval.Preview{},
		}
		for _, r := range res.Requests {
			if r.Preview != nil {
				out.Previews[r.Path] = r.Preview
			}
		}
		return render.WriteJSON(e.stdout, out) // nothing after the document
	case render.GitHub:
		if err := render.GitHubAnnotations(e.stdout, v.Diagnostics()); err != nil {
			return err
		}
		if path := e.getenv("GITHUB_STEP_SUMMARY"); path != "" {
			if err := appendFile(path, func(w io.Writer) error {
				_, err := io.WriteString(w, strings.TrimPrefix(body, render.PRCommentMarker+"\n")+"\n")
				return err
			}); err != nil {
				return err
			}
		}
	default:
		if err := render.TextDiagnostics(e.stdout, v.Diagnostics()); err != nil {
			return err
		}
	}
	if !res.Relevant() {
		_, err := fmt.Fprintf(e.stdout, "pull request #%d changes no request file, gitgrant.yaml or CODEOWNERS: nothing to check\n", res.PR.Number)
		return err
	}
	_, err := fmt.Fprintf(e.stdout, "pull request #%d: %d files checked (%d requests) against gitgrant.yaml at base %.12s: %d errors, %d warnings\n%s\n",
		res.PR.Number, v.Summary.Files, v.Summary.Requests, res.PR.BaseSHA, errs, warnings, c.Headline())
	return err
}

// Package prcheck owns `gitgrant validate --pr`: it checks what one
// pull request changes, judged by the policy at the pull request's base
// commit (brief rule 1), previews what merging it would grant and which
// approvals are still missing, and reports back on the pull request with
// one comment (updated, never duplicated) and a check.
package prcheck

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/approval"
	"github.com/gitgrant/gitgrant/internal/ghapi"
	"github.com/gitgrant/gitgrant/internal/gitrepo"
	"github.com/gitgrant/gitgrant/internal/render"
	"github.com/gitgrant/gitgrant/schema"
)

// MaxListedFiles is how many files GitHub lists for a pull request.
const MaxListedFiles = 3000

// Checker checks pull requests of one repository.
type Checker struct {
	Client   *ghapi.Client
	Verifier *approval.Verifier
	// Local reads commits from the workflow's checkout; nil, or a commit
	// it does not have, means the contents API.
	Local *LocalFiles
	// Clock judges windows; nil is the wall clock.
	Clock gitgrant.Clock
}

// Result is what Check found.
type Result struct {
	PR    gitgrant.PullRequest
	Files []gitgrant.PullRequestFile
	// ConfigChanged and OwnersChanged: gitgrant.yaml or a CODEOWNERS file
	// is in the diff; neither applies to the pull request's own requests.
	ConfigChanged bool
	OwnersChanged bool
	// Report judges the head versions of the changed request files by the
	// base commit's gitgrant.yaml. ConfigFile is gitgrant.yaml: the pull
	// request's version when it changes it, else the base's problems only.
	Report   *schema.Report
	Requests []Request
	// Removed are request files the pull request deletes or renames away.
	Removed []string
	// Policy previews verifying the pull request's change to gitgrant.yaml
	// or CODEOWNERS (rule 13); nil when it changes neither, or when GitHub
	// could not be asked (PolicyErr, also in Problems).
	Policy    *approval.PolicyPreview
	PolicyErr error
	// Problems are failures to ask GitHub about one request's approvals;
	// the rest was checked.
	Problems []error
	// Truncated: GitHub lists only MaxListedFiles files.
	Truncated bool
}

// Request is one request file the pull request adds or changes.
type Request struct {
	Path    string
	Request *gitgrant.Request // nil when the file does not parse
	Errors  int
	Preview *approval.Preview
	// PreviewErr: GitHub could not be asked about its approvals.
	PreviewErr error
}

// Relevant reports whether the pull request touches requests or policy.
func (r *Result) Relevant() bool {
	return len(r.Requests) > 0 || len(r.Removed) > 0 || r.ConfigChanged || r.OwnersChanged
}

// Diagnostics are the problems to annotate and to fail on.
func (r *Result) Diagnostics() gitgrant.Diagnostics { return r.Report.Diagnostics() }

func (c *Checker) now() time.Time { return gitgrant.ClockOr(c.Clock).Now() }

// Check reads pull request number, its changed files (all pages), the
// policy at its base and the changed request files at its head, validates
// them, and previews approvals. An error means GitHub or git could not be
// read for the pull request as a whole.
func (c *Checker) Check(ctx context.Context, number int) (*Result, error) {
	pr, err := c.Verifier.GitHub.PullRequest(ctx, number)
	if err != nil {
		return nil, err
	}
	if pr.BaseSHA == "" || pr.HeadSHA == "" {
		return nil, &gitgrant.SystemError{System: "github", Op: fmt.Sprintf("get pull request #%d", number), Err: errors.New("no base or head commit in the answer")}
	}
	res := &Result{PR: pr}
	if res.Files, err = c.Client.PullRequestFiles(ctx, number); err != nil {
		return nil, err
	}
	res.Truncated = len(res.Files) >= MaxListedFiles

	heads, headConfig, err := c.readChanged(ctx, res)
	if err != nil {
		return nil, err
	}

	var baseConfig *schema.File
	switch f, err := c.file(ctx, pr.BaseSHA, gitgrant.ConfigPath); {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, err
	default:
		baseConfig = &f
	}
	opts := schema.Options{Now: c.now()}
	res.Report = schema.Validate(baseConfig, heads, opts)
	requests := false
	for _, h := range heads {
		requests = requests || gitgrant.IsRequestPath(h.Path)
	}
	*res.Report.ConfigFile() = c.configReport(res, baseConfig, headConfig, requests, opts)

	c.preview(ctx, res)
	c.previewPolicy(ctx, res)
	return res, nil
}

// previewPolicy asks what verifying the pull request's policy change
// needs. A failure to ask GitHub is recorded, not fatal.
func (c *Checker) previewPolicy(ctx context.Context, res *Result) {
	if !res.ConfigChanged && !res.OwnersChanged {
		return
	}
	var paths []string
	for _, f := range res.Files {
		paths = append(paths, f.Path)
		if f.Previous != "" {
			paths = append(paths, f.Previous)
		}
	}
	p, err := c.Verifier.PreviewPolicyChange(ctx, res.PR.Number, paths)
	if err != nil {
		res.PolicyErr = err
		res.Problems = append(res.Problems, fmt.Errorf("approvals of the policy change: %w", err))
		return
	}
	if len(p.Evidence.Files) > 0 {
		res.Policy = &p
	}
}

// readChanged sorts the changed files and reads, at the head commit, the
// request files and gitgrant.yaml the pull request adds or changes.
func (c *Checker) readChanged(ctx context.Context, res *Result) (heads []schema.File, headConfig *schema.File, err error) {
	for _, f := range res.Files {
		if f.Previous != "" && gitgrant.IsRequestPath(f.Previous) {
			res.Removed = append(res.Removed, f.Previous)
		}
		switch {
		case f.Path == gitgrant.ConfigPath:
			res.ConfigChanged = true
			if f.Status != "removed" {
				file, err := c.file(ctx, res.PR.HeadSHA, f.Path)
				if err != nil {
					return nil, nil, err
				}
				headConfig = &file
			}
		case isCodeOwners(f.Path):
			res.OwnersChanged = true
		case !underRequests(f.Path):
		case f.Status == "removed":
			if gitgrant.IsRequestPath(f.Path) {
				res.Removed = append(res.Removed, f.Path)
			}
		default:
			file, err := c.file(ctx, res.PR.HeadSHA, f.Path)
			if errors.Is(err, fs.ErrNotExist) {
				return nil, nil, &gitgrant.SystemError{System: "github", Op: "read " + f.Path, Err: fmt.Errorf("listed as changed but not in head commit %s", res.PR.HeadSHA)}
			}
			if err != nil {
				return nil, nil, err
			}
			heads = append(heads, file)
		}
	}
	return heads, headConfig, nil
}

// preview asks, for every valid request, what merging now would grant.
// A failure to ask GitHub about one request is recorded, not fatal.
func (c *Checker) preview(ctx context.Context, res *Result) {
	for _, f := range res.Report.Requests() {
		errs := 0
		for _, d := range f.Diagnostics {
			if d.Severity != gitgrant.SeverityWarning {
				errs++
			}
		}
		rq := Request{Path: f.Path, Request: f.Request, Errors: errs}
		if f.Request != nil && errs == 0 {
			p, err := c.Verifier.Preview(ctx, res.PR.Number, f.Path, f.Request)
			if err != nil {
				rq.PreviewErr = err
				res.Problems = append(res.Problems, fmt.Errorf("approvals of %s: %w", f.Path, err))
			} else {
				rq.Preview = &p
			}
		}
		res.Requests = append(res.Requests, rq)
	}
}

// configReport decides what is said about gitgrant.yaml: the pull
// request's own version when it changes it (schema only: it judges
// nothing in this pull request), and the base's version only when it
// cannot judge the requests.
func (c *Checker) configReport(res *Result, base, head *schema.File, requests bool, opts schema.Options) schema.FileReport {
	out := schema.FileReport{Path: gitgrant.ConfigPath, Kind: "config"}
	if head != nil {
		out.Diagnostics = schema.Validate(head, nil, opts).ConfigFile().Diagnostics
	}
	if res.Report.Config == nil && requests {
		msg := fmt.Sprintf("gitgrant.yaml at the base commit %s is missing or invalid, so the requests in this pull request cannot be judged", render.ShortSHA(res.PR.BaseSHA))
		hint := "merge a pull request that fixes gitgrant.yaml first; a fix in this same pull request does not count for its requests"
		if base != nil {
			for _, d := range res.Report.ConfigFile().Diagnostics {
				if d.Severity != gitgrant.SeverityWarning {
					msg += fmt.Sprintf(" (first problem there: line %d: %s)", d.Line, d.Message)
					break
				}
			}
		}
		out.Diagnostics = append(out.Diagnostics, gitgrant.Diagnostic{Position: gitgrant.Position{File: gitgrant.ConfigPath}, Severity: gitgrant.SeverityError, Message: msg, Hint: hint})
	}
	return out
}

// underRequests: a file in requests/, a request or not
// (gitgrant.IsRequestPath); validation judges which.
func underRequests(p string) bool { return strings.HasPrefix(p, gitgrant.RequestsDir+"/") }

func isCodeOwners(p string) bool {
	for _, c := range gitrepo.CodeOwnersPaths {
		if p == c {
			return true
		}
	}
	return false
}

// file reads one file at a commit, from the checkout when it has the
// commit, else through the contents API. A missing file wraps
// fs.ErrNotExist.
func (c *Checker) file(ctx context.Context, rev, p string) (schema.File, error) {
	if c.Local != nil {
		f, err := c.Local.File(rev, p)
		if err == nil || errors.Is(err, fs.ErrNotExist) {
			return f, err
		}
	}
	fc, err := c.Client.Contents(ctx, rev, p)
	if err != nil {
		return schema.File{}, err
	}
	f := schema.File{Path: p, Size: fc.Size, Data: fc.Data}
	switch fc.Type {
	case "file": // Data is its content
	case "symlink":
		f.Kind = schema.Symlink
	default:
		f.Kind = schema.Irregular
	}
	return f, nil
}

// Comment turns a result into the pull request comment's content.
func Comment(res *Result, foldAfter int) render.PRComment {
	c := render.PRComment{
		Number: res.PR.Number, BaseSHA: res.PR.BaseSHA, HeadSHA: res.PR.HeadSHA,
		ConfigChanged: res.ConfigChanged, OwnersChanged: res.OwnersChanged,
		Removed: res.Removed, Diagnostics: res.Diagnostics(), FoldAfter: foldAfter,
	}
	cfg := res.Report.Config
	for _, rq := range res.Requests {
		pr := render.PRRequest{Path: rq.Path, Errors: rq.Errors}
		if req := rq.Request; req != nil {
			pr.Requester, pr.Beneficiary, pr.Emergency = req.Requester, req.Beneficiary(), req.Emergency
			pr.Reason, pr.Ticket = req.Reason, req.Ticket
			if cfg != nil {
				pr.Grants = grants(cfg, req)
			}
		}
		if rq.PreviewErr != nil {
			pr.PreviewError = rq.PreviewErr.Error()
		}
		if p := rq.Preview; p != nil {
			pr.Previewed, pr.Ready, pr.Reasons = true, p.Ready, p.Evidence.Reasons
			for _, n := range p.Needs {
				pr.Needs = append(pr.Needs, render.PRNeed{Provider: n.Grant.Provider, Role: n.Grant.Role, Missing: n.Missing, Owners: n.Owners, Approvers: n.Approvers})
			}
		}
		c.Requests = append(c.Requests, pr)
	}
	if p := res.Policy; p != nil {
		pc := &render.PRPolicyChange{Ready: p.Ready, Blocked: p.Blocked, Reasons: p.Evidence.Reasons}
		needs := map[string][]string{}
		for _, n := range p.Needs {
			needs[n.Path] = n.Owners
		}
		for _, f := range p.Evidence.Files {
			pf := render.PRPolicyFile{Path: f.Path, Removed: f.Blob == ""}
			for _, a := range f.Approvers {
				pf.ApprovedBy = append(pf.ApprovedBy, "@"+a.Login)
			}
			if owners, ok := needs[f.Path]; ok {
				pf.Missing, pf.Owners = true, owners
			}
			pc.Files = append(pc.Files, pf)
		}
		c.PolicyChange = pc
	}
	if res.Truncated {
		c.Notes = append(c.Notes, fmt.Sprintf("GitHub lists only the first %d files of a pull request; files past them were not checked.", MaxListedFiles))
	}
	return c
}

// grants describes each grant's window the way the reconciler will
// compute it after the merge (reconciler.window): from the merge or
// starts, for the duration or until expires, clamped to the maximum.
func grants(cfg *gitgrant.Config, req *gitgrant.Request) []render.PRGrant {
	_, id, _ := cfg.Identity(req.Beneficiary())
	var out []render.PRGrant
	for _, g := range req.Grants {
		// The principal is the one the reconciler will grant to: the
		// identity's entry, or its email for providers that name people
		// by email (PrincipalOf).
		out = append(out, render.PRGrant{Provider: g.Provider, Role: g.Role, Principal: cfg.PrincipalOf(id, g.Provider),
			Starts: req.Starts, Duration: req.Duration, Expires: req.Expires, Max: cfg.GrantMaxDuration(req, g)})
	}
	return out
}

// Marker is the hidden start of the one validate comment.
const Marker = render.PRCommentMarker

// CheckName names the check run and the fallback commit status.
const CheckName = "gitgrant validate"

// Conclusion is the check's verdict: failure when a changed file is
// invalid, neutral when GitHub could not be asked about everything,
// success otherwise (missing approvals are no failure: the pull request is
// waiting, not wrong).
func Conclusion(res *Result) ghapi.Conclusion {
	errs, _ := res.Report.Counts()
	switch {
	case errs > 0:
		return "failure"
	case len(res.Problems) > 0:
		return "neutral"
	}
	return "success"
}

// Publish upserts the comment and records the check on the head commit:
// a check run, or a commit status where check runs are not permitted (a
// pull request from a fork, or a token without Checks: write). Writes
// GitHub refuses (403, or 404 for a token that may not see) are returned
// as skipped, not as errors: the annotations and the job summary still
// carry the result.
func (c *Checker) Publish(ctx context.Context, res *Result, body string, conclusion ghapi.Conclusion, title string) (skipped []string, err error) {
	if res.Relevant() {
		if _, _, err := c.Client.UpsertComment(ctx, res.PR.Number, Marker, body); err != nil {
			if !forbidden(err) {
				return skipped, err
			}
			skipped = append(skipped, "pull request comment: "+err.Error())
		}
	}
	// Commit statuses know no "neutral": a check that could not finish is
	// an "error" there.
	state := map[ghapi.Conclusion]string{"success": "success", "failure": "failure"}[conclusion]
	if state == "" {
		state = "error"
	}
	summary := strings.TrimPrefix(body, Marker+"\n")
	if _, err := c.Client.CheckRun(ctx, res.PR.HeadSHA, CheckName, conclusion, stripEmoji(title), summary); err == nil {
		return skipped, nil
	} else if !forbidden(err) {
		return skipped, err
	}
	if err := c.Client.SetStatus(ctx, res.PR.HeadSHA, state, CheckName, stripEmoji(title)); err != nil {
		if !forbidden(err) {
			return skipped, err
		}
		skipped = append(skipped, "check run and commit status: "+err.Error())
	}
	return skipped, nil
}

// forbidden: GitHub refused the write, with a 403, or a 404 to a token
// that may not see.
func forbidden(err error) bool {
	return errors.Is(err, ghapi.ErrForbidden) || errors.Is(err, ghapi.ErrNotFound)
}

// stripEmoji drops the leading status symbol of a headline for places
// that show their own (check runs, statuses).
func stripEmoji(s string) string {
	for _, p := range []string{"✅ ", "❌ ", "⚠️ "} {
		s = strings.TrimPrefix(s, p)
	}
	return s
}

package main

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"os"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/audit"
	"github.com/gitgrant/gitgrant/internal/gitrepo"
	"github.com/gitgrant/gitgrant/internal/report"
)

// reportOptions are the flags of `gitgrant report`.
type reportOptions struct {
	Repo, Branch, CacheDir string
	Filter                 report.Filter
	Output                 string
	File                   string // where to write; "" or "-" is stdout
}

func runReport(ctx context.Context, args []string, e *env) error {
	fs := newFlags("report", "[--repo DIR|URL] [--since T] [--until T] [--provider P] [--role R] [--output text|json|csv|html] [--out FILE]", `
Measure just-in-time access from git alone (docs/report.md): time to access
(request written, approved, merged, granted; p50 and p90 per role), privilege
reduction (hours held just in time against hours held by standing members,
and standing members over time), the share of grants used where a provider
can tell, refused and unauthorized attempts, approval rate and time per role
and month with the change from the month before, and emergencies with their
follow-up.

It reads the same history as 'gitgrant audit' (the main branch, gitgrant's
cleanup trailers and its records under refs/notes/gitgrant) and the policy
states gitgrant recorded as verified; it asks no provider and no GitHub.
--repo is a local clone or a URL, as for audit. Times are RFC 3339 or a date
(midnight UTC); the period is [--since, --until), by default from the first
event to now.

--output html writes one self-contained page (inline SVG charts, nothing
fetched, no script); --out FILE writes to a file instead of stdout.

Exit status: 0 fine, 2 usage error, 3 the repository could not be read.`, e)
	var o reportOptions
	fs.StringVar(&o.Repo, "repo", ".", "access repository: a `DIR` or a URL")
	fs.StringVar(&o.Branch, "branch", gitrepo.DefaultBranch, "the main `branch`")
	fs.StringVar(&o.Filter.Provider, "provider", "", "only grants on this `provider`")
	fs.StringVar(&o.Filter.Role, "role", "", "only grants of this `role`")
	since := fs.String("since", "", "measure from `T` on")
	until := fs.String("until", "", "measure until `T` (default now)")
	fs.StringVar(&o.Output, "output", "text", "`format`: text, json, csv or html")
	fs.StringVar(&o.File, "out", "", "write to `FILE` instead of stdout")
	fs.StringVar(&o.CacheDir, "cache-dir", "", "where clones of remote repositories are kept (default: the user cache)")
	if err := parseFlagsOnly(fs, args); err != nil {
		return err
	}
	if err := checkOutput("report", o.Output, "text", "json", "csv", "html"); err != nil {
		return err
	}
	if err := parseTimeFlags("report", e.now(), timeFlag{"since", *since, &o.Filter.Since}, timeFlag{"until", *until, &o.Filter.Until}); err != nil {
		return err
	}
	if !o.Filter.Since.IsZero() && !o.Filter.Until.IsZero() && !o.Filter.Since.Before(o.Filter.Until) {
		return usagef("report: --since %s is not before --until %s", *since, *until)
	}
	return reportRun(ctx, o, e)
}

// reportRun opens the repository, builds the report and writes it.
func reportRun(ctx context.Context, o reportOptions, e *env) error {
	acc, err := resolveAccess(e, o.Repo, false, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	gopts := acc.Git
	gopts.Source, gopts.Branch, gopts.CacheDir = o.Repo, o.Branch, o.CacheDir
	r, err := gitrepo.Open(ctx, gopts)
	if err != nil {
		return err
	}
	defer r.Close()
	rep, err := report.Build(ctx, r, report.Options{Filter: o.Filter, Now: e.now(), IndexDir: audit.IndexDir(r)})
	if err != nil {
		return err
	}
	var w io.Writer = e.stdout
	var file *os.File
	if o.File != "" && o.File != "-" {
		if file, err = os.Create(o.File); err != nil {
			return &gitgrant.SystemError{System: "output", Op: "create " + o.File, Err: err}
		}
		w = file
	}
	out := bufio.NewWriterSize(w, 64<<10)
	switch o.Output {
	case "json":
		err = report.WriteJSON(out, rep)
	case "csv":
		err = report.WriteCSV(out, rep)
	case "html":
		err = report.WriteHTML(out, rep)
	default:
		err = report.WriteText(out, rep)
	}
	if err == nil {
		err = out.Flush()
	}
	if file != nil {
		if cerr := file.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return &gitgrant.SystemError{System: "output", Op: "write", Err: err}
	}
	return nil
}

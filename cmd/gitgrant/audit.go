package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/audit"
	"github.com/gitgrant/gitgrant/internal/gitrepo"
	"github.com/gitgrant/gitgrant/internal/render"
)

func runAudit(ctx context.Context, args []string, e *env) error {
	fs := newFlags("audit", "[--repo DIR|URL] [--who LOGIN] [--provider P] [--role R] [--since T] [--until T] [--at T] [--output table|json|csv]", `
Rebuild the access trail from git alone: when each request was requested,
approved, granted, extended, revoked early, expired and cleaned up, with the
commit, pull request and times. It reads the main branch's first-parent
history, the trailers of gitgrant's cleanup commits and the notes under
refs/notes/gitgrant (docs/audit.md). With --at, it answers "who held what at
that time" instead.

--repo is a local clone or a URL (https://, ssh://, git@host:path, file://);
a URL is cloned into a cache and fetched on every run. HTTPS remotes use
GITGRANT_GIT_TOKEN, else the GitHub App's installation token
(GITGRANT_GITHUB_APP_*), else GITHUB_TOKEN; ssh remotes use
GITGRANT_GIT_SSH_KEY_FILE or the SSH agent, and refuse a host whose key is
not in GITGRANT_GIT_SSH_KNOWN_HOSTS (default ~/.ssh/known_hosts). Times are RFC 3339 (2026-11-22T09:00:00Z) or a date
(2026-11-22, midnight UTC). A local clone only knows what was last fetched:
run git fetch origin 'refs/notes/*:refs/notes/*' to see grant notes.

Exit status: 0 fine, 2 usage error, 3 the repository could not be read.`, e)
	repo := fs.String("repo", ".", "access repository: a `DIR` or a URL")
	branch := fs.String("branch", gitrepo.DefaultBranch, "the main `branch`")
	who := fs.String("who", "", "only this `LOGIN` (requester or beneficiary)")
	provider := fs.String("provider", "", "only grants on this `provider`")
	role := fs.String("role", "", "only grants of this `role`")
	since := fs.String("since", "", "only events at or after `T`")
	until := fs.String("until", "", "only events before `T`")
	at := fs.String("at", "", "show who held what at `T` instead of events")
	output := fs.String("output", "table", "`format`: table, json or csv")
	cacheDir := fs.String("cache-dir", "", "where clones of remote repositories are kept (default: the user cache)")
	if err := parseFlagsOnly(fs, args); err != nil {
		return err
	}
	if err := checkOutput("audit", *output, "table", "json", "csv"); err != nil {
		return err
	}
	filter := audit.Filter{Who: *who, Provider: *provider, Role: *role}
	var atTime time.Time
	err := parseTimeFlags("audit", e.now(), timeFlag{"since", *since, &filter.Since}, timeFlag{"until", *until, &filter.Until}, timeFlag{"at", *at, &atTime})
	if err != nil {
		return err
	}

	acc, err := resolveAccess(e, *repo, false, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	gopts := acc.Git
	gopts.Source, gopts.Branch, gopts.CacheDir = *repo, *branch, *cacheDir
	r, err := gitrepo.Open(ctx, gopts)
	if err != nil {
		return err
	}
	defer r.Close()
	trail, err := audit.Build(ctx, r, audit.Options{Now: e.now(), IndexDir: audit.IndexDir(r)})
	if err != nil {
		return err
	}
	out := bufio.NewWriterSize(e.stdout, 64<<10) // tables write cell by cell
	if *at != "" {
		err = writeHoldings(out, *output, trail.Head, atTime, trail.At(atTime, filter))
	} else {
		err = writeEvents(out, *output, trail.Head, trail.Filter(filter))
	}
	if err == nil {
		err = out.Flush()
	}
	if err != nil {
		return &gitgrant.SystemError{System: "output", Op: "write", Err: err}
	}
	return nil
}

// jsonAppender is an element that writes its own indented JSON, as
// encoding/json would (audit.Event).
type jsonAppender interface {
	AppendJSON(b []byte, prefix string) ([]byte, error)
}

// writeJSONList writes the documented shape of `audit --output json`
// (docs/audit.md): {"version", "head", ["at",] "events"|"holdings": [...]},
// indented as render.WriteJSON indents, one element at a time: a trail of
// 100,000 events is encoded in a fraction of the memory and time that
// indenting one large document takes.
func writeJSONList[T any](w io.Writer, header, key string, items []T) error {
	fmt.Fprintf(w, "{\n  %s,\n  %q: [", header, key)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("    ", "  ")
	var out []byte
	for i := range items {
		sep := ",\n    "
		if i == 0 {
			sep = "\n    "
		}
		out = append(out[:0], sep...)
		if a, ok := any(&items[i]).(jsonAppender); ok { // events: no reflection
			var err error
			if out, err = a.AppendJSON(out, "    "); err != nil {
				return err
			}
		} else {
			buf.Reset()
			if err := enc.Encode(items[i]); err != nil {
				return err
			}
			out = append(out, bytes.TrimSuffix(buf.Bytes(), []byte("\n"))...)
		}
		if _, err := w.Write(out); err != nil {
			return err
		}
	}
	if len(items) > 0 {
		io.WriteString(w, "\n  ")
	}
	_, err := io.WriteString(w, "]\n}\n")
	return err
}

func grantsText(gs []gitgrant.GrantRef) string { return strings.Join(gitgrant.GrantNames(gs), " ") }

func timeText(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// writeCSV writes header, then one record per item.
func writeCSV[T any](w io.Writer, header []string, items []T, record func(T) []string) error {
	cw := csv.NewWriter(w)
	cw.Write(header)
	for _, it := range items {
		cw.Write(record(it))
	}
	cw.Flush()
	return cw.Error()
}

func writeEvents(w io.Writer, format, head string, events []audit.Event) error {
	switch format {
	case "json":
		return writeJSONList(w, fmt.Sprintf("\"version\": %d,\n  \"head\": %q", render.JSONVersion, head), "events", events)
	case "csv":
		return writeCSV(w, []string{"time", "event", "requester", "beneficiary", "grants", "request", "commit", "pull_request", "actor", "approved_by", "until", "source", "detail"},
			events, func(ev audit.Event) []string {
				return []string{timeText(ev.Time), string(ev.Event), ev.Requester, ev.Beneficiary, grantsText(ev.Grants), ev.Request, ev.Commit,
					strconv.Itoa(ev.PullRequest), ev.Actor, strings.Join(ev.ApprovedBy, " "), timeText(ev.Until), ev.Source, ev.Detail}
			})
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tEVENT\tWHO\tGRANTS\tUNTIL\tPR\tCOMMIT\tBY\tREQUEST")
	for _, ev := range events {
		who := ev.Requester
		if ev.Beneficiary != ev.Requester {
			who += " for " + ev.Beneficiary
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", timeText(ev.Time), ev.Event, who, grantsText(ev.Grants), timeText(ev.Until),
			render.PRRef(ev.PullRequest), render.ShortSHA(ev.Commit), ev.Actor, ev.Request)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "%d events (main at %s)\n", len(events), render.ShortSHA(head))
	return err
}

func writeHoldings(w io.Writer, format, head string, at time.Time, hs []audit.Holding) error {
	switch format {
	case "json":
		return writeJSONList(w, fmt.Sprintf("\"version\": %d,\n  \"head\": %q,\n  \"at\": %q", render.JSONVersion, head, at.UTC().Format(time.RFC3339Nano)), "holdings", hs)
	case "csv":
		return writeCSV(w, []string{"requester", "beneficiary", "provider", "role", "from", "until", "request", "commit", "pull_request", "approved_by", "source"},
			hs, func(h audit.Holding) []string {
				return []string{h.Requester, h.Beneficiary, h.Provider, h.Role, timeText(h.From), timeText(h.Until), h.Request, h.Commit,
					strconv.Itoa(h.PullRequest), strings.Join(h.ApprovedBy, " "), h.Source}
			})
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "WHO\tPROVIDER\tROLE\tFROM\tUNTIL\tPR\tAPPROVED BY\tREQUEST")
	for _, h := range hs {
		who := h.Beneficiary
		if h.Beneficiary != h.Requester {
			who += " (requested by " + h.Requester + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", who, h.Provider, h.Role, timeText(h.From), timeText(h.Until), render.PRRef(h.PullRequest),
			strings.Join(h.ApprovedBy, ","), h.Request)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "%d held at %s (main at %s)\n", len(hs), timeText(at), render.ShortSHA(head))
	return err
}

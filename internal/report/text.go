package report

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/gitgrant/gitgrant/internal/render"
)

// WriteJSON writes the report as docs/report.md documents it.
func WriteJSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

func roleName(provider, role string) string {
	if provider == "" && role == "" {
		return "all"
	}
	return provider + "/" + role
}

// durationText is a duration in seconds, rounded for people: 42s, 17m,
// 3h05m, 2d4h.
func durationText(s *float64) string {
	if s == nil {
		return "-"
	}
	d := time.Duration(*s * float64(time.Second))
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%dh", int(d.Hours())/24, int(d.Hours())%24)
}

func statText(s Stat) string {
	if s.Count == 0 {
		return "-"
	}
	return fmt.Sprintf("%s / %s (%d)", durationText(s.P50), durationText(s.P90), s.Count)
}

func percent(v *float64) string {
	if v == nil {
		return "-"
	}
	return strconv.FormatFloat(*v*100, 'f', 1, 64) + "%"
}

func signedPercent(v *float64) string {
	if v == nil {
		return ""
	}
	return fmt.Sprintf("%+.1f pp", *v*100)
}

func signedDuration(v *float64) string {
	if v == nil {
		return ""
	}
	if *v < 0 {
		a := -*v
		return "-" + durationText(&a)
	}
	return "+" + durationText(v)
}

func day(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// printable replaces control characters (a terminal escape in a file name
// or a role) so that text from the repository cannot drive the terminal.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return '?'
		}
		return r
	}, s)
}

// WriteText writes the report for people at a terminal.
func WriteText(w io.Writer, r *Report) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	p := func(format string, a ...any) {
		for i, v := range a {
			if s, ok := v.(string); ok {
				a[i] = printable(s)
			}
		}
		fmt.Fprintf(tw, format, a...)
	}
	p("gitgrant report for %s to %s (main at %s)\n", day(r.Since), day(r.Until), render.ShortSHA(r.Head))
	if r.Provider != "" || r.Role != "" {
		p("only %s\n", roleFilter(r.Provider, r.Role))
	}
	p("\nTIME TO ACCESS (p50 / p90 (count))\nROLE\tGRANTED\tWRITTEN→APPROVED\tAPPROVED→MERGED\tMERGED→GRANTED\tWRITTEN→GRANTED\n")
	for _, l := range r.TimeToAccess {
		p("%s\t%d\t%s\t%s\t%s\t%s\n", roleName(l.Provider, l.Role), l.Granted, statText(l.WrittenToApproved), statText(l.ApprovedToMerged), statText(l.MergedToGranted), statText(l.WrittenToGranted))
	}
	p("\nPRIVILEGE REDUCTION\nROLE\tJIT HOURS\tGRANTS\tPEOPLE\tSTANDING HOURS\tSTANDING NOW\tJIT SHARE\n")
	for _, x := range r.Privilege {
		now := 0
		if n := len(x.Standing); n > 0 {
			now = x.Standing[n-1].Members
		}
		p("%s\t%.1f\t%d\t%d\t%.1f\t%d\t%s\n", roleName(x.Provider, x.Role), x.JITHours, x.JITGrants, x.JITPeople, x.StandingHours, now, percent(x.JITShare))
	}
	p("\nUSAGE\nROLE\tGRANTS\tUSED\tNOT SEEN\tUNKNOWN\tRATE\n")
	for _, u := range r.Usage {
		p("%s\t%d\t%d\t%d\t%d\t%s\n", roleName(u.Provider, u.Role), u.Grants, u.Used, u.NotSeen, u.Unknown, percent(u.Rate))
	}
	p("\nREFUSED AND UNAUTHORIZED\n")
	for _, k := range refusalKinds {
		p("%s\t%d\n", k, r.Refusals.Counts[k])
	}
	if len(r.Refusals.Items) > 0 {
		p("TIME\tKIND\tWHO\tGRANTS\tPR\tREQUEST\n")
		for _, x := range r.Refusals.Items {
			p("%s\t%s\t%s\t%s\t%s\t%s\n", day(x.Time), x.Kind, x.Requester, strings.Join(x.Grants, " "), render.PRRef(x.PullRequest), x.Request)
		}
	}
	p("\nAPPROVALS BY MONTH\nROLE\tMONTH\tMERGED\tGRANTED\tREFUSED\tRATE\tCHANGE\tTIME p50 / p90\tCHANGE\n")
	for _, a := range r.Approvals {
		p("%s\t%s\t%d\t%d\t%d\t%s\t%s\t%s\t%s\n", roleName(a.Provider, a.Role), a.Month, a.Merged, a.Granted, a.Refused, percent(a.Rate), signedPercent(a.RateChange), statText(a.Time), signedDuration(a.P50Change))
	}
	p("\nEMERGENCIES\n")
	if len(r.Emergencies) == 0 {
		p("none\n")
	} else {
		p("TIME\tWHO\tGRANTS\tGRANTED\tFOLLOW-UP\tREQUEST\n")
		for _, e := range r.Emergencies {
			p("%s\t%s\t%s\t%t\t%s\t%s\n", day(e.Time), e.Requester, strings.Join(e.Grants, " "), e.Granted, e.FollowUp, e.Request)
		}
	}
	return tw.Flush()
}

var refusalKinds = []string{RefusedUnreviewed, RefusedInvalid, RefusedAfterMerge, RefusedNotGranted, RefusedCommitTime, RefusedDriftRemove}

func roleFilter(provider, role string) string {
	switch {
	case provider != "" && role != "":
		return provider + "/" + role
	case provider != "":
		return "provider " + provider
	}
	return "role " + role
}

func num(v *float64) string {
	if v == nil {
		return ""
	}
	return strconv.FormatFloat(*v, 'f', -1, 64)
}

// WriteCSV writes the figures as one long table: section, provider,
// role, month, metric, value (docs/report.md).
func WriteCSV(w io.Writer, r *Report) error {
	cw := csv.NewWriter(w)
	row := func(section, provider, role, month, metric, value string) {
		cw.Write([]string{section, provider, role, month, metric, value})
	}
	row("section", "provider", "role", "month", "metric", "value")
	stat := func(section, provider, role, month, name string, s Stat) {
		row(section, provider, role, month, name+"_count", strconv.Itoa(s.Count))
		row(section, provider, role, month, name+"_p50_seconds", num(s.P50))
		row(section, provider, role, month, name+"_p90_seconds", num(s.P90))
	}
	for _, l := range r.TimeToAccess {
		row("time_to_access", l.Provider, l.Role, "", "granted", strconv.Itoa(l.Granted))
		stat("time_to_access", l.Provider, l.Role, "", "written_to_approved", l.WrittenToApproved)
		stat("time_to_access", l.Provider, l.Role, "", "approved_to_merged", l.ApprovedToMerged)
		stat("time_to_access", l.Provider, l.Role, "", "merged_to_granted", l.MergedToGranted)
		stat("time_to_access", l.Provider, l.Role, "", "written_to_granted", l.WrittenToGranted)
	}
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	for _, x := range r.Privilege {
		row("privilege", x.Provider, x.Role, "", "jit_hours", f(x.JITHours))
		row("privilege", x.Provider, x.Role, "", "jit_grants", strconv.Itoa(x.JITGrants))
		row("privilege", x.Provider, x.Role, "", "jit_people", strconv.Itoa(x.JITPeople))
		row("privilege", x.Provider, x.Role, "", "standing_hours", f(x.StandingHours))
		row("privilege", x.Provider, x.Role, "", "jit_share", num(x.JITShare))
		for _, s := range x.Standing {
			row("standing", x.Provider, x.Role, day(s.At), "members", strconv.Itoa(s.Members))
		}
	}
	for _, u := range r.Usage {
		row("usage", u.Provider, u.Role, "", "grants", strconv.Itoa(u.Grants))
		row("usage", u.Provider, u.Role, "", "used", strconv.Itoa(u.Used))
		row("usage", u.Provider, u.Role, "", "not_seen", strconv.Itoa(u.NotSeen))
		row("usage", u.Provider, u.Role, "", "unknown", strconv.Itoa(u.Unknown))
		row("usage", u.Provider, u.Role, "", "rate", num(u.Rate))
	}
	for _, k := range refusalKinds {
		row("refusals", r.Provider, r.Role, "", k, strconv.Itoa(r.Refusals.Counts[k]))
	}
	for _, a := range r.Approvals {
		row("approvals", a.Provider, a.Role, a.Month, "merged", strconv.Itoa(a.Merged))
		row("approvals", a.Provider, a.Role, a.Month, "granted", strconv.Itoa(a.Granted))
		row("approvals", a.Provider, a.Role, a.Month, "refused", strconv.Itoa(a.Refused))
		row("approvals", a.Provider, a.Role, a.Month, "rate", num(a.Rate))
		row("approvals", a.Provider, a.Role, a.Month, "rate_change", num(a.RateChange))
		stat("approvals", a.Provider, a.Role, a.Month, "time", a.Time)
		row("approvals", a.Provider, a.Role, a.Month, "p50_change_seconds", num(a.P50Change))
	}
	for _, e := range r.Emergencies {
		row("emergency", "", "", day(e.Time), e.Request, e.FollowUp)
	}
	cw.Flush()
	return cw.Error()
}

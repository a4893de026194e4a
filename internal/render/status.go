package render

import (
	"fmt"
	"io"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/gitgrant/gitgrant"
)

// StatusGrant is one row of `gitgrant status`.
type StatusGrant struct {
	Status    gitgrant.Status `json:"status"`
	Path      string          `json:"path"`
	Requester string          `json:"requester"`
	Provider  string          `json:"provider"`
	Role      string          `json:"role"`
	Principal string          `json:"principal"`
	Start     time.Time       `json:"start"`
	End       time.Time       `json:"end"`
	// StartsIn (pending) and Remaining (active) are whole seconds.
	StartsIn  int64 `json:"starts_in_seconds,omitempty"`
	Remaining int64 `json:"remaining_seconds"`
	Emergency bool  `json:"emergency,omitempty"`
}

// Status is `gitgrant status --output json`: the grants gitgrant intends
// now and next, from the requests alone (no provider is asked).
type Status struct {
	Version    int           `json:"version"`
	At         time.Time     `json:"at"`
	Grants     []StatusGrant `json:"grants"`
	NextChange time.Time     `json:"next_change,omitzero"`
	// Unverified counts requests whose approval could not be checked
	// (no GitHub credentials or GitHub unreachable); they are not listed.
	Unverified int `json:"unverified"`
}

// StatusOf lists the grants of active and pending requests, the ones
// ending first at the top.
func StatusOf(plan gitgrant.Plan, now time.Time) Status {
	doc := Status{Version: JSONVersion, At: now.UTC(), Grants: []StatusGrant{}, NextChange: plan.NextChange}
	for _, en := range plan.Entries {
		switch en.Status {
		case gitgrant.StatusActive, gitgrant.StatusPending:
		case gitgrant.StatusUnverified:
			doc.Unverified++
			continue
		default:
			continue
		}
		for _, g := range en.Grants {
			row := StatusGrant{Status: en.Status, Path: en.Path, Requester: en.Requester, Provider: g.Provider, Role: g.Role,
				Principal: g.Principal, Start: g.Window.Start.UTC(), End: g.Window.End.UTC(), Emergency: en.Emergency,
				Remaining: int64(g.Window.End.Sub(now) / time.Second)}
			if en.Status == gitgrant.StatusPending {
				row.StartsIn = int64(g.Window.Start.Sub(now) / time.Second)
			}
			doc.Grants = append(doc.Grants, row)
		}
	}
	sort.SliceStable(doc.Grants, func(i, j int) bool {
		a, b := doc.Grants[i], doc.Grants[j]
		if a.Status != b.Status {
			return a.Status == gitgrant.StatusActive
		}
		if !a.End.Equal(b.End) {
			return a.End.Before(b.End)
		}
		return a.Path < b.Path
	})
	return doc
}

// StatusText writes the status as a table for people.
func StatusText(w io.Writer, doc Status) error {
	if len(doc.Grants) == 0 {
		fmt.Fprintln(w, "No active or upcoming grants.")
	} else {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "STATUS\tPROVIDER/ROLE\tPRINCIPAL\tREQUESTER\tWHEN\tREQUEST")
		for _, g := range doc.Grants {
			when := fmt.Sprintf("%s left (until %s)", HumanDuration(time.Duration(g.Remaining)*time.Second), g.End.Format(time.RFC3339))
			if g.Status == gitgrant.StatusPending {
				when = fmt.Sprintf("starts in %s (%s), ends %s", HumanDuration(time.Duration(g.StartsIn)*time.Second), g.Start.Format(time.RFC3339), g.End.Format(time.RFC3339))
			}
			status := string(g.Status)
			if g.Emergency {
				status += " (emergency)"
			}
			fmt.Fprintf(tw, "%s\t%s/%s\t%s\t%s\t%s\t%s\n", status, g.Provider, g.Role, g.Principal, g.Requester, when, g.Path)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if doc.Unverified > 0 {
		fmt.Fprintf(w, "\n%d request(s) unverified: approvals cannot be checked without GitHub credentials.\n", doc.Unverified)
	}
	if !doc.NextChange.IsZero() {
		fmt.Fprintf(w, "\nNext change: %s (in %s).\n", doc.NextChange.UTC().Format(time.RFC3339), HumanDuration(doc.NextChange.Sub(doc.At)))
	}
	return nil
}

// HumanDuration prints a duration to the minute, or to the second when
// under a minute: 3d4h, 2h5m, 45s.
func HumanDuration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	if d < time.Minute {
		return fmt.Sprintf("%ds", int(d/time.Second))
	}
	d = d.Truncate(time.Minute)
	days, hours, mins := int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour), int(d%time.Hour/time.Minute)
	switch {
	case days > 0 && hours > 0:
		return fmt.Sprintf("%dd%dh", days, hours)
	case days > 0:
		return fmt.Sprintf("%dd", days)
	case hours > 0:
		return fmt.Sprintf("%dh%dm", hours, mins)
	}
	return fmt.Sprintf("%dm", mins)
}

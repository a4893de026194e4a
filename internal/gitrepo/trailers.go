// Trailers of cleanup commits: written by CleanupMessage, read back by
// ParseCleanupTrailers for the audit trail (docs/audit.md).

package gitrepo

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gitgrant/gitgrant"
)

// Trailer keys of cleanup commits. One commit removes several requests;
// each request's trailers start with Gitgrant-Request (docs/audit.md).
const (
	TrailerRequest     = "Gitgrant-Request"
	TrailerRequester   = "Gitgrant-Requester"
	TrailerGrant       = "Gitgrant-Grant"
	TrailerApprovedBy  = "Gitgrant-Approved-By"
	TrailerGrantedAt   = "Gitgrant-Granted-At"
	TrailerExpiredAt   = "Gitgrant-Expired-At"
	TrailerRevokedAt   = "Gitgrant-Revoked-At"
	TrailerPullRequest = "Gitgrant-Pull-Request"
)

// CleanupMessage is the message of a cleanup commit: a subject, one line
// per request for people, and one trailer block per request for tools.
func CleanupMessage(removals []Removal) string {
	var b strings.Builder
	noun := "requests"
	if len(removals) == 1 {
		noun = "request"
	}
	fmt.Fprintf(&b, "gitgrant: remove %d expired or revoked %s\n\n", len(removals), noun)
	for _, rm := range removals {
		fmt.Fprintf(&b, "- %s (%s, %s)\n", trailerValue(rm.Path), trailerValue(rm.Requester), trailerValue(strings.Join(gitgrant.GrantNames(rm.Grants), ", ")))
	}
	b.WriteString("\n")
	for _, rm := range removals {
		fmt.Fprintf(&b, "%s: %s\n", TrailerRequest, trailerValue(rm.Path))
		fmt.Fprintf(&b, "%s: %s\n", TrailerRequester, trailerValue(rm.Requester))
		for _, g := range rm.Grants {
			fmt.Fprintf(&b, "%s: %s\n", TrailerGrant, trailerValue(g.Name()))
		}
		for _, a := range rm.ApprovedBy {
			fmt.Fprintf(&b, "%s: %s\n", TrailerApprovedBy, trailerValue(a))
		}
		for _, t := range []struct {
			key string
			at  time.Time
		}{{TrailerGrantedAt, rm.GrantedAt}, {TrailerExpiredAt, rm.ExpiredAt}, {TrailerRevokedAt, rm.RevokedAt}} {
			if !t.at.IsZero() {
				fmt.Fprintf(&b, "%s: %s\n", t.key, t.at.UTC().Format(time.RFC3339))
			}
		}
		if rm.PullRequest > 0 {
			fmt.Fprintf(&b, "%s: %d\n", TrailerPullRequest, rm.PullRequest)
		}
	}
	return b.String()
}

// trailerValue writes a value that came from a request file (its path
// above all: git allows newlines in file names) so that it stays one
// trailer: as it is when it is plain, else as a Go-quoted string, which
// ParseCleanupTrailers unquotes. Without quoting, a file named
// "x.yaml\nGitgrant-Approved-By: mallory" would write a trailer of its own.
func trailerValue(s string) string {
	if s != strings.TrimSpace(s) || strings.HasPrefix(s, `"`) || !utf8.ValidString(s) {
		return strconv.Quote(s)
	}
	for _, r := range s {
		if !strconv.IsPrint(r) {
			return strconv.Quote(s)
		}
	}
	return s
}

// readTrailerValue is the inverse of trailerValue. A value that starts
// with a quote but does not unquote was written unquoted, by a gitgrant
// that did not quote yet.
func readTrailerValue(s string) string {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, `"`) {
		if u, err := strconv.Unquote(s); err == nil {
			return u
		}
	}
	return s
}

// ParseCleanupTrailers reads the per-request trailer blocks of a cleanup
// commit message, the inverse of CleanupMessage. Messages without
// Gitgrant-Request trailers yield nothing; unknown keys are ignored.
func ParseCleanupTrailers(message string) []Removal {
	paragraphs := strings.Split(strings.TrimRight(message, "\n"), "\n\n")
	last := paragraphs[len(paragraphs)-1]
	var out []Removal
	var cur *Removal
	for _, line := range strings.Split(last, "\n") {
		key, value, ok := strings.Cut(line, ": ")
		if !ok {
			continue
		}
		value = readTrailerValue(value)
		if key == TrailerRequest {
			out = append(out, Removal{Path: value})
			cur = &out[len(out)-1]
			continue
		}
		if cur == nil {
			continue
		}
		switch key {
		case TrailerRequester:
			cur.Requester = value
		case TrailerGrant:
			p, role, _ := strings.Cut(value, "/")
			cur.Grants = append(cur.Grants, gitgrant.GrantRef{Provider: p, Role: role})
		case TrailerApprovedBy:
			cur.ApprovedBy = append(cur.ApprovedBy, value)
		case TrailerGrantedAt:
			cur.GrantedAt, _ = time.Parse(time.RFC3339, value)
		case TrailerExpiredAt:
			cur.ExpiredAt, _ = time.Parse(time.RFC3339, value)
		case TrailerRevokedAt:
			cur.RevokedAt, _ = time.Parse(time.RFC3339, value)
		case TrailerPullRequest:
			fmt.Sscan(value, &cur.PullRequest)
		}
	}
	return out
}

package render

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/gitgrant/gitgrant"
)

// AccessChange is one grant or revocation gitgrant made for a request, as
// its pull request is told.
type AccessChange struct {
	Op                        gitgrant.Op
	Provider, Role, Principal string
	// At is when a revocation was made; Until when a grant ends.
	At, Until time.Time
	Cause     gitgrant.Cause
}

// causeText says why, for a person.
var causeText = map[gitgrant.Cause]string{
	gitgrant.CauseExpired:   "its window ended",
	gitgrant.CauseWithdrawn: "the request file left main or changed",
	gitgrant.CauseRejected:  "the request no longer qualifies",
	gitgrant.CausePolicy:    "the verified policy no longer grants it",
}

// AccessComment writes the comment that tells a request's pull request
// what gitgrant did for path. Every piece of user text is escaped.
func AccessComment(w io.Writer, path string, changes []AccessChange) error {
	var b strings.Builder
	fmt.Fprintf(&b, "gitgrant: %s\n\n", CodeSpan(path))
	for _, c := range changes {
		fmt.Fprintf(&b, "- %s %s for %s", c.Op.Past(), CodeSpan(c.Provider+"/"+c.Role), CodeSpan(c.Principal))
		switch c.Op {
		case gitgrant.OpGrant:
			fmt.Fprintf(&b, " until %s", c.Until.UTC().Format(time.RFC3339))
		default:
			fmt.Fprintf(&b, " at %s", c.At.UTC().Format(time.RFC3339))
			if why := causeText[c.Cause]; why != "" {
				fmt.Fprintf(&b, ": %s", why)
			}
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

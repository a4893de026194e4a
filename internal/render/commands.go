package render

import (
	"fmt"
	"io"
	"strings"

	"github.com/gitgrant/gitgrant"
)

// Trust is the documented shape of `gitgrant trust --output json`
// (docs/formats.md).
type Trust struct {
	Version int `json:"version"`
	// Root is the trust root in effect: "first", a commit, or "" (none).
	Root string `json:"root"`
	*gitgrant.PolicyInForce
}

// TrustText writes which policy is in force, and the changes that are
// not, for people.
func TrustText(w io.Writer, doc Trust) {
	if doc.Error != "" {
		fmt.Fprintf(w, "No verified policy: %s\n", doc.Error)
		return
	}
	fmt.Fprintf(w, "Policy in force: %s (%s)\n", doc.Commit, doc.How)
	if doc.ConfigCommit != "" {
		fmt.Fprintf(w, "gitgrant.yaml in force: %s (%s)\n", doc.ConfigCommit, strings.Join(doc.Problems, "; "))
	}
	if len(doc.Unverified) == 0 {
		fmt.Fprintln(w, "Every policy change on main is verified.")
		return
	}
	fmt.Fprintf(w, "\nNot in force (newest first):\n")
	for _, u := range doc.Unverified {
		fmt.Fprintf(w, "  %s  %s\n", u.Commit, strings.Join(u.Files, ", "))
		for _, r := range u.Reasons {
			fmt.Fprintf(w, "      %s\n", r)
		}
	}
}

// ProviderCheck is one provider's line of `gitgrant providers check`.
type ProviderCheck struct {
	Name  string `json:"name"`
	Type  string `json:"type"`
	OK    bool   `json:"ok"`
	Roles int    `json:"roles"`
	Error string `json:"error,omitempty"`
}

// ProvidersCheck is the documented shape of `gitgrant providers check
// --output json` (docs/formats.md).
type ProvidersCheck struct {
	Version   int             `json:"version"`
	OK        bool            `json:"ok"`
	Providers []ProviderCheck `json:"providers"`
}

// ProviderChecks writes the results of `gitgrant providers check` in
// format; ok says whether every provider answered.
func ProviderChecks(w io.Writer, format Format, results []ProviderCheck, ok bool) error {
	if format == JSON {
		if results == nil {
			results = []ProviderCheck{}
		}
		return WriteJSON(w, ProvidersCheck{Version: JSONVersion, OK: ok, Providers: results})
	}
	if len(results) == 0 {
		_, err := fmt.Fprintln(w, "no providers are declared in gitgrant.yaml")
		return err
	}
	for _, r := range results {
		var err error
		if r.OK {
			roles := "roles"
			if r.Roles == 1 {
				roles = "role"
			}
			_, err = fmt.Fprintf(w, "ok    %s (%s): reachable, %d %s checked\n", r.Name, r.Type, r.Roles, roles)
		} else {
			// Joined errors span lines; indent them under their provider.
			msg := strings.ReplaceAll(r.Error, "\n", "\n        ")
			_, err = fmt.Fprintf(w, "FAIL  %s (%s): %s\n", r.Name, r.Type, msg)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

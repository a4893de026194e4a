// Package render owns how gitgrant's results look: plain text for a
// terminal, a documented JSON shape for scripts, and GitHub Actions workflow
// commands and job summaries. Commands build results; render writes them.
package render

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/gitgrant/gitgrant"
)

// Format is an --output value.
type Format string

const (
	Text   Format = "text"
	JSON   Format = "json"
	GitHub Format = "github"
)

// ParseFormat checks an --output value; auto selects GitHub under Actions.
func ParseFormat(s string, githubActions bool) (Format, error) {
	switch Format(s) {
	case "":
		if githubActions {
			return GitHub, nil
		}
		return Text, nil
	case Text, JSON, GitHub:
		return Format(s), nil
	}
	return "", fmt.Errorf("unknown output format %q: use text, json or github", s)
}

// JSONVersion is the version of every JSON document gitgrant prints.
// Fields are only ever added within a version; a removal or change of
// meaning bumps it.
const JSONVersion = 1

// WriteJSON writes v indented, with a trailing newline.
func WriteJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// TextDiagnostics writes one line per diagnostic, in the file:line:col
// form editors and terminals link.
func TextDiagnostics(w io.Writer, ds gitgrant.Diagnostics) error {
	for _, d := range ds {
		if _, err := fmt.Fprintln(w, d.String()); err != nil {
			return err
		}
	}
	return nil
}

// GitHubAnnotations writes one workflow command per diagnostic, which
// GitHub shows on the pull request's diff at the file and line.
func GitHubAnnotations(w io.Writer, ds gitgrant.Diagnostics) error {
	for _, d := range ds {
		level := "error"
		if d.Severity == gitgrant.SeverityWarning {
			level = "warning"
		}
		props := []string{"file=" + escapeProperty(d.File)}
		if d.Line > 0 {
			props = append(props, fmt.Sprintf("line=%d", d.Line))
		}
		if d.Column > 0 {
			props = append(props, fmt.Sprintf("col=%d", d.Column))
		}
		title := "gitgrant"
		if d.Field != "" {
			title += ": " + d.Field
		}
		props = append(props, "title="+escapeProperty(title))
		msg := d.Message
		if d.Hint != "" {
			msg += "\n" + d.Hint
		}
		if _, err := fmt.Fprintf(w, "::%s %s::%s\n", level, strings.Join(props, ","), escapeData(msg)); err != nil {
			return err
		}
	}
	return nil
}

// escapeData and escapeProperty follow the workflow-command encoding of
// the Actions toolkit: % and newlines always, and : and , in properties.
func escapeData(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(s)
}

func escapeProperty(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C").Replace(s)
}

// MarkdownDiagnostics writes a table for a job summary or a PR comment.
func MarkdownDiagnostics(w io.Writer, ds gitgrant.Diagnostics) error {
	if len(ds) == 0 {
		_, err := fmt.Fprintln(w, "No problems found.")
		return err
	}
	var b strings.Builder
	b.WriteString("| | Where | Field | Problem | Fix |\n|---|---|---|---|---|\n")
	for _, d := range ds {
		icon := "❌"
		if d.Severity == gitgrant.SeverityWarning {
			icon = "⚠️"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", icon, codeCell(d.Position.String()), MarkdownText(d.Field), MarkdownText(d.Message), MarkdownText(d.Hint))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

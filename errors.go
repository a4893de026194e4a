package gitgrant

import (
	"fmt"
	"sort"
	"strings"
)

// Position is a place in a file; Line and Column are 1-based, zero when the
// problem concerns the file as a whole.
type Position struct {
	File   string `json:"file"`
	Line   int    `json:"line,omitempty"`
	Column int    `json:"column,omitempty"`
}

func (p Position) String() string {
	switch {
	case p.Line == 0:
		return p.File
	case p.Column == 0:
		return fmt.Sprintf("%s:%d", p.File, p.Line)
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Column)
}

// Severity orders diagnostics; only errors fail validation.
type Severity string

const (
	SeverityError   Severity = "error"
	SeverityWarning Severity = "warning"
)

// Diagnostic is one finding about one place in one file, written for the
// person who has to fix it: what is wrong and what to do.
type Diagnostic struct {
	Position
	Severity Severity `json:"severity"`
	// Field is the dotted path of the offending key, such as "grants.0.role";
	// empty for problems with the file itself.
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
	// Hint says how to fix it, when there is something useful to say.
	Hint string `json:"hint,omitempty"`
}

func (d Diagnostic) String() string {
	var b strings.Builder
	b.WriteString(d.Position.String())
	b.WriteString(": ")
	if d.Severity == SeverityWarning {
		b.WriteString("warning: ")
	}
	if d.Field != "" {
		b.WriteString(d.Field)
		b.WriteString(": ")
	}
	b.WriteString(d.Message)
	if d.Hint != "" {
		b.WriteString(" (")
		b.WriteString(d.Hint)
		b.WriteString(")")
	}
	return b.String()
}

// Diagnostics is a list of findings; as an error it reports every one.
type Diagnostics []Diagnostic

func (ds Diagnostics) Error() string {
	lines := make([]string, len(ds))
	for i, d := range ds {
		lines[i] = d.String()
	}
	return strings.Join(lines, "\n")
}

// HasErrors reports whether any diagnostic is an error (not a warning).
func (ds Diagnostics) HasErrors() bool {
	for _, d := range ds {
		if d.Severity != SeverityWarning {
			return true
		}
	}
	return false
}

// Err returns ds as an error when it holds errors, else nil.
func (ds Diagnostics) Err() error {
	if ds.HasErrors() {
		return ds
	}
	return nil
}

// Sort orders diagnostics by file, line, column and message, so that output
// is stable whatever order checks ran in.
func (ds Diagnostics) Sort() {
	sort.SliceStable(ds, func(i, j int) bool {
		a, b := ds[i], ds[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		if a.Column != b.Column {
			return a.Column < b.Column
		}
		return a.Message < b.Message
	})
}

// ExitCode values shared by every command.
const (
	ExitOK      = 0
	ExitInvalid = 1 // invalid input or a policy violation
	ExitUsage   = 2 // the command line itself is wrong
	ExitSystem  = 3 // a failure talking to a system (git, GitHub, a provider)
)

// SystemError marks a failure to talk to an outside system, as opposed to
// bad input; commands exit with ExitSystem for it. Retryable says whether
// the same call may succeed later without anyone changing anything.
type SystemError struct {
	System    string
	Op        string
	Err       error
	Retryable bool
}

func (e *SystemError) Error() string {
	return fmt.Sprintf("%s: %s: %v", e.System, e.Op, e.Err)
}

func (e *SystemError) Unwrap() error { return e.Err }

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/providers"
	"github.com/gitgrant/gitgrant/providers/all"
	"github.com/gitgrant/gitgrant/schema"
)

// env is what a command may touch of the outside world, so that tests run
// commands in-process with their own streams, variables and clock.
type env struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
	// clk is the one clock of the command; nil is the wall clock.
	clk gitgrant.Clock
	// providers opens the providers gitgrant.yaml names; nil is every
	// type of this build (the demo swaps in its in-memory database).
	providers providers.Registry
}

func (e *env) clock() gitgrant.Clock { return gitgrant.ClockOr(e.clk) }

func (e *env) registry() providers.Registry {
	if e.providers != nil {
		return e.providers
	}
	return all.Registry()
}

func (e *env) now() time.Time { return e.clock().Now() }

// command is one subcommand.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, e *env) error
}

func commands() []command {
	return []command{
		{"demo", "see gitgrant work end to end, on this machine, without credentials", runDemo},
		{"init", "write a new access repository: gitgrant.yaml, CODEOWNERS, workflows, README", runInit},
		{"validate", "check request files and gitgrant.yaml against the schemas and policy", runValidate},
		{"request", "write a new request file", runRequest},
		{"plan", "dry run: show the grants and revocations reconcile would make", runPlan},
		{"reconcile", "one pass: verify approvals, grant, revoke, clean up expired files", runReconcile},
		{"serve", "long-running reconciler: webhooks, timers, resync, /metrics and health endpoints", runServe},
		{"status", "active and upcoming grants with the time left", runStatus},
		{"schema", "print the JSON Schema of a file format", runSchema},
		{"providers", "check connectivity and permissions of every configured provider", runProviders},
		{"audit", "rebuild who had what access, when, approved by whom, from git alone", runAudit},
		{"report", "measure just-in-time access: time to access, privilege reduction, refusals, approvals", runReport},
		{"trust", "which gitgrant.yaml and CODEOWNERS are in force; record the trust root", runTrust},
		{"credentials", "decrypt the login gitgrant made for your request (ephemeral roles)", runCredentials},
		{"version", "print gitgrant's version", runVersion},
	}
}

// Errors that decide the exit code. Anything else is treated as a failure
// talking to a system (exit 3), the safe reading of an unknown failure.
var (
	errInvalid = errors.New("invalid input") // diagnostics were already printed
	errHelp    = flag.ErrHelp
)

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// run executes one command line and returns the process exit code.
func run(ctx context.Context, args []string, e *env) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		if len(args) == 2 && args[0] == "help" {
			return run(ctx, []string{args[1], "--help"}, e)
		}
		printUsage(e.stdout)
		if len(args) == 0 {
			return gitgrant.ExitUsage
		}
		return gitgrant.ExitOK
	}
	if args[0] == "--version" {
		args = []string{"version"}
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return exitCode(c.run(ctx, args[1:], e), e)
		}
	}
	fmt.Fprintf(e.stderr, "gitgrant: unknown command %q%s\nRun 'gitgrant --help' for the list.\n", args[0], closest(args[0]))
	return gitgrant.ExitUsage
}

// closest suggests the command a mistyped name most likely meant: one it
// starts (or is started by), else one within two edits.
func closest(name string) string {
	best, bestDist := "", 3
	for _, c := range commands() {
		if len(name) >= 2 && (strings.HasPrefix(c.name, name) || strings.HasPrefix(name, c.name)) {
			return fmt.Sprintf(" (did you mean %q?)", c.name)
		}
		if d := schema.EditDistance(strings.ToLower(name), c.name); d < bestDist {
			best, bestDist = c.name, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func exitCode(err error, e *env) int {
	var usage usageError
	var sys *gitgrant.SystemError
	switch {
	case err == nil:
		return gitgrant.ExitOK
	case errors.Is(err, errHelp):
		return gitgrant.ExitOK
	case errors.As(err, &usage):
		fmt.Fprintf(e.stderr, "gitgrant: %s\n", usage.msg)
		return gitgrant.ExitUsage
	case errors.Is(err, errInvalid):
		return gitgrant.ExitInvalid
	case errors.As(err, &sys):
		fmt.Fprintf(e.stderr, "gitgrant: %s\n", strings.TrimPrefix(err.Error(), "gitgrant: "))
		return gitgrant.ExitSystem
	}
	var diags gitgrant.Diagnostics
	if errors.As(err, &diags) {
		fmt.Fprintln(e.stderr, diags.Error())
		return gitgrant.ExitInvalid
	}
	fmt.Fprintf(e.stderr, "gitgrant: %s\n", strings.TrimPrefix(err.Error(), "gitgrant: "))
	return gitgrant.ExitSystem
}

func printUsage(w io.Writer) {
	fmt.Fprint(w, `gitgrant: just-in-time access through pull requests.
People open pull requests that add request files under requests/<provider>/;
code owners approve; gitgrant grants the access, revokes it at expiry, and
records every step in git.

Usage:
  gitgrant <command> [flags]

Commands:
`)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
Run 'gitgrant <command> --help' for a command's flags.
Exit codes: 0 fine, 1 invalid input or policy violation, 2 usage error,
3 a failure talking to a system.
`)
}

// flagSet is a FlagSet whose errors become usage errors (exit 2) and whose
// --help prints the command's synopsis and flags to stdout.
type flagSet struct {
	*flag.FlagSet
	help func()
}

func newFlags(name, synopsis, description string, e *env) *flagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {} // the flag package calls it on every error; help is printed only when asked
	help := func() {
		fmt.Fprintf(e.stdout, "Usage: gitgrant %s %s\n\n%s\n", name, synopsis, strings.TrimSpace(description))
		hasFlags := false
		fs.VisitAll(func(*flag.Flag) { hasFlags = true })
		if hasFlags {
			fmt.Fprintln(e.stdout, "\nFlags:")
			fs.SetOutput(e.stdout)
			fs.PrintDefaults()
			fs.SetOutput(io.Discard)
		}
	}
	return &flagSet{FlagSet: fs, help: help}
}

// parseFlags parses args, turning flag errors into usage errors. Flags may
// follow positional arguments, as people type them.
func parseFlags(fs *flagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fs.help()
				return nil, errHelp
			}
			return nil, usagef("%s: %v (see 'gitgrant %s --help')", fs.Name(), err, fs.Name())
		}
		args = fs.Args()
		if len(args) == 0 {
			return positional, nil
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
}

// parseFlagsOnly is parseFlags for a command that takes no positional
// argument: one is a usage error.
func parseFlagsOnly(fs *flagSet, args []string) error {
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usagef("%s: unexpected argument %q (see 'gitgrant %s --help')", fs.Name(), rest[0], fs.Name())
	}
	return nil
}

// checkOutput refuses an --output that is none of formats.
func checkOutput(cmd, output string, formats ...string) error {
	if slices.Contains(formats, output) {
		return nil
	}
	return usagef("%s: unknown output format %q: use %s or %s", cmd, output, strings.Join(formats[:len(formats)-1], ", "), formats[len(formats)-1])
}

// parseTime reads RFC 3339, a bare date (midnight UTC) or "now".
func parseTime(s string, now time.Time) (time.Time, error) {
	switch s {
	case "":
		return time.Time{}, nil
	case "now":
		return now, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q is not a time: use RFC 3339 (2026-11-22T09:00:00Z) or a date (2026-11-22)", s)
}

// timeFlag is a flag that takes a time: its name, the value given and
// where the time goes.
type timeFlag struct {
	name, value string
	dst         *time.Time
}

// parseTimeFlags reads each flag's value as parseTime does ("" leaves
// the zero time); a bad one is a usage error naming cmd and the flag.
func parseTimeFlags(cmd string, now time.Time, flags ...timeFlag) error {
	for _, f := range flags {
		var err error
		if *f.dst, err = parseTime(f.value, now); err != nil {
			return usagef("%s: --%s: %v", cmd, f.name, err)
		}
	}
	return nil
}

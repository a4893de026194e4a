// Package codeowners owns reading a GitHub CODEOWNERS file: choosing it the
// way GitHub does, parsing it line by line (a bad line is skipped and
// reported, never fatal), and answering who owns a path (the last matching
// pattern wins).
//
// It is written here rather than taken from a library because a security
// decision rests on it: one bad line must not void the whole file, and the
// file must be chosen in GitHub's order (.github/, root, docs/).
package codeowners

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"strings"
)

// Locations are where GitHub looks for CODEOWNERS, in its order: the first
// file that exists is the only one used.
var Locations = []string{".github/CODEOWNERS", "CODEOWNERS", "docs/CODEOWNERS"}

// MaxSize is GitHub's limit: a larger CODEOWNERS file is not loaded at all.
const MaxSize = 3 << 20

// OwnerKind tells the three kinds of owner apart.
type OwnerKind int

const (
	User  OwnerKind = iota + 1 // @login
	Team                       // @org/team
	Email                      // user@example.com
)

// Owner is one owner of a rule, without its "@".
type Owner struct {
	Kind OwnerKind
	// Name is the login, "org/team" or the email address.
	Name string
}

// String renders the owner as written in CODEOWNERS.
func (o Owner) String() string {
	if o.Kind == Email {
		return o.Name
	}
	return "@" + o.Name
}

// Rule is one valid line: a pattern and its owners (possibly none, which
// makes matching paths unowned).
type Rule struct {
	Line    int
	Pattern string
	Owners  []Owner
	re      *regexp.Regexp
}

// Problem is a line (or part of one) that was skipped, with the reason.
type Problem struct {
	Line    int
	Message string
}

func (p Problem) String() string { return fmt.Sprintf("line %d: %s", p.Line, p.Message) }

// File is a parsed CODEOWNERS file.
type File struct {
	// Path is where the file was found, such as ".github/CODEOWNERS".
	Path     string
	Rules    []Rule
	Problems []Problem
}

// Parse reads CODEOWNERS content. It never fails: every line it cannot use
// is left out and listed in Problems. An owner token that is not a valid
// user, team or email is dropped from its rule (the rule still applies with
// the remaining owners, so a typo never hands the path back to an earlier,
// broader rule).
func Parse(path string, data []byte) *File {
	f := &File{Path: path}
	if len(data) > MaxSize {
		f.Problems = append(f.Problems, Problem{Line: 0, Message: fmt.Sprintf("file is larger than GitHub's %d byte limit; GitHub ignores it, and so does gitgrant", MaxSize)})
		return f
	}
	for i, line := range strings.Split(string(data), "\n") {
		n := i + 1
		line = strings.TrimSuffix(line, "\r")
		fields, err := splitFields(line)
		if err != nil {
			f.Problems = append(f.Problems, Problem{n, err.Error()})
			continue
		}
		if len(fields) == 0 {
			continue
		}
		re, err := compile(fields[0])
		if err != nil {
			f.Problems = append(f.Problems, Problem{n, fmt.Sprintf("pattern %q: %v; line skipped", fields[0], err)})
			continue
		}
		r := Rule{Line: n, Pattern: fields[0], re: re}
		for _, tok := range fields[1:] {
			o, err := parseOwner(tok)
			if err != nil {
				f.Problems = append(f.Problems, Problem{n, fmt.Sprintf("owner %q: %v; owner ignored", tok, err)})
				continue
			}
			r.Owners = append(r.Owners, o)
		}
		f.Rules = append(f.Rules, r)
	}
	return f
}

// splitFields splits a line on unescaped whitespace and drops a comment
// ("#" at the start of a field).
func splitFields(line string) ([]string, error) {
	var fields []string
	var cur strings.Builder
	inField := false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '\\':
			if i+1 >= len(line) {
				return nil, errors.New("line ends with a backslash; line skipped")
			}
			cur.WriteByte(c)
			cur.WriteByte(line[i+1])
			i++
			inField = true
		case c == ' ' || c == '\t':
			if inField {
				fields = append(fields, cur.String())
				cur.Reset()
				inField = false
			}
		case c == '#' && !inField:
			return appendField(fields, &cur, inField), nil
		default:
			cur.WriteByte(c)
			inField = true
		}
	}
	return appendField(fields, &cur, inField), nil
}

func appendField(fields []string, cur *strings.Builder, inField bool) []string {
	if inField {
		fields = append(fields, cur.String())
	}
	return fields
}

var (
	loginRE = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9]|-[A-Za-z0-9]){0,38}$`)
	teamRE  = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9]|-[A-Za-z0-9]){0,38}/[A-Za-z0-9._-]+$`)
	emailRE = regexp.MustCompile(`^[^@\s]+@[^@\s]+\.[^@\s]+$`)
)

func parseOwner(tok string) (Owner, error) {
	switch {
	case strings.HasPrefix(tok, "@"):
		name := tok[1:]
		if loginRE.MatchString(name) {
			return Owner{User, name}, nil
		}
		if teamRE.MatchString(name) {
			return Owner{Team, name}, nil
		}
		return Owner{}, errors.New("not a valid @user or @org/team")
	case emailRE.MatchString(tok):
		return Owner{Email, tok}, nil
	}
	return Owner{}, errors.New("an owner is @user, @org/team or an email address")
}

// compile turns a gitignore-style pattern into an anchored regular
// expression over slash-separated repository paths.
func compile(pattern string) (*regexp.Regexp, error) {
	switch {
	case strings.HasPrefix(pattern, "!"):
		return nil, errors.New("negation (!) is not supported by CODEOWNERS")
	case hasUnescapedBracket(pattern):
		// GitHub reports such a line as an error; "\[" is a literal bracket.
		return nil, errors.New(`character ranges ([ ]) are not supported by CODEOWNERS; escape a literal bracket as \[ or \]`)
	case strings.HasPrefix(pattern, `\#`):
		return nil, errors.New(`escaping "#" is not supported by CODEOWNERS`)
	}
	p := pattern
	anchored := strings.HasPrefix(p, "/")
	p = strings.TrimPrefix(p, "/")
	dirOnly := strings.HasSuffix(p, "/")
	p = strings.TrimSuffix(p, "/")
	if p == "" {
		if anchored {
			return nil, errors.New(`"/" alone matches nothing`)
		}
		return nil, errors.New("empty pattern")
	}
	// As in gitignore, a slash anywhere but at the end anchors the pattern
	// to the repository root.
	if strings.Contains(p, "/") {
		anchored = true
	}
	segs := strings.Split(p, "/")
	last := segs[len(segs)-1]
	// "dir/**/" already means everything inside dir.
	if last == "**" {
		dirOnly = false
	}

	var b strings.Builder
	b.WriteString("^")
	if !anchored {
		b.WriteString("(?:.*/)?")
	}
	for i, seg := range segs {
		isLast := i == len(segs)-1
		if seg == "**" {
			if isLast {
				b.WriteString(".*")
			} else {
				b.WriteString("(?:[^/]+/)*")
			}
			continue
		}
		if seg == "" {
			return nil, errors.New("empty path segment (//)")
		}
		if err := writeSegment(&b, seg); err != nil {
			return nil, err
		}
		if !isLast {
			b.WriteString("/")
		}
	}
	switch {
	case dirOnly:
		b.WriteString("/.+")
	case last == "*":
		// A final lone "*" names the files in one directory, not deeper
		// ones: "docs/*" owns docs/a.md but not docs/x/a.md (GitHub's
		// documented example), and "/*" owns only the root's files.
	default:
		b.WriteString("(?:/.+)?")
	}
	b.WriteString("$")
	return regexp.Compile(b.String())
}

// hasUnescapedBracket reports whether pattern has a "[" or "]" that no
// backslash escapes.
func hasUnescapedBracket(pattern string) bool {
	for i := 0; i < len(pattern); i++ {
		switch pattern[i] {
		case '\\':
			i++
		case '[', ']':
			return true
		}
	}
	return false
}

func writeSegment(b *strings.Builder, seg string) error {
	for i := 0; i < len(seg); i++ {
		c := seg[i]
		switch c {
		case '*':
			// "**" inside a segment is an ordinary "*" (gitignore).
			for i+1 < len(seg) && seg[i+1] == '*' {
				i++
			}
			b.WriteString("[^/]*")
		case '?':
			b.WriteString("[^/]")
		case '\\':
			if i+1 >= len(seg) {
				return errors.New("trailing backslash")
			}
			i++
			b.WriteString(regexp.QuoteMeta(seg[i : i+1]))
		default:
			b.WriteString(regexp.QuoteMeta(seg[i : i+1]))
		}
	}
	return nil
}

// Match returns the rule that decides path's owners (the last one that
// matches), or nil when no rule matches.
func (f *File) Match(path string) *Rule {
	path = strings.TrimPrefix(path, "/")
	for i := len(f.Rules) - 1; i >= 0; i-- {
		if f.Rules[i].re.MatchString(path) {
			return &f.Rules[i]
		}
	}
	return nil
}

// Owners returns the owners of path; nil when nothing matches or the
// matching rule names no owner.
func (f *File) Owners(path string) []Owner {
	if r := f.Match(path); r != nil {
		return r.Owners
	}
	return nil
}

// ReadFunc reads a file of the repository at the revision the caller has
// chosen; a missing file is an error that wraps fs.ErrNotExist.
type ReadFunc func(ctx context.Context, path string) ([]byte, error)

// Find loads the CODEOWNERS file GitHub would use: the first of Locations
// that exists. It returns (nil, nil) when none exists, and an error only
// when a read fails for another reason (which must not be mistaken for
// "no owners").
func Find(ctx context.Context, read ReadFunc) (*File, error) {
	for _, p := range Locations {
		data, err := read(ctx, p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", p, err)
		}
		return Parse(p, data), nil
	}
	return nil, nil
}

package main

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/schema"
)

// extension is `gitgrant request --extend`: the request file, where it is
// and what it becomes.
type extension struct {
	Rel     string // slash path from the repository root
	Request *gitgrant.Request
	Expires time.Time
	Data    []byte // the edited file
	Before  []byte // the file as it was read
}

// extendRequest reads the request file at rel and moves its end to
// expires (computed by the caller from --for or --until), within every
// grant's cap. The edited file keeps its comments and field order;
// `duration:` becomes `expires:`, since the window of an extension starts
// again when its own pull request merges.
func extendRequest(repo, rel string, expires func(*gitgrant.Request) time.Time, now time.Time, e *env) (*extension, error) {
	refuse := func(format string, args ...any) error {
		fmt.Fprintf(e.stderr, "the request was not extended: "+format+"\n", args...)
		return errInvalid
	}
	full := filepath.Join(repo, filepath.FromSlash(rel))
	data, err := os.ReadFile(full)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, usagef("request --extend: %s does not exist in %s: give the path of a request file, such as requests/orders-db/alice-readwrite-20261122.yaml", rel, repo)
	case err != nil:
		return nil, &gitgrant.SystemError{System: "filesystem", Op: "read " + full, Err: err}
	}
	if !gitgrant.IsRequestPath(rel) {
		return nil, usagef("request --extend: %s is not a request file (requests/<provider>/<name>.yaml)", rel)
	}
	req, diags := schema.LoadRequest(rel, data)
	if req == nil {
		return nil, refuse("%s is invalid (%v): fix it first", rel, firstError(diags))
	}
	cfg, err := workConfig(repo)
	if err != nil {
		return nil, refuse("%v", err)
	}

	ext := *req
	ext.Duration, ext.Expires = 0, expires(req)
	// The extension's pull request merges at the earliest now: its window
	// is the request's own rule from there, under each grant's cap.
	for _, g := range ext.Grants {
		limit := cfg.GrantMaxDuration(&ext, g)
		w, clamped := ext.Window(now, limit)
		if clamped {
			return nil, refuse("%s until %s is over the %s maximum of %s/%s%s: access can last until %s at the latest (if the pull request merged now); ask for --for %s or less",
				rel, ext.Expires.UTC().Format(time.RFC3339), limit, g.Provider, g.Role, emergencyNote(req), w.End.UTC().Format(time.RFC3339), limit)
		}
	}
	if !ext.Expires.After(now) {
		return nil, refuse("the new end %s is not in the future", ext.Expires.UTC().Format(time.RFC3339))
	}
	edited, err := setExpires(data, ext.Expires)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", rel, err)
	}
	return &extension{Rel: rel, Request: req, Expires: ext.Expires, Data: edited, Before: data}, nil
}

func emergencyNote(req *gitgrant.Request) string {
	if req.Emergency {
		return " for emergencies"
	}
	return ""
}

// workConfig is the work tree's gitgrant.yaml.
func workConfig(repo string) (*gitgrant.Config, error) {
	cfgFile, _, err := schema.ReadFiles(repo, nil)
	if err != nil {
		return nil, err
	}
	if cfgFile == nil {
		return nil, fmt.Errorf("no %s in %s", gitgrant.ConfigPath, repo)
	}
	cfg, diags := schema.LoadConfig(cfgFile.Path, cfgFile.Data)
	if cfg == nil {
		return nil, fmt.Errorf("%s is invalid (%v)", gitgrant.ConfigPath, firstError(diags))
	}
	return cfg, nil
}

func firstError(ds gitgrant.Diagnostics) error {
	for _, d := range ds {
		if d.Severity == gitgrant.SeverityError {
			return fmt.Errorf("%d:%d: %s: %s", d.Line, d.Column, d.Field, d.Message)
		}
	}
	return errors.New("invalid")
}

// setExpires rewrites a request file's end: `expires:` set to t, and
// `duration:` removed (it is replaced in place, so the field order stays).
// Everything else, comments included, is kept.
func setExpires(data []byte, t time.Time) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, errors.New("not a YAML mapping")
	}
	m := doc.Content[0]
	value := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: t.UTC().Format(time.RFC3339)}
	var out []*yaml.Node
	placed := false
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		switch k.Value {
		case "duration":
			if !placed {
				out = append(out, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "expires", HeadComment: k.HeadComment, LineComment: v.LineComment}, value)
				placed = true
			}
			continue
		case "expires":
			if !placed {
				value.LineComment = v.LineComment
				out = append(out, k, value)
				placed = true
			}
			continue
		}
		out = append(out, k, v)
	}
	if !placed {
		out = append(out, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "expires"}, value)
	}
	m.Content = out
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// extendEnd is the new end --for or --until asks for: --until as given,
// --for from now (or from the request's own later start).
func extendEnd(forDur, until string, now time.Time) (func(*gitgrant.Request) time.Time, error) {
	if until != "" {
		t, err := time.Parse(time.RFC3339, until)
		if err != nil {
			return nil, usagef("request: --until %q: use RFC 3339, such as 2026-11-23T17:00:00Z", until)
		}
		return func(*gitgrant.Request) time.Time { return t.UTC() }, nil
	}
	d, err := gitgrant.ParseDuration(forDur)
	if err != nil || d <= 0 {
		return nil, usagef("request: --for %q: use a duration such as 30m, 4h or 2d", forDur)
	}
	return func(r *gitgrant.Request) time.Time {
		from := now
		if r.Starts.After(from) {
			from = r.Starts
		}
		return from.Add(time.Duration(d)).UTC().Truncate(time.Second)
	}, nil
}

// relToRepo is the slash path of file inside repo: file as given when
// relative (localRepo has already made it relative to the repository
// root), or made relative when absolute.
func relToRepo(repo, file string) (string, error) {
	if filepath.IsAbs(file) {
		rel, err := filepath.Rel(repo, file)
		if err != nil || strings.HasPrefix(rel, "..") {
			return "", usagef("request --extend: %s is outside the access repository %s", file, repo)
		}
		file = rel
	}
	return filepath.ToSlash(filepath.Clean(file)), nil
}

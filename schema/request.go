package schema

import (
	"fmt"
	"strconv"
	"time"

	"github.com/gitgrant/gitgrant"
)

// LoadRequest parses one request file. It returns the request when the file
// is structurally valid (its diagnostics may still hold warnings) and every
// problem found, each with its position. Policy checks that need
// gitgrant.yaml are CheckRequest's.
func LoadRequest(path string, data []byte) (*gitgrant.Request, gitgrant.Diagnostics) {
	d := parseDoc(path, data, requestDocOptions)
	if d.value == nil || d.diags.HasErrors() {
		return nil, d.diags
	}
	c := load("request.schema.json")
	diags := append(d.diags, diagnoser{c: c, d: d, quoteValues: true}.run(c.validate(d.value))...)

	m := d.value.(map[string]any)
	req := &gitgrant.Request{Path: path, Version: 1, Positions: make(map[string]gitgrant.Position, len(d.fields))}
	for k, fp := range d.fields {
		req.Positions[k] = fp.value
	}
	str := func(k string) string { s, _ := m[k].(string); return s }
	req.Requester, req.Subject = str("requester"), str("subject")
	req.Reason, req.Ticket = str("reason"), str("ticket")
	req.Emergency, _ = m["emergency"].(bool)
	if v, ok := m["version"]; ok {
		if n, err := strconv.Atoi(fmt.Sprint(v)); err == nil {
			req.Version = n
		}
	}
	if gs, ok := m["grants"].([]any); ok {
		for _, g := range gs {
			gm, _ := g.(map[string]any)
			p, _ := gm["provider"].(string)
			r, _ := gm["role"].(string)
			req.Grants = append(req.Grants, gitgrant.GrantRef{Provider: p, Role: r})
		}
	}

	errAt := func(field, msg, hint string) {
		diags = append(diags, gitgrant.Diagnostic{Position: d.at(field), Severity: gitgrant.SeverityError, Field: field, Message: msg, Hint: hint})
	}
	if req.Version > gitgrant.CurrentVersion {
		errAt("version", fmt.Sprintf("format version %d is newer than this gitgrant understands (%d)", req.Version, gitgrant.CurrentVersion),
			"upgrade gitgrant, or write version: 1")
	}

	_, hasDuration := m["duration"]
	_, hasExpires := m["expires"]
	switch {
	case hasDuration && hasExpires:
		errAt("expires", "both duration and expires are set", "keep exactly one: duration (how long) or expires (until when)")
	case !hasDuration && !hasExpires:
		errAt("", "missing duration or expires", "add duration: 4h (how long) or expires: 2026-11-23T17:00:00Z (until when)")
	}
	if s := str("duration"); s != "" {
		dur, err := gitgrant.ParseDuration(s)
		switch {
		case err != nil:
			if !hasPatternError(diags, "duration") {
				errAt("duration", err.Error(), "")
			}
		case dur <= 0:
			errAt("duration", fmt.Sprintf("duration %s is not positive", s), "ask for at least 1m")
		default:
			req.Duration = dur
		}
	}
	for _, k := range []string{"starts", "expires"} {
		raw := str(k)
		if raw == "" || hasPatternError(diags, k) {
			continue
		}
		t, err := time.Parse(time.RFC3339, raw)
		if err != nil {
			errAt(k, fmt.Sprintf("%q is not a real time: %v", raw, err), fieldHints[k])
			continue
		}
		if k == "starts" {
			req.Starts = t
		} else {
			req.Expires = t
		}
	}
	if !req.Starts.IsZero() && !req.Expires.IsZero() && !req.Starts.Before(req.Expires) {
		errAt("expires", fmt.Sprintf("expires %s is not after starts %s", str("expires"), str("starts")),
			"access must end after it starts")
	}
	seen := map[gitgrant.GrantRef]int{}
	for i, g := range req.Grants {
		if j, dup := seen[g]; dup {
			errAt(fmt.Sprintf("grants.%d", i), fmt.Sprintf("%s/%s is requested twice (also grants.%d)", g.Provider, g.Role, j),
				"list each role once")
		}
		seen[g] = i
	}
	diags.Sort()
	if diags.HasErrors() {
		return nil, diags
	}
	return req, diags
}

func hasPatternError(diags gitgrant.Diagnostics, field string) bool {
	for _, d := range diags {
		if d.Field == field {
			return true
		}
	}
	return false
}

package schema

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/xeipuuv/gojsonschema"

	"github.com/gitgrant/gitgrant"
)

// fieldHints explain the syntax of fields whose pattern errors would
// otherwise only show a regular expression. Keyed by the field's last name.
var fieldHints = map[string]string{
	"requester":    "a GitHub login: ASCII letters, digits and single hyphens, such as alice or bob-smith",
	"subject":      "an identity name from gitgrant.yaml: ASCII letters, digits, '-', '_' and '.'",
	"provider":     "a provider name from gitgrant.yaml: lowercase letters, digits, '-' and '_'",
	"role":         "a role name: letters, digits, '-', '_' and '.'",
	"duration":     gitgrant.ErrDurationSyntax.Error(),
	"max_duration": gitgrant.ErrDurationSyntax.Error(),
	"expires":      "write an RFC 3339 time with a zone, such as 2026-11-23T17:00:00Z or 2026-11-23T18:00:00+01:00",
	"starts":       "write an RFC 3339 time with a zone, such as 2026-11-23T09:00:00Z or 2026-11-23T10:00:00+01:00",
	"email":        "an email address, such as alice@example.com",
	"members":      "a GitHub login or @org/team",
	"approvers":    "a GitHub login or @org/team",
}

// diagnoser turns JSON Schema errors into diagnostics a person can act on.
type diagnoser struct {
	c *compiled
	d *doc
	// prefix is where the validated value sits in the file (provider
	// settings are validated on their own, under providers.<name>).
	prefix string
	// quoteValues is false for config files, whose values may be secrets
	// pasted in the wrong place: messages then never repeat a value.
	quoteValues bool
}

func (g diagnoser) run(errs []gojsonschema.ResultError) gitgrant.Diagnostics {
	var out gitgrant.Diagnostics
	seen := map[string]bool{}
	for _, e := range errs {
		diag, ok := g.one(e)
		if !ok {
			continue
		}
		key := diag.Position.String() + diag.Field + diag.Message
		if seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, diag)
	}
	return out
}

func (g diagnoser) one(e gojsonschema.ResultError) (gitgrant.Diagnostic, bool) {
	rel := strings.TrimPrefix(strings.TrimPrefix(e.Context().String("."), "(root)"), ".")
	field := rel
	if g.prefix != "" {
		field = join(g.prefix, rel)
	}
	diag := gitgrant.Diagnostic{Severity: gitgrant.SeverityError, Field: field, Position: g.d.at(field)}
	name := leaf(field)
	details := e.Details()

	switch e.Type() {
	case "required":
		prop, _ := details["property"].(string)
		diag.Field = join(field, prop)
		diag.Message = fmt.Sprintf("missing required field %q", prop)
		diag.Hint = "add it"
		if desc := g.c.description(join(rel, prop)); desc != "" {
			diag.Hint = "add it: " + strings.TrimSuffix(lowerFirst(desc), ".")
		}
	case "additional_property_not_allowed":
		prop, _ := details["property"].(string)
		diag.Field = join(field, prop)
		diag.Position = g.d.keyAt(diag.Field)
		diag.Message = fmt.Sprintf("unknown field %q", prop)
		known := g.c.propertyNames(rel)
		if s := suggest(prop, known); s != "" {
			diag.Hint = fmt.Sprintf("did you mean %q?", s)
		} else if len(known) > 0 {
			diag.Hint = "known fields here: " + strings.Join(known, ", ")
		}
	case "invalid_property_name":
		prop, _ := details["property"].(string)
		diag.Field = join(field, prop)
		diag.Position = g.d.keyAt(diag.Field)
		diag.Message = fmt.Sprintf("name %q is not allowed here", prop)
		diag.Hint = nameHint(name)
		if msg, hint, ok := explainLookalike(prop); ok && name == "identities" {
			diag.Message, diag.Hint = msg, hint
		}
	case "invalid_type":
		if g.d.fields[field].mapping && e.Value() == nil {
			return diag, false
		}
		expected, _ := details["expected"].(string)
		given, _ := details["given"].(string)
		diag.Message = fmt.Sprintf("must be %s, not %s", article(expected), article(given))
		if strings.Contains(expected, "string") && given != "null" {
			diag.Hint = "put the value in quotes"
		} else if given == "null" {
			diag.Hint = "write a value after the colon, or remove the field"
		} else if expected == "boolean" {
			diag.Hint = "write true or false"
		}
	case "pattern", "format":
		if fp, ok := g.d.fields[field]; ok && fp.mapping {
			return diag, false // reported as invalid_property_name on the key
		}
		diag.Message = "is not valid"
		// Logins are not secrets, so they may be quoted even in the config.
		isLogin := name == "requester" || name == "subject" || isIndex(name) && (leaf(parent(field)) == "members" || leaf(parent(field)) == "approvers")
		if g.quoteValues || isLogin {
			diag.Message = fmt.Sprintf("%q is not valid", fmt.Sprint(e.Value()))
		}
		if isLogin {
			if msg, hint, ok := explainLookalike(strings.TrimPrefix(fmt.Sprint(e.Value()), "@")); ok {
				diag.Message, diag.Hint = msg, hint
				break
			}
		}
		switch {
		case strings.HasSuffix(name, "_env"):
			diag.Hint = "name an environment variable (A-Z, 0-9, _) that holds the value; never the value itself"
		case fieldHints[name] != "":
			diag.Hint = fieldHints[name]
		case isIndex(name) && fieldHints[leaf(parent(field))] != "":
			diag.Hint = fieldHints[leaf(parent(field))]
		default:
			diag.Hint = g.c.description(rel)
		}
	case "enum":
		allowed, _ := details["allowed"].(string)
		diag.Message = "must be one of " + allowed
		if s, ok := e.Value().(string); ok && g.quoteValues {
			diag.Message = fmt.Sprintf("%q must be one of %s", s, allowed)
		}
	case "string_gte", "string_lte", "array_min_items", "array_max_items", "array_min_properties", "number_gte", "number_lte":
		b := boundMessages[e.Type()]
		diag.Message = fmt.Sprintf(b.format, details[b.detail])
	case "number_one_of", "number_any_of":
		if alts := g.c.requiredAlternatives(rel); len(alts) > 0 {
			diag.Message = "set exactly one of " + strings.Join(alts, " and ")
			break
		}
		diag.Message = "does not match any accepted form"
		diag.Hint = g.c.description(parent(rel))
	default:
		diag.Message = e.Description()
	}
	return diag, true
}

func nameHint(kind string) string {
	switch kind {
	case "providers":
		return "provider names are lowercase letters, digits, '-' and '_', and name the folder under requests/"
	case "roles":
		return "role names are letters, digits, '-', '_' and '.'"
	case "identities":
		return "identity names are GitHub logins or service-account names: ASCII letters, digits, '-', '_' and '.'"
	}
	return ""
}

func article(t string) string {
	switch t {
	case "":
		return "a value"
	case "null":
		return "empty"
	case "array":
		return "a list"
	case "object":
		return "a mapping"
	case "integer":
		return "a whole number"
	case "string":
		return "a string"
	case "boolean":
		return "true or false"
	}
	if strings.Contains(t, "/") || strings.Contains(t, ",") {
		return "one of " + t
	}
	return "a " + t
}

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}

// suggest returns the candidate closest to s when it is close enough to be
// a likely typo, else "".
func suggest(s string, candidates []string) string {
	best, bestDist := "", 1<<30
	ls := strings.ToLower(s)
	for _, c := range candidates {
		d := EditDistance(ls, strings.ToLower(c))
		if d < bestDist || (d == bestDist && c < best) {
			best, bestDist = c, d
		}
	}
	limit := 2
	if len(s) > 8 {
		limit = 3
	}
	if best != "" && bestDist <= limit && bestDist < len(s) {
		return best
	}
	for _, c := range candidates { // "orders" for "orders-db": a shortened name
		if len(s) >= 3 && (strings.HasPrefix(strings.ToLower(c), ls) || strings.HasPrefix(ls, strings.ToLower(c))) {
			return c
		}
	}
	return ""
}

// EditDistance is the Levenshtein distance between a and b, counted in
// characters: how many insertions, deletions and substitutions make one
// the other. It measures how close a typo is to the name meant.
func EditDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

// boundMessages words a value over or under a schema bound: the message,
// and which of the error's details holds the bound.
var boundMessages = map[string]struct{ format, detail string }{
	"string_gte":           {"is too short: at least %v characters", "min"},
	"string_lte":           {"is too long: at most %v characters", "max"},
	"array_min_items":      {"needs at least %v item(s)", "min"},
	"array_max_items":      {"has too many items: at most %v", "max"},
	"array_min_properties": {"needs at least %v entry(ies)", "min"},
	"number_gte":           {"must be at least %v", "min"},
	"number_lte":           {"must be at most %v", "max"},
}

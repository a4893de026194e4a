package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/gitgrant/gitgrant"
)

// docOptions sets how forgiving the YAML layer is for one kind of file.
type docOptions struct {
	allowAliases bool // config files may share blocks with anchors; requests may not
	maxNodes     int  // bound on nodes visited, aliases expanded, so anchor bombs stop early
	maxDepth     int
}

var (
	requestDocOptions = docOptions{allowAliases: false, maxNodes: 4096, maxDepth: 16}
	configDocOptions  = docOptions{allowAliases: true, maxNodes: 200_000, maxDepth: 32}
)

// fieldPos is where a field's key and value sit in the source.
type fieldPos struct {
	key, value gitgrant.Position
	mapping    bool // the value is a mapping (used to place errors about its keys)
}

// doc is one YAML file turned into plain values (map[string]any, []any,
// string, json.Number, bool, nil) that the JSON Schema validator reads,
// plus the position of every field so that every later error can point at
// a line and column.
type doc struct {
	file   string
	opts   docOptions
	value  any
	fields map[string]fieldPos
	diags  gitgrant.Diagnostics
	nodes  int
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): `)

// parseDoc checks the raw bytes (size, encoding, document count) and
// converts the YAML. It always returns a doc; doc.value is nil when the
// file could not be read as a mapping at all.
func parseDoc(file string, data []byte, opts docOptions) *doc {
	d := &doc{file: file, opts: opts, fields: make(map[string]fieldPos, 16)}
	if len(data) > gitgrant.MaxFileSize {
		d.errorAt(gitgrant.Position{File: file}, "", fmt.Sprintf("file is %d bytes, over the %d KiB limit", len(data), gitgrant.MaxFileSize>>10),
			"a request or config this large is not written by hand; split it or remove what is not needed")
		return d
	}
	if !utf8.Valid(data) {
		line, col := invalidUTF8At(data)
		d.errorAt(gitgrant.Position{File: file, Line: line, Column: col}, "", "file is not valid UTF-8",
			"save the file as UTF-8 text")
		return d
	}
	if len(bytes.TrimSpace(data)) == 0 {
		d.errorAt(gitgrant.Position{File: file, Line: 1, Column: 1}, "", "file is empty",
			"write the fields in the file, or delete it")
		return d
	}

	dec := yaml.NewDecoder(bytes.NewReader(data))
	var root yaml.Node
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) { // comments only
			d.errorAt(gitgrant.Position{File: file, Line: 1, Column: 1}, "", "file is empty",
				"write the fields in the file, or delete it")
			return d
		}
		d.syntaxError(err)
		return d
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		d.errorAt(gitgrant.Position{File: file, Line: extra.Line, Column: extra.Column}, "",
			"file holds more than one YAML document", "keep one document per file: remove the '---' and what follows, or move it to its own file")
		return d
	case !errors.Is(err, io.EOF):
		d.syntaxError(err)
		return d
	}

	top := &root
	if top.Kind == yaml.DocumentNode && len(top.Content) == 1 {
		top = top.Content[0]
	}
	if top.Kind == yaml.ScalarNode && top.ShortTag() == "!!null" {
		d.errorAt(gitgrant.Position{File: file, Line: 1, Column: 1}, "", "file is empty",
			"write the fields in the file, or delete it")
		return d
	}
	if top.Kind != yaml.MappingNode {
		d.errorAt(d.pos(top), "", fmt.Sprintf("file must be a mapping of fields (key: value), not %s", kindName(top)),
			"start each line with a field name, such as 'requester: alice'")
		return d
	}
	d.fields[""] = fieldPos{key: d.pos(top), value: d.pos(top), mapping: true}
	d.value = d.convert(top, "", 0)
	return d
}

func (d *doc) pos(n *yaml.Node) gitgrant.Position {
	return gitgrant.Position{File: d.file, Line: n.Line, Column: n.Column}
}

func (d *doc) errorAt(p gitgrant.Position, field, msg, hint string) {
	d.diags = append(d.diags, gitgrant.Diagnostic{Position: p, Severity: gitgrant.SeverityError, Field: field, Message: msg, Hint: hint})
}

// syntaxError turns a yaml.v3 error ("yaml: line 3: did not find expected
// key") into a positioned diagnostic.
func (d *doc) syntaxError(err error) {
	msg := err.Error()
	p := gitgrant.Position{File: d.file, Line: 1}
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		p.Line, _ = strconv.Atoi(m[1])
		msg = msg[len(m[0]):]
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	d.errorAt(p, "", "YAML syntax error: "+msg,
		"check indentation (spaces, not tabs) and quote values that contain ': ' or start with a special character")
}

// convert walks the node tree. Paths are dotted field names with list
// indexes, such as "grants.0.role".
func (d *doc) convert(n *yaml.Node, path string, depth int) any {
	d.nodes++
	if d.nodes > d.opts.maxNodes {
		if d.nodes == d.opts.maxNodes+1 {
			d.errorAt(d.pos(n), path, fmt.Sprintf("document expands to more than %d values", d.opts.maxNodes),
				"this is what an alias bomb looks like; write the values out instead of repeating aliases")
		}
		return nil
	}
	if depth > d.opts.maxDepth {
		d.errorAt(d.pos(n), path, fmt.Sprintf("values nest deeper than %d levels", d.opts.maxDepth), "flatten the structure")
		return nil
	}
	if !d.opts.allowAliases && n.Anchor != "" {
		d.errorAt(d.pos(n), path, fmt.Sprintf("anchor &%s is not allowed in a request file", n.Anchor),
			"write each value out; request files must read the same to people and to gitgrant")
	}
	switch n.Kind {
	case yaml.AliasNode:
		if !d.opts.allowAliases {
			d.errorAt(d.pos(n), path, fmt.Sprintf("alias *%s is not allowed in a request file", n.Value),
				"write the value out instead of referring to an anchor")
			return nil
		}
		return d.convert(n.Alias, path, depth+1)
	case yaml.MappingNode:
		return d.convertMapping(n, path, depth)
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for i, item := range n.Content {
			p := join(path, strconv.Itoa(i))
			d.fields[p] = fieldPos{key: d.pos(item), value: d.pos(item), mapping: item.Kind == yaml.MappingNode}
			out = append(out, d.convert(item, p, depth+1))
		}
		return out
	case yaml.ScalarNode:
		return d.scalar(n, path)
	}
	d.errorAt(d.pos(n), path, "unsupported YAML construct", "")
	return nil
}

func (d *doc) convertMapping(n *yaml.Node, path string, depth int) any {
	out := make(map[string]any, len(n.Content)/2)
	seen := make(map[string]int, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			d.merge(out, v, path, depth)
			continue
		}
		if k.Kind != yaml.ScalarNode || k.Alias != nil {
			d.errorAt(d.pos(k), path, "a key must be a plain name", "write keys as simple words, such as 'role:'")
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.errorAt(d.pos(k), join(path, k.Value), fmt.Sprintf("duplicate key %q (first at line %d)", k.Value, first),
				"keep one of them; YAML readers disagree on which one wins")
			continue
		}
		seen[k.Value] = k.Line
		p := join(path, k.Value)
		target := v
		if v.Kind == yaml.AliasNode && v.Alias != nil {
			target = v.Alias
		}
		d.fields[p] = fieldPos{key: d.pos(k), value: d.pos(v), mapping: target.Kind == yaml.MappingNode}
		out[k.Value] = d.convert(v, p, depth+1)
	}
	return out
}

// merge applies a YAML merge key (<<: *base) in a config file: keys of the
// referenced mapping(s) that the mapping does not set itself.
func (d *doc) merge(out map[string]any, v *yaml.Node, path string, depth int) {
	if !d.opts.allowAliases {
		d.errorAt(d.pos(v), path, "merge key << is not allowed in a request file", "write the fields out")
		return
	}
	sources := []*yaml.Node{v}
	if v.Kind == yaml.SequenceNode {
		sources = v.Content
	}
	for _, s := range sources {
		m, ok := d.convert(s, path, depth+1).(map[string]any)
		if !ok {
			d.errorAt(d.pos(s), path, "merge key << must refer to a mapping", "use <<: *anchor where the anchor names a mapping")
			continue
		}
		for k, val := range m {
			if _, set := out[k]; !set {
				out[k] = val
			}
		}
	}
}

// scalar converts by the resolved YAML tag. Numbers become json.Number, as
// the JSON Schema validator expects.
func (d *doc) scalar(n *yaml.Node, path string) any {
	switch tag := n.ShortTag(); tag {
	case "!!str", "!!timestamp":
		return n.Value
	case "!!null":
		return nil
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err != nil {
			return n.Value
		}
		return b
	case "!!int":
		var i int64
		if err := n.Decode(&i); err != nil {
			d.errorAt(d.pos(n), path, "number is too large", "")
			return nil
		}
		return json.Number(strconv.FormatInt(i, 10))
	case "!!float":
		var f float64
		if err := n.Decode(&f); err != nil {
			return n.Value
		}
		return json.Number(strconv.FormatFloat(f, 'g', -1, 64))
	default:
		d.errorAt(d.pos(n), path, fmt.Sprintf("YAML tag %s is not supported", tag), "remove the tag and write a plain value")
		return nil
	}
}

// at returns the position of a field's value, or of the nearest enclosing
// field when the field itself is absent (a missing key is reported where it
// should have been written).
func (d *doc) at(path string) gitgrant.Position {
	for {
		if fp, ok := d.fields[path]; ok {
			return fp.value
		}
		if path == "" {
			return gitgrant.Position{File: d.file, Line: 1, Column: 1}
		}
		path = parent(path)
	}
}

// keyAt is like at but points at the key, where unknown or misspelt keys are.
func (d *doc) keyAt(path string) gitgrant.Position {
	if fp, ok := d.fields[path]; ok {
		return fp.key
	}
	return d.at(path)
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	if key == "" {
		return path
	}
	return path + "." + key
}

func parent(path string) string {
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		return path[:i]
	}
	return ""
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return "a single value"
	case yaml.AliasNode:
		return "an alias"
	}
	return "something else"
}

// invalidUTF8At finds the 1-based line and column of the first byte that is
// not valid UTF-8.
func invalidUTF8At(data []byte) (line, col int) {
	line, col = 1, 1
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && size <= 1 {
			return line, col
		}
		if r == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
		i += size
	}
	return line, col
}

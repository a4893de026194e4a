// Package schema owns gitgrant's file formats: the JSON Schemas of request
// files and gitgrant.yaml (embedded, printed by `gitgrant schema`; each
// provider type's settings schema comes from the providers package), loading
// YAML into domain types with a file:line:column on every error, and the
// static policy checks that every command shares. Nothing here talks to git,
// GitHub or a provider.
package schema

import (
	"embed"
	"encoding/json"
	"fmt"
	"path"
	"sort"
	"strings"
	"sync"

	"github.com/xeipuuv/gojsonreference"
	"github.com/xeipuuv/gojsonschema"

	"github.com/gitgrant/gitgrant/providers"
)

//go:embed request.schema.json config.schema.json
var files embed.FS

// RequestSchema returns the JSON Schema of request files.
func RequestSchema() []byte { return mustRead("request.schema.json") }

// ConfigSchema returns the JSON Schema of gitgrant.yaml. Type-specific
// provider settings have their own schemas, see ProviderSchema.
func ConfigSchema() []byte { return mustRead("config.schema.json") }

// ProviderSchema returns the JSON Schema of one provider type's settings,
// the one beside the provider's code.
func ProviderSchema(typ string) ([]byte, bool) { return providers.SettingsSchema(typ) }

// ProviderTypes lists the provider types this build knows, sorted.
func ProviderTypes() []string { return providers.SchemaTypes() }

func mustRead(name string) []byte {
	b, err := files.ReadFile(name)
	if err != nil {
		panic(err) // embedded at build time; missing means a broken build
	}
	return b
}

// compiled is one schema ready to validate, with its raw form kept for
// descriptions and "did you mean" suggestions.
type compiled struct {
	schema *gojsonschema.Schema
	raw    map[string]any
}

var compiledSchemas sync.Map // name -> *compiled; embedded data, so compiled once

func load(name string) *compiled {
	if c, ok := compiledSchemas.Load(name); ok { // before reading: called once per file validated
		return c.(*compiled)
	}
	return loadBytes(name, mustRead(name))
}

// loadBytes compiles an embedded schema once, under name.
func loadBytes(name string, data []byte) *compiled {
	if c, ok := compiledSchemas.Load(name); ok {
		return c.(*compiled)
	}
	var raw map[string]any
	if err := json.Unmarshal(data, &raw); err != nil {
		panic(fmt.Sprintf("embedded schema %s: %v", name, err))
	}
	s, err := gojsonschema.NewSchema(gojsonschema.NewBytesLoader(data))
	if err != nil {
		panic(fmt.Sprintf("embedded schema %s: %v", name, err))
	}
	c, _ := compiledSchemas.LoadOrStore(name, &compiled{schema: s, raw: raw})
	return c.(*compiled)
}

// valueLoader hands already-decoded values to gojsonschema, skipping the
// JSON encode and decode round trip that its Go loader does per document.
type valueLoader struct{ v any }

func (l valueLoader) JsonSource() any        { return l.v }
func (l valueLoader) LoadJSON() (any, error) { return l.v, nil }
func (l valueLoader) LoaderFactory() gojsonschema.JSONLoaderFactory {
	return &gojsonschema.DefaultJSONLoaderFactory{}
}
func (l valueLoader) JsonReference() (gojsonreference.JsonReference, error) {
	return gojsonreference.NewJsonReference("#")
}

// validate runs the schema over v and returns the raw errors.
func (c *compiled) validate(v any) []gojsonschema.ResultError {
	res, err := c.schema.Validate(valueLoader{v})
	if err != nil {
		return []gojsonschema.ResultError{}
	}
	return res.Errors()
}

// node finds the sub-schema that describes a dotted document path, following
// properties, additionalProperties, items and local $refs.
func (c *compiled) node(docPath string) map[string]any {
	cur := c.raw
	if docPath == "" {
		return cur
	}
	for _, part := range strings.Split(docPath, ".") {
		cur = c.deref(cur)
		if cur == nil {
			return nil
		}
		if props, ok := cur["properties"].(map[string]any); ok {
			if next, ok := props[part].(map[string]any); ok {
				cur = next
				continue
			}
		}
		if items, ok := cur["items"].(map[string]any); ok && isIndex(part) {
			cur = items
			continue
		}
		if ap, ok := cur["additionalProperties"].(map[string]any); ok {
			cur = ap
			continue
		}
		return nil
	}
	return c.deref(cur)
}

func (c *compiled) deref(n map[string]any) map[string]any {
	for i := 0; n != nil && i < 8; i++ {
		ref, ok := n["$ref"].(string)
		if !ok {
			return n
		}
		n = c.pointer(strings.TrimPrefix(ref, "#"))
	}
	return n
}

func (c *compiled) pointer(p string) map[string]any {
	cur := c.raw
	for _, part := range strings.Split(strings.Trim(p, "/"), "/") {
		next, ok := cur[part].(map[string]any)
		if !ok {
			return nil
		}
		cur = next
	}
	return cur
}

// propertyNames lists the keys a schema node declares, sorted.
func (c *compiled) propertyNames(docPath string) []string {
	n := c.node(docPath)
	props, _ := n["properties"].(map[string]any)
	names := make([]string, 0, len(props))
	for k := range props {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// description of the field at docPath, or "".
func (c *compiled) description(docPath string) string {
	d, _ := c.node(docPath)["description"].(string)
	return d
}

func isIndex(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// leaf is the last element of a dotted path.
func leaf(p string) string { return path.Base(strings.ReplaceAll(p, ".", "/")) }

// requiredAlternatives returns the keys of a oneOf made only of single
// "required" branches (exactly one of dsn_env and dsn_file), else nil.
func (c *compiled) requiredAlternatives(docPath string) []string {
	branches, _ := c.node(docPath)["oneOf"].([]any)
	var out []string
	for _, b := range branches {
		bm, _ := b.(map[string]any)
		req, _ := bm["required"].([]any)
		if len(bm) != 1 || len(req) != 1 {
			return nil
		}
		name, _ := req[0].(string)
		out = append(out, name)
	}
	return out
}

package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/gitgrant/gitgrant/schema"
)

func runSchema(ctx context.Context, args []string, e *env) error {
	fs := newFlags("schema", "request|config|provider TYPE", `
Print the JSON Schema of a file format, for editors and other tools.
Request files name it in a comment so that editors complete and check them:
  # yaml-language-server: $schema=../../schema/request.schema.json

  gitgrant schema request         request files under requests/<provider>/
  gitgrant schema config          gitgrant.yaml
  gitgrant schema provider TYPE   the settings of one provider type (`+strings.Join(schema.ProviderTypes(), ", ")+`)`, e)
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	var out []byte
	switch {
	case len(pos) == 1 && pos[0] == "request":
		out = schema.RequestSchema()
	case len(pos) == 1 && pos[0] == "config":
		out = schema.ConfigSchema()
	case len(pos) == 2 && pos[0] == "provider":
		var ok bool
		if out, ok = schema.ProviderSchema(pos[1]); !ok {
			return usagef("schema: unknown provider type %q; known: %s", pos[1], strings.Join(schema.ProviderTypes(), ", "))
		}
	default:
		return usagef("schema: say which one: request, config or provider TYPE")
	}
	_, err = fmt.Fprint(e.stdout, string(out))
	return err
}

package providers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/gitgrant/gitgrant"
)

// Typed makes the Factory of a provider type that owns its settings: it
// decodes an entry's settings strictly into the type's settings struct S
// (Decode) and opens the provider from them with open.
func Typed[S any](open func(ctx context.Context, cfg gitgrant.ProviderConfig, settings S, deps Deps) (Provider, error)) Factory {
	return func(ctx context.Context, cfg gitgrant.ProviderConfig, deps Deps) (Provider, error) {
		var s S
		if err := Decode(cfg, &s); err != nil {
			return nil, err
		}
		return open(ctx, cfg, s, deps)
	}
}

// Decode reads a provider entry's settings into the provider's own
// settings struct (see the package comment on typed settings). It is
// strict: a key the struct has no field for, or a value of another type,
// is an error naming the setting. The type's schema has refused both
// when gitgrant.yaml was loaded; Decode holds a config built any other way
// (tests, a future API) to the same rules.
func Decode(cfg gitgrant.ProviderConfig, into any) error {
	raw, err := json.Marshal(cfg.Settings)
	if err != nil {
		return fmt.Errorf("provider %s: settings: %w", cfg.Name, err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	err = dec.Decode(into)
	var typeErr *json.UnmarshalTypeError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &typeErr):
		return fmt.Errorf("provider %s: setting %s must be %s, not %s", cfg.Name, typeErr.Field, kindOf(typeErr.Type.Kind().String()), typeErr.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return fmt.Errorf("provider %s: unknown setting %s (see gitgrant schema provider %s)", cfg.Name, strings.TrimPrefix(err.Error(), "json: unknown field "), cfg.Type)
	}
	return fmt.Errorf("provider %s: settings: %w", cfg.Name, err)
}

// kindOf names a Go kind the way gitgrant.yaml's author knows it.
func kindOf(kind string) string {
	switch {
	case strings.HasPrefix(kind, "int"), strings.HasPrefix(kind, "uint"):
		return "a whole number"
	case strings.HasPrefix(kind, "float"):
		return "a number"
	case kind == "bool":
		return "true or false"
	case kind == "string":
		return "a string"
	case kind == "slice":
		return "a list"
	case kind == "map", kind == "struct":
		return "a mapping"
	}
	return "a " + kind
}

// SecretRef is a secret setting, given by reference as every secret in
// gitgrant.yaml is: Name_env names an environment variable, Name_file a
// file whose content (trailing newline trimmed) is the secret. A settings
// struct has the two fields; the provider makes the SecretRef from them.
type SecretRef struct {
	Name, Env, File string
}

// Set says whether the secret is configured at all.
func (r SecretRef) Set() bool { return r.Env != "" || r.File != "" }

// Read resolves the secret. Its errors name the setting and the variable
// or file, never the secret.
func (r SecretRef) Read(provider string, deps Deps) (string, error) {
	switch {
	case r.Env != "" && r.File != "":
		return "", fmt.Errorf("provider %s: set %s_env or %s_file, not both", provider, r.Name, r.Name)
	case r.Env != "":
		s := deps.Getenv(r.Env)
		if s == "" {
			return "", fmt.Errorf("provider %s: environment variable %s (from %s_env) is not set", provider, r.Env, r.Name)
		}
		return s, nil
	case r.File != "":
		b, err := deps.ReadFile(r.File)
		if err != nil {
			return "", fmt.Errorf("provider %s: reading %s_file: %w", provider, r.Name, err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	return "", fmt.Errorf("provider %s: set %s_env or %s_file", provider, r.Name, r.Name)
}

// Named formats the errors of one provider entry, which all start
// "provider NAME: ".
type Named string

// Errorf formats an error of the provider.
func (n Named) Errorf(format string, args ...any) error {
	return fmt.Errorf("provider %s: %w", string(n), fmt.Errorf(format, args...))
}

// ParseWait reads a duration setting written as a Go duration (30s, 5m),
// or returns def when it is empty. A negative wait is refused.
func ParseWait(provider, key, value string, def time.Duration) (time.Duration, error) {
	if value == "" {
		return def, nil
	}
	d, err := time.ParseDuration(value)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("provider %s: setting %s must be a duration such as 5m, not %q", provider, key, value)
	}
	return d, nil
}

// DeclaredTarget returns role's target in cfg, refusing a role that
// gitgrant.yaml does not declare (ErrNotFound): a provider manages only
// the roles declared for it.
func DeclaredTarget(cfg gitgrant.ProviderConfig, role string) (string, error) {
	if _, ok := cfg.Roles[role]; !ok {
		return "", fmt.Errorf("provider %s: role %q is not declared in gitgrant.yaml: %w", cfg.Name, role, ErrNotFound)
	}
	return cfg.RoleTarget(role), nil
}

// ValidTarget is DeclaredTarget for a provider whose targets have a form
// of their own: a target that valid refuses is ErrInvalidName, saying that
// it is not what ("a team slug").
func ValidTarget(cfg gitgrant.ProviderConfig, role string, valid func(string) bool, what string) (string, error) {
	target, err := DeclaredTarget(cfg, role)
	if err != nil {
		return "", err
	}
	if !valid(target) {
		return "", fmt.Errorf("provider %s: role %s: %q is not %s: %w", cfg.Name, role, target, what, ErrInvalidName)
	}
	return target, nil
}

// CheckTargets checks every declared role's target with valid as the
// provider opens, in role order, so that a bad target is refused before
// anything runs.
func CheckTargets(cfg gitgrant.ProviderConfig, valid func(string) error) error {
	for _, role := range slices.Sorted(maps.Keys(cfg.Roles)) {
		if err := valid(cfg.RoleTarget(role)); err != nil {
			return fmt.Errorf("provider %s: role %s: target: %w", cfg.Name, role, err)
		}
	}
	return nil
}

// Choice reads a setting that is one of a few words: value must be one of
// choices, and empty is the first of them, the default.
func Choice(provider, key, value string, choices ...string) (string, error) {
	if value == "" {
		return choices[0], nil
	}
	if slices.Contains(choices, value) {
		return value, nil
	}
	list := strings.Join(choices[:len(choices)-1], ", ") + " or " + choices[len(choices)-1]
	return "", fmt.Errorf("provider %s: setting %s must be %s, not %q", provider, key, list, value)
}

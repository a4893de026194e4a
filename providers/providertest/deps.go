package providertest

import (
	"maps"
	"os"
	"testing"

	"crypto/rand"
	"encoding/hex"
	"fmt"
	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/providers"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// Deps are a provider's surroundings in a test: the environment variables
// and files given and no others, on clock (nil: the wall clock), logging
// nowhere.
func Deps(env, files map[string]string, clock gitgrant.Clock) providers.Deps {
	d := providers.DefaultDeps()
	d.Getenv = func(k string) string { return env[k] }
	d.ReadFile = func(name string) ([]byte, error) {
		if b, ok := files[name]; ok {
			return []byte(b), nil
		}
		return nil, os.ErrNotExist
	}
	if clock != nil {
		d.Clock = clock
	}
	return d
}

// Open opens a provider with factory, fails the test when it cannot, and
// closes it when the test ends.
func Open(t testing.TB, factory providers.Factory, cfg gitgrant.ProviderConfig, deps providers.Deps) providers.Provider {
	t.Helper()
	p, err := factory(t.Context(), cfg, deps)
	if err != nil {
		t.Fatalf("Open(%s): %v", cfg.Name, err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// UniquePrefix is a prefix for the names one test makes on a shared
// server ("gg" and eight hex digits), so that parallel tests and earlier
// runs never meet.
func UniquePrefix() string {
	b := make([]byte, 4)
	rand.Read(b)
	return "gg" + hex.EncodeToString(b)
}

// Config is a provider entry named name of type typ that declares a role
// for each target (role -> target), with settings: the keys of each map,
// a later map's over an earlier's.
func Config(typ, name string, targets map[string]string, settings ...map[string]any) gitgrant.ProviderConfig {
	cfg := gitgrant.ProviderConfig{Name: name, Type: typ, Roles: map[string]gitgrant.RoleConfig{}, Settings: map[string]any{}}
	for role, target := range targets {
		cfg.Roles[role] = gitgrant.RoleConfig{Target: target}
	}
	for _, m := range settings {
		maps.Copy(cfg.Settings, m)
	}
	return cfg
}

// Numbered is n principal names, format filled with 0, 1, ... n-1
// ("dev%02d@example.com"), and then extra.
func Numbered(format string, n int, extra ...string) []string {
	out := make([]string, 0, n+len(extra))
	for i := range n {
		out = append(out, fmt.Sprintf(format, i))
	}
	return append(out, extra...)
}

// CheckMembers checks that p lists want, in that order, as role's
// members, and fails the test when it cannot list them.
func CheckMembers(t testing.TB, p providers.Provider, role string, want []string) {
	t.Helper()
	ms, err := p.Members(t.Context(), role)
	if err != nil {
		t.Fatalf("Members(%s): %v", role, err)
	}
	got := make([]string, 0, len(ms))
	for _, m := range ms {
		got = append(got, m.Principal)
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("Members(%s) (-want +got):\n%s", role, diff)
	}
}

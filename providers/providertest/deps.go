package providertest

import (
	"os"
	"testing"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/providers"
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

package providertest

import (
	"maps"
	"testing"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/providers"
)

// Refusal is a change to good settings that Open must refuse, and a part
// of the error it must give.
type Refusal struct {
	Name string
	// Settings are set over the good ones; a nil value deletes the key.
	Settings map[string]any
	Says     string
}

// CheckRefusals opens good, changed by each refusal, with open, and checks
// that it fails saying what the refusal says and quoting none of secrets.
func CheckRefusals(t *testing.T, good gitgrant.ProviderConfig, open func(gitgrant.ProviderConfig) (providers.Provider, error), refusals []Refusal, secrets ...string) {
	t.Helper()
	for _, r := range refusals {
		t.Run(r.Name, func(t *testing.T) {
			t.Parallel()
			cfg := good
			cfg.Settings = maps.Clone(good.Settings)
			for k, v := range r.Settings {
				if v == nil {
					delete(cfg.Settings, k)
				} else {
					cfg.Settings[k] = v
				}
			}
			p, err := open(cfg)
			if err == nil {
				p.Close()
				t.Fatalf("Open accepted %v", r.Settings)
			}
			CheckFailure(t, "Open", err, Failure{Says: r.Says}, secrets...)
		})
	}
}

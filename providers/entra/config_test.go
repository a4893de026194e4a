package entra

import (
	"testing"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/providers"
	"github.com/gitgrant/gitgrant/providers/providertest"
)

// TestConfigFromYAML: settings the schema accepts open a provider, and
// the schema refuses what Open would (an inline secret, an unknown key).
func TestConfigFromYAML(t *testing.T) {
	t.Parallel()
	d := providertest.Deps(map[string]string{"ENTRA_CLIENT_SECRET": testSecret}, map[string]string{"/run/secrets/entra-gitgrant": testSecret + "\n"}, nil)
	open := func(cfg gitgrant.ProviderConfig) (providers.Provider, error) { return Open(t.Context(), cfg, d) }
	providertest.ConfigFromYAML(t, "testdata/gitgrant.yaml", open,
		providertest.Edit{Name: "inline client secret", Old: "client_secret_env: ENTRA_CLIENT_SECRET", New: "client_secret: abc~def"},
		providertest.Edit{Name: "unknown setting", Old: "pim: true", New: "pim: true\n    pim_policy: x"},
		providertest.Edit{Name: "principal by mail", Old: "principal: userPrincipalName", New: "principal: mail"},
		providertest.Edit{Name: "pim as a string", Old: "pim: true", New: "pim: \"yes\""},
	)
}

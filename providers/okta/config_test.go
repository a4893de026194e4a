package okta

import (
	"testing"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/providers"
	"github.com/gitgrant/gitgrant/providers/internal/httpapitest"
	"github.com/gitgrant/gitgrant/providers/providertest"
)

// TestConfigFromYAML: settings the schema accepts open a provider, and
// the schema refuses what Open would (an inline token, an unknown key).
func TestConfigFromYAML(t *testing.T) {
	t.Parallel()
	d := deps(nil)
	_, pemKey := httpapitest.RSAKey()
	d.ReadFile = providertest.Deps(nil, map[string]string{"/run/secrets/okta-gitgrant.pem": pemKey}, nil).ReadFile
	open := func(cfg gitgrant.ProviderConfig) (providers.Provider, error) { return Open(t.Context(), cfg, d) }
	providertest.ConfigFromYAML(t, "testdata/gitgrant.yaml", open,
		providertest.Edit{Name: "inline API token", Old: "api_token_env: OKTA_API_TOKEN", New: "api_token: 00abcdef"},
		providertest.Edit{Name: "unknown setting", Old: "principal: login", New: "principal: login\n    group_prefix: x"},
		providertest.Edit{Name: "principal by id", Old: "principal: login", New: "principal: id"},
	)
}

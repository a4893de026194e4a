package engine

import (
	"maps"
	"slices"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/providers"
)

// canonicalPrincipals returns cfg with every principal it names for a
// provider that implements providers.Canonicalizer (identities and
// standing entries) written the way that provider's Members reports it.
// Without this, 'alice'@'%' in gitgrant.yaml and alice from MySQL are two
// principals to the diff, revoked and granted again on every pass.
//
// cfg itself is not changed (it may be cached); a principal the provider
// cannot read is left as written, for Grant to refuse with its reason.
func canonicalPrincipals(cfg *gitgrant.Config, open map[string]providers.Provider) *gitgrant.Config {
	canon := map[string]providers.Canonicalizer{}
	for name, p := range open {
		if c, ok := p.(providers.Canonicalizer); ok {
			canon[name] = c
		}
	}
	if len(canon) == 0 {
		return cfg
	}
	spell := func(provider, principal string) string {
		if s, err := canon[provider].CanonicalPrincipal(principal); err == nil {
			return s
		}
		return principal
	}
	out := *cfg
	out.Identities = make(map[string]gitgrant.Identity, len(cfg.Identities))
	for login, id := range cfg.Identities {
		id.Principals = maps.Clone(id.Principals)
		for provider, principal := range id.Principals {
			if canon[provider] != nil {
				id.Principals[provider] = spell(provider, principal)
			}
		}
		out.Identities[login] = id
	}
	out.Providers = maps.Clone(cfg.Providers)
	for name := range canon {
		pc, ok := out.Providers[name]
		if !ok {
			continue
		}
		pc.Standing = slices.Clone(pc.Standing)
		for i := range pc.Standing {
			pc.Standing[i].Principal = spell(name, pc.Standing[i].Principal)
		}
		out.Providers[name] = pc
	}
	return &out
}

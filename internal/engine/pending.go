package engine

import (
	"maps"
	"slices"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/trust"
)

// standingUnderPending narrows the standing entries of cfg, the verified
// configuration in force, to those that every newer policy change GitHub
// could not be asked about also keeps. Such a change may yet prove
// verified (a process that asked before a slow GitHub had it in force):
// until then it cannot loosen anything, and it must not let the older
// policy loosen what it tightened either. Without this, a fresh process
// under a slow GitHub fell back to the policy before a verified change
// that removed a standing entry, and a member granted by hand kept the
// role (simulation seed 23). Members who lose standing this way are
// drift: revoked, under the removal brake. A pending change whose
// gitgrant.yaml does not load could never be in force and narrows
// nothing.
func standingUnderPending(cfg *gitgrant.Config, rep trust.Report, load func(trust.State) *gitgrant.Config) *gitgrant.Config {
	if cfg == nil {
		return nil
	}
	var pending []*gitgrant.Config
	for _, u := range rep.Unverified {
		if !u.Unknown {
			continue
		}
		if pc := load(u.State); pc != nil {
			pending = append(pending, pc)
		}
	}
	if len(pending) == 0 {
		return cfg
	}
	out := *cfg // shared with the parse cache: copied, never changed
	out.Providers = maps.Clone(cfg.Providers)
	for name, prov := range out.Providers {
		var kept []gitgrant.Standing
		for _, s := range prov.Standing {
			roles := s.Roles
			keep := true
			for _, pc := range pending {
				other, ok := pc.Providers[name]
				if !ok {
					keep = false
					break
				}
				if roles, keep = keptRoles(s, roles, prov, &other); !keep {
					break
				}
			}
			if keep {
				kept = append(kept, gitgrant.Standing{Principal: s.Principal, Roles: roles})
			}
		}
		prov.Standing = kept
		out.Providers[name] = prov
	}
	return &out
}

// keptRoles is what of standing entry s (narrowed so far to roles, empty
// for every role) the pending provider config other keeps standing.
func keptRoles(s gitgrant.Standing, roles []string, prov gitgrant.ProviderConfig, other *gitgrant.ProviderConfig) ([]string, bool) {
	if len(roles) == 0 {
		roles = slices.Sorted(maps.Keys(prov.Roles))
		if other.IsStanding(s.Principal, "") { // an entry for every role
			return s.Roles, true // every role, there too
		}
	}
	var out []string
	for _, r := range roles {
		if other.IsStanding(s.Principal, r) {
			out = append(out, r)
		}
	}
	return out, len(out) > 0
}

package schema

import (
	"fmt"
	"sort"
	"strings"

	"github.com/gitgrant/gitgrant"
)

// ephemeralType is what a provider type that implements ephemeral
// accounts (providers.Ephemeral) allows of their names and settings.
type ephemeralType struct {
	// maxLogin is the longest login name the system takes.
	maxLogin int
	// onOwned: the system lets an account own objects that can be
	// reassigned, so on_owned means something.
	onOwned bool
}

// ephemeralTypes are the provider types with `mode: ephemeral`. The
// providers' tests check that these limits are theirs.
var ephemeralTypes = map[string]ephemeralType{
	// NAMEDATALEN-1: PostgreSQL would truncate a longer name.
	"postgres": {maxLogin: 63, onOwned: true},
	// MySQL 8 takes 32 characters (MariaDB 80); tables have no owner,
	// and stored objects' DEFINER cannot be reassigned.
	"mysql": {maxLogin: 32},
}

// EphemeralMaxLogin is the longest login name the ephemeral accounts of
// provider type typ may have; ok is false for a type without ephemeral
// accounts.
func EphemeralMaxLogin(typ string) (maxLogin int, ok bool) {
	t, ok := ephemeralTypes[typ]
	return t.maxLogin, ok
}

// EphemeralTypes lists the provider types with ephemeral accounts, sorted.
func EphemeralTypes() []string {
	out := make([]string, 0, len(ephemeralTypes))
	for t := range ephemeralTypes {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// checkEphemeral checks the ephemeral settings of provider p's roles: only
// types that can, names the system takes, one prefix per role.
func checkEphemeral(d *doc, name string, p gitgrant.ProviderConfig) gitgrant.Diagnostics {
	var out gitgrant.Diagnostics
	add := func(field, msg, hint string) {
		out = append(out, gitgrant.Diagnostic{Position: d.at(field), Severity: gitgrant.SeverityError, Field: field, Message: msg, Hint: hint})
	}
	typ, capable := ephemeralTypes[p.Type]
	prefixOwner := map[string]string{}
	for _, rn := range sortedKeys(p.Roles) {
		r := p.Roles[rn]
		rf := fmt.Sprintf("providers.%s.roles.%s", name, rn)
		if r.Mode != gitgrant.ModeEphemeral {
			for key, set := range map[string]bool{"account_prefix": r.AccountPrefix != "", "on_owned": r.OnOwned != ""} {
				if set {
					add(rf+"."+key, key+" applies only to roles with mode: ephemeral", "add mode: ephemeral, or remove "+key)
				}
			}
			continue
		}
		if !capable {
			add(rf+".mode", fmt.Sprintf("provider type %s has no ephemeral accounts (types that do: %s)", p.Type, strings.Join(EphemeralTypes(), ", ")),
				"remove mode: ephemeral: the requester's own principal is granted the role")
			continue
		}
		prefix := p.RoleAccountPrefix(rn)
		field := rf + ".account_prefix"
		if r.AccountPrefix == "" {
			field = rf + ".mode"
		}
		if err := gitgrant.CheckAccountPrefix(prefix, typ.maxLogin); err != nil {
			add(field, err.Error(), "set account_prefix to a shorter prefix such as gg_"+firstLetters(rn)+"_")
		}
		if other, dup := prefixOwner[prefix]; dup {
			add(field, fmt.Sprintf("role %s's accounts would start with %q, as role %s's do", rn, prefix, other),
				"give each ephemeral role its own account_prefix: gitgrant drops an account that no request of its role explains")
		}
		prefixOwner[prefix] = rn
		if r.OnOwned != "" && !typ.onOwned {
			add(rf+".on_owned", fmt.Sprintf("%s accounts own no objects that can be reassigned: an account that is the DEFINER of a view, routine, trigger or event is never dropped while it is", p.Type),
				"remove on_owned")
		}
	}
	return out
}

// firstLetters abbreviates a role name for a suggested prefix.
func firstLetters(role string) string {
	p := strings.TrimSuffix(strings.TrimPrefix(gitgrant.DefaultAccountPrefix(role), "gg_"), "_")
	if len(p) > 8 {
		p = p[:8]
	}
	return strings.Trim(p, "_")
}

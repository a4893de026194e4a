package schema

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/handoff"
)

// commonProviderKeys are the keys every provider entry has; the rest are
// the type's own settings, validated by the type's schema.
var commonProviderKeys = map[string]bool{"type": true, "roles": true, "standing": true, "drift": true, "call_timeout": true}

// DefaultBreakGlassMaxDuration applies when policy.break_glass sets members
// but no max_duration: emergencies are short unless the policy says otherwise.
const DefaultBreakGlassMaxDuration = gitgrant.Duration(1 * 60 * 60 * 1e9)

// LoadConfig parses gitgrant.yaml. It returns the config only when it has no
// errors: a config that cannot be trusted must never be used to judge
// requests or to compute what access should exist.
func LoadConfig(path string, data []byte) (*gitgrant.Config, gitgrant.Diagnostics) {
	d := parseDoc(path, data, configDocOptions)
	if d.value == nil || d.diags.HasErrors() {
		return nil, d.diags
	}
	m := d.value.(map[string]any)
	diags := d.diags

	secretPaths := map[string]bool{}
	for _, s := range findInlineSecrets(d, m) {
		secretPaths[s.Field] = true
		diags = append(diags, s)
	}
	keep := func(ds gitgrant.Diagnostics) {
		for _, x := range ds {
			if !secretPaths[x.Field] {
				diags = append(diags, x)
			}
		}
	}

	c := load("config.schema.json")
	keep(diagnoser{c: c, d: d}.run(c.validate(m)))

	providers, _ := m["providers"].(map[string]any)
	for _, name := range sortedKeys(providers) {
		pm, ok := providers[name].(map[string]any)
		if !ok {
			continue
		}
		typ, ok := pm["type"].(string)
		if !ok {
			continue
		}
		field := join("providers."+name, "type")
		ts, known := providerSchema(typ)
		if !known {
			hint := "known types: " + strings.Join(ProviderTypes(), ", ")
			if s := suggest(typ, ProviderTypes()); s != "" {
				hint = fmt.Sprintf("did you mean %q? (%s)", s, hint)
			}
			diags = append(diags, gitgrant.Diagnostic{Position: d.at(field), Severity: gitgrant.SeverityError, Field: field,
				Message: fmt.Sprintf("unknown provider type %q", typ), Hint: hint})
			continue
		}
		keep(diagnoser{c: ts, d: d, prefix: "providers." + name}.run(ts.validate(providerSettings(pm))))
	}

	cfg := buildConfig(m)
	if diags.HasErrors() {
		diags.Sort()
		return nil, diags
	}
	diags = append(diags, checkConfig(d, cfg)...)
	diags.Sort()
	if diags.HasErrors() {
		return nil, diags
	}
	cfg.Positions = make(map[string]gitgrant.Position, len(d.fields))
	for k, fp := range d.fields {
		cfg.Positions[k] = fp.value
	}
	return cfg, diags
}

func providerSchema(typ string) (*compiled, bool) {
	b, ok := ProviderSchema(typ)
	if !ok {
		return nil, false
	}
	return loadBytes("provider "+typ, b), true
}

func providerSettings(pm map[string]any) map[string]any {
	out := make(map[string]any, len(pm))
	for k, v := range pm {
		if !commonProviderKeys[k] {
			out[k] = v
		}
	}
	return out
}

// buildConfig maps schema-valid values onto the domain types. It tolerates
// invalid input (zero values) because it also runs before errors are known.
func buildConfig(m map[string]any) *gitgrant.Config {
	cfg := &gitgrant.Config{Version: 1, Identities: map[string]gitgrant.Identity{}, Providers: map[string]gitgrant.ProviderConfig{}}
	if v, ok := m["version"]; ok {
		fmt.Sscan(fmt.Sprint(v), &cfg.Version)
	}
	pol, _ := m["policy"].(map[string]any)
	cfg.Policy.MaxDuration = durationOf(pol["max_duration"])
	cfg.Policy.TicketPattern, _ = pol["ticket_pattern"].(string)
	cfg.Policy.AllowOnBehalf, _ = pol["allow_on_behalf"].(bool)
	fmt.Sscan(fmt.Sprint(pol["min_reason_length"]), &cfg.Policy.MinReasonLength)
	switch r := pol["reminder"]; r {
	case nil:
	case "off":
		cfg.Policy.Reminder = -1
	default:
		cfg.Policy.Reminder = durationOf(r)
	}
	bg, _ := pol["break_glass"].(map[string]any)
	cfg.Policy.BreakGlass.Members = stringList(bg["members"])
	cfg.Policy.BreakGlass.MaxDuration = durationOf(bg["max_duration"])
	if len(cfg.Policy.BreakGlass.Members) > 0 && cfg.Policy.BreakGlass.MaxDuration == 0 {
		cfg.Policy.BreakGlass.MaxDuration = DefaultBreakGlassMaxDuration
	}

	ids, _ := m["identities"].(map[string]any)
	for login, v := range ids {
		im, _ := v.(map[string]any)
		id := gitgrant.Identity{Principals: map[string]string{}}
		id.Email, _ = im["email"].(string)
		id.SSHKeys = stringList(im["ssh_keys"])
		pr, _ := im["principals"].(map[string]any)
		for p, name := range pr {
			if s, ok := name.(string); ok {
				id.Principals[p] = s
			}
		}
		cfg.Identities[login] = id
	}

	provs, _ := m["providers"].(map[string]any)
	for name, v := range provs {
		pm, _ := v.(map[string]any)
		pc := gitgrant.ProviderConfig{Name: name, Roles: map[string]gitgrant.RoleConfig{}, Drift: gitgrant.DriftRevoke, Settings: providerSettings(pm)}
		pc.Type, _ = pm["type"].(string)
		if s, ok := pm["drift"].(string); ok {
			pc.Drift = gitgrant.DriftMode(s)
		}
		if s, ok := pm["call_timeout"].(string); ok {
			pc.CallTimeout, _ = time.ParseDuration(s) // the schema checked the syntax
		}
		roles, _ := pm["roles"].(map[string]any)
		for rn, rv := range roles {
			rm, _ := rv.(map[string]any)
			rc := gitgrant.RoleConfig{MaxDuration: durationOf(rm["max_duration"]), Approvers: stringList(rm["approvers"])}
			fmt.Sscan(fmt.Sprint(rm["approvals"]), &rc.Approvals)
			if s, ok := rm["drift"].(string); ok {
				rc.Drift = gitgrant.DriftMode(s)
			}
			rc.Target, _ = rm["target"].(string)
			rc.Mode, _ = rm["mode"].(string)
			rc.AccountPrefix, _ = rm["account_prefix"].(string)
			rc.OnOwned, _ = rm["on_owned"].(string)
			pc.Roles[rn] = rc
		}
		standing, _ := pm["standing"].([]any)
		for _, s := range standing {
			switch s := s.(type) {
			case string:
				pc.Standing = append(pc.Standing, gitgrant.Standing{Principal: s})
			case map[string]any:
				p, _ := s["principal"].(string)
				pc.Standing = append(pc.Standing, gitgrant.Standing{Principal: p, Roles: stringList(s["roles"])})
			}
		}
		cfg.Providers[name] = pc
	}
	cl, _ := m["cleanup"].(map[string]any)
	cfg.Cleanup.Mode = gitgrant.CleanupPush
	if s, ok := cl["mode"].(string); ok {
		cfg.Cleanup.Mode = gitgrant.CleanupMode(s)
	}
	return cfg
}

func durationOf(v any) gitgrant.Duration {
	s, _ := v.(string)
	d, _ := gitgrant.ParseDuration(s)
	return d
}

func stringList(v any) []string {
	list, _ := v.([]any)
	var out []string
	for _, x := range list {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// checkConfig finds what the schema cannot: references between sections,
// caps that contradict each other, patterns that do not compile.
func checkConfig(d *doc, cfg *gitgrant.Config) gitgrant.Diagnostics {
	var out gitgrant.Diagnostics
	add := func(sev gitgrant.Severity, field, msg, hint string) {
		pos := d.at(field)
		if strings.Contains(field, ".principals.") || strings.HasPrefix(field, "identities.") && strings.Count(field, ".") == 1 {
			pos = d.keyAt(field) // the name is what is wrong, not the value
		}
		out = append(out, gitgrant.Diagnostic{Position: pos, Severity: sev, Field: field, Message: msg, Hint: hint})
	}
	if cfg.Version > gitgrant.CurrentVersion {
		add(gitgrant.SeverityError, "version", fmt.Sprintf("format version %d is newer than this gitgrant understands (%d)", cfg.Version, gitgrant.CurrentVersion), "upgrade gitgrant")
	}
	if p := cfg.Policy.TicketPattern; p != "" {
		if _, err := regexp.Compile(p); err != nil {
			add(gitgrant.SeverityError, "policy.ticket_pattern", "is not a valid regular expression: "+err.Error(), "use Go (RE2) syntax, such as '[A-Z]+-[0-9]+'")
		}
	}
	for _, k := range []string{"policy.max_duration", "policy.break_glass.max_duration"} {
		if _, set := d.fields[k]; set && durationOfField(d, k) == 0 {
			add(gitgrant.SeverityError, k, "must be longer than zero", "write a positive duration such as 4h")
		}
	}

	lowered := map[string]string{}
	principalOwner := map[string]string{} // provider\x00principal -> login
	emailOwner := map[string]string{}
	for _, login := range sortedKeys(cfg.Identities) {
		field := "identities." + login
		if other, dup := lowered[strings.ToLower(login)]; dup {
			add(gitgrant.SeverityError, field, fmt.Sprintf("identity %q differs from %q only in case", login, other), "GitHub logins ignore case: keep one entry")
		}
		lowered[strings.ToLower(login)] = login
		id := cfg.Identities[login]
		if e := strings.ToLower(id.Email); e != "" {
			if other, dup := emailOwner[e]; dup {
				add(gitgrant.SeverityError, field+".email", fmt.Sprintf("email %s is also %s's", id.Email, other),
					"each email belongs to one identity: providers that name people by email would give one person's grant to the other")
			}
			emailOwner[e] = login
		}
		for _, prov := range sortedKeys(id.Principals) {
			pf := field + ".principals." + prov
			if _, ok := cfg.Providers[prov]; !ok {
				hint := "declare the provider under providers:, or remove this principal"
				if s := suggest(prov, sortedKeys(cfg.Providers)); s != "" {
					hint = fmt.Sprintf("did you mean %q?", s)
				}
				add(gitgrant.SeverityError, pf, fmt.Sprintf("principal for undeclared provider %q", prov), hint)
				continue
			}
			key := prov + "\x00" + id.Principals[prov]
			if owner, taken := principalOwner[key]; taken {
				add(gitgrant.SeverityError, pf, fmt.Sprintf("principal %q on %s is also %s's", id.Principals[prov], prov, owner),
					"each principal belongs to one identity, or one person's grant would be another's")
			}
			principalOwner[key] = login
		}
		for i, k := range id.SSHKeys {
			if err := handoff.CheckKey(k); err != nil {
				add(gitgrant.SeverityError, fmt.Sprintf("%s.ssh_keys.%d", field, i), "cannot receive the secrets of ephemeral accounts: "+err.Error(),
					"list an ssh-ed25519 key (or ssh-rsa of 2048 bits or more) as the .pub file or GitHub shows it")
			}
		}
	}

	for _, name := range sortedKeys(cfg.Providers) {
		p := cfg.Providers[name]
		for _, rn := range sortedKeys(p.Roles) {
			r := p.Roles[rn]
			rf := fmt.Sprintf("providers.%s.roles.%s", name, rn)
			if _, set := d.fields[rf+".max_duration"]; set && r.MaxDuration == 0 {
				add(gitgrant.SeverityError, rf+".max_duration", "must be longer than zero", "write a positive duration such as 4h")
			}
			if pm := cfg.Policy.MaxDuration; pm > 0 && r.MaxDuration > pm {
				add(gitgrant.SeverityWarning, rf+".max_duration", fmt.Sprintf("role allows %s but policy.max_duration caps every grant at %s", r.MaxDuration, pm),
					"lower the role's max_duration, or raise the policy's")
			}
			if r.Approvals > 0 && len(r.Approvers) > 0 && !hasTeam(r.Approvers) && len(r.Approvers) < r.Approvals {
				add(gitgrant.SeverityError, rf+".approvals", fmt.Sprintf("needs %d approvals but only %d approver(s) are listed", r.Approvals, len(r.Approvers)),
					"list more approvers, add a team, or lower approvals")
			}
		}
		out = append(out, checkEphemeral(d, name, p)...)
		for i, s := range p.Standing {
			for _, role := range s.Roles {
				if _, ok := p.Roles[role]; !ok {
					add(gitgrant.SeverityError, fmt.Sprintf("providers.%s.standing.%d", name, i), fmt.Sprintf("standing entry names undeclared role %q", role),
						"declare the role under roles:, or remove it from the standing entry")
				}
			}
		}
	}
	return out
}

func durationOfField(d *doc, path string) gitgrant.Duration {
	parts := strings.Split(path, ".")
	var cur any = d.value
	for _, p := range parts {
		m, ok := cur.(map[string]any)
		if !ok {
			return 0
		}
		cur = m[p]
	}
	return durationOf(cur)
}

func hasTeam(list []string) bool {
	for _, s := range list {
		if len(s) > 0 && s[0] == '@' {
			return true
		}
	}
	return false
}

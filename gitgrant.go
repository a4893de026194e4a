// Package gitgrant holds the domain of a GitOps access-request reconciler:
// request files, the configuration that judges them, and the small types the
// other packages exchange. It has no dependencies on git, GitHub or any target
// system; those live in their own packages.
package gitgrant

import (
	"strings"
	"time"
)

// Paths and limits that define the layout of an access repository.
const (
	// ConfigPath is the configuration file at the repository root.
	ConfigPath = "gitgrant.yaml"
	// RequestsDir holds request files, one folder per provider.
	RequestsDir = "requests"
	// MaxFileSize bounds every file gitgrant parses; larger files are
	// rejected before any YAML is read.
	MaxFileSize = 64 << 10
	// CurrentVersion is the newest format version this build understands.
	CurrentVersion = 1
)

// GrantRef names one role on one provider, as written in a request.
type GrantRef struct {
	Provider string `json:"provider"`
	Role     string `json:"role"`
}

// Name is "provider/role", as output, trailers and reports name a grant.
func (g GrantRef) Name() string { return g.Provider + "/" + g.Role }

// GrantNames are the grants' names, in order.
func GrantNames(gs []GrantRef) []string {
	out := make([]string, len(gs))
	for i, g := range gs {
		out[i] = g.Name()
	}
	return out
}

// Request is one request file, decoded and structurally valid. Times are
// zero when absent; exactly one of Duration and Expires is set.
type Request struct {
	Path      string     `json:"path"`
	Version   int        `json:"version"`
	Requester string     `json:"requester"`
	Subject   string     `json:"subject,omitempty"`
	Grants    []GrantRef `json:"grants"`
	Duration  Duration   `json:"duration,omitempty"`
	Expires   time.Time  `json:"expires,omitzero"`
	Starts    time.Time  `json:"starts,omitzero"`
	Reason    string     `json:"reason"`
	Ticket    string     `json:"ticket,omitempty"`
	Emergency bool       `json:"emergency,omitempty"`

	// Positions of fields in the source file, keyed by field path such as
	// "requester" or "grants.0.role", so that later checks (policy,
	// approvals) can point at the line a person has to change.
	Positions map[string]Position `json:"-"`
}

// Beneficiary is the login whose principals receive the grants: the subject
// when the request is on behalf of someone else, otherwise the requester.
func (r *Request) Beneficiary() string {
	if r.Subject != "" {
		return r.Subject
	}
	return r.Requester
}

// Pos returns the position of a field, falling back to the file start.
func (r *Request) Pos(field string) Position {
	if p, ok := r.Positions[field]; ok {
		return p
	}
	return Position{File: r.Path, Line: 1, Column: 1}
}

// Config is gitgrant.yaml: the policy that judges requests, who is who, and
// the providers access is granted on.
type Config struct {
	Version    int                       `json:"version"`
	Policy     Policy                    `json:"policy"`
	Identities map[string]Identity       `json:"identities"`
	Providers  map[string]ProviderConfig `json:"providers"`
	Cleanup    Cleanup                   `json:"cleanup"`

	Positions map[string]Position `json:"-"`
}

// Policy holds organisation-wide rules that apply to every request.
type Policy struct {
	// MaxDuration caps every grant, whatever its role allows. Zero: no cap.
	MaxDuration Duration `json:"max_duration,omitempty"`
	// TicketPattern, when set, makes a ticket mandatory and must match it
	// (anchored at both ends).
	TicketPattern string `json:"ticket_pattern,omitempty"`
	// AllowOnBehalf lets a requester ask for access for another identity
	// (a service account or an outside person) through `subject`.
	AllowOnBehalf bool `json:"allow_on_behalf"`
	// MinReasonLength is the fewest characters a reason must have, counted
	// as ReasonLength does. Zero: no minimum beyond the format's.
	MinReasonLength int `json:"min_reason_length,omitempty"`
	// Reminder is how long before a window ends its requester is told, on
	// the pull request, with the command to extend it; zero means
	// DefaultReminder, negative never.
	Reminder   Duration   `json:"reminder,omitempty"`
	BreakGlass BreakGlass `json:"break_glass"`
}

// BreakGlass names who may file emergency requests, which are granted
// without prior approval for a short time and reviewed afterwards.
type BreakGlass struct {
	// Members are GitHub logins or "@org/team" references.
	Members     []string `json:"members,omitempty"`
	MaxDuration Duration `json:"max_duration,omitempty"`
}

// Identity maps a GitHub login to the names each provider knows it by.
type Identity struct {
	Email      string            `json:"email,omitempty"`
	Principals map[string]string `json:"principals,omitempty"`
	// SSHKeys are public keys in authorized_keys form ("ssh-ed25519
	// AAAA... comment"). When set, the secrets of ephemeral accounts are
	// encrypted to these instead of the keys GitHub lists for the login.
	SSHKeys []string `json:"ssh_keys,omitempty"`
}

// DriftMode says what happens to a member of a managed role that no active
// request or standing entry explains.
type DriftMode string

const (
	DriftRevoke DriftMode = "revoke"
	DriftReport DriftMode = "report"
)

// ProviderConfig is one entry of `providers:`. Settings holds the keys that
// belong to the provider type (connection details, secret references), as
// decoded YAML values; the provider package interprets them.
type ProviderConfig struct {
	Name     string                `json:"name"`
	Type     string                `json:"type"`
	Roles    map[string]RoleConfig `json:"roles"`
	Standing []Standing            `json:"standing,omitempty"`
	Drift    DriftMode             `json:"drift"`
	Settings map[string]any        `json:"settings,omitempty"`
	// CallTimeout bounds each call to the provider; zero means
	// DefaultCallTimeout.
	CallTimeout time.Duration `json:"call_timeout,omitempty"`
}

// DefaultReminder is how long before a window ends the requester is
// reminded when policy.reminder is unset.
const DefaultReminder = Duration(30 * time.Minute)

// ReminderLead is how long before a window ends its requester is reminded;
// zero: never.
func (p Policy) ReminderLead() time.Duration {
	switch {
	case p.Reminder < 0:
		return 0
	case p.Reminder == 0:
		return time.Duration(DefaultReminder)
	}
	return time.Duration(p.Reminder)
}

// DefaultCallTimeout bounds each provider call when call_timeout is unset:
// long enough for a slow API page, short enough that one hung system
// never holds a pass (rule 15).
const DefaultCallTimeout = 30 * time.Second

// Timeout is the deadline of one call to the provider.
func (p *ProviderConfig) Timeout() time.Duration {
	if p.CallTimeout > 0 {
		return p.CallTimeout
	}
	return DefaultCallTimeout
}

// RoleConfig is one role a provider manages.
type RoleConfig struct {
	// MaxDuration caps a grant of this role; zero means only the policy cap.
	MaxDuration Duration `json:"max_duration,omitempty"`
	// Approvals is the number of code-owner approvals a request needs.
	Approvals int `json:"approvals"`
	// Approvers, when set, restricts which code owners count: logins or
	// "@org/team" references.
	Approvers []string `json:"approvers,omitempty"`
	// Drift overrides the provider's drift mode for this role when set.
	Drift DriftMode `json:"drift,omitempty"`
	// Target is the role's name in the target system (a group role, a group
	// DN part, a team slug); empty means the role's own name.
	Target string `json:"target,omitempty"`
	// Mode is "" (the requester's own principal becomes a member of the
	// target) or ModeEphemeral (a login is created for each request, with
	// the target granted, and dropped when the request ends).
	Mode string `json:"mode,omitempty"`
	// AccountPrefix starts the name of every ephemeral account of the
	// role; empty means DefaultAccountPrefix(role). See ephemeral.go.
	AccountPrefix string `json:"account_prefix,omitempty"`
	// OnOwned says what dropping an ephemeral account does with objects
	// it owns: OnOwnedReassign (default) or OnOwnedRefuse.
	OnOwned string `json:"on_owned,omitempty"`
}

// Standing is a principal that may hold managed roles permanently.
// An empty Roles list means every role of the provider.
type Standing struct {
	Principal string   `json:"principal"`
	Roles     []string `json:"roles,omitempty"`
}

// CleanupMode says how expired request files leave the main branch.
type CleanupMode string

const (
	CleanupPush        CleanupMode = "push"
	CleanupPullRequest CleanupMode = "pull-request"
)

// Cleanup configures the commits that remove expired request files.
type Cleanup struct {
	Mode CleanupMode `json:"mode"`
}

// EffectiveMaxDuration is the tightest of the role and policy caps, or zero
// when neither sets one.
func (c *Config) EffectiveMaxDuration(provider, role string) Duration {
	limit := c.Policy.MaxDuration
	if p, ok := c.Providers[provider]; ok {
		if r, ok := p.Roles[role]; ok && r.MaxDuration > 0 && (limit == 0 || r.MaxDuration < limit) {
			limit = r.MaxDuration
		}
	}
	return limit
}

// GrantMaxDuration is the cap on one grant of req: EffectiveMaxDuration,
// tightened to the break-glass maximum for an emergency. Zero: no cap.
func (c *Config) GrantMaxDuration(req *Request, g GrantRef) Duration {
	limit := c.EffectiveMaxDuration(g.Provider, g.Role)
	if bg := c.Policy.BreakGlass.MaxDuration; req.Emergency && bg > 0 && (limit == 0 || bg < limit) {
		limit = bg
	}
	return limit
}

// RoleTarget is the name of role in the target system.
func (p *ProviderConfig) RoleTarget(role string) string {
	if r, ok := p.Roles[role]; ok && r.Target != "" {
		return r.Target
	}
	return role
}

// Identity finds the identity of a login. GitHub logins are
// case-insensitive, so an exact match is tried first, then one ignoring
// case; the returned key is the spelling used in gitgrant.yaml.
func (c *Config) Identity(login string) (string, Identity, bool) {
	if id, ok := c.Identities[login]; ok {
		return login, id, true
	}
	for k, id := range c.Identities {
		if strings.EqualFold(k, login) {
			return k, id, true
		}
	}
	return "", Identity{}, false
}

// PrincipalOf is the name provider knows an identity by: the identity's
// principals entry for it, or, for a provider whose `principal` setting is
// "email" (it names people by email address), the identity's email.
func (c *Config) PrincipalOf(id Identity, provider string) string {
	if p := id.Principals[provider]; p != "" {
		return p
	}
	if pc, ok := c.Providers[provider]; ok {
		if mode, _ := pc.Settings["principal"].(string); mode == "email" {
			return id.Email
		}
	}
	return ""
}

// RoleDrift is the drift mode in force for a role.
func (p *ProviderConfig) RoleDrift(role string) DriftMode {
	if r, ok := p.Roles[role]; ok && r.Drift != "" {
		return r.Drift
	}
	if p.Drift != "" {
		return p.Drift
	}
	return DriftRevoke
}

// IsStanding reports whether principal may hold role permanently.
func (p *ProviderConfig) IsStanding(principal, role string) bool {
	for _, s := range p.Standing {
		if s.Principal != principal {
			continue
		}
		if len(s.Roles) == 0 {
			return true
		}
		for _, r := range s.Roles {
			if r == role {
				return true
			}
		}
	}
	return false
}

// Window is the [start, end) of one grant of r once it reached main at
// merged: from the merge, or `starts` if later, for the duration or until
// `expires`, clamped to limit (zero: no cap). clamped says the cap cut it.
func (r *Request) Window(merged time.Time, limit Duration) (w Window, clamped bool) {
	start := merged
	if r.Starts.After(start) {
		start = r.Starts
	}
	end := r.Expires
	if r.Duration > 0 {
		end = start.Add(time.Duration(r.Duration))
	}
	if limit > 0 && end.Sub(start) > time.Duration(limit) {
		end, clamped = start.Add(time.Duration(limit)), true
	}
	if end.Before(start) {
		end = start
	}
	return Window{Start: start, End: end}, clamped
}

// IsEphemeral reports whether provider's role is granted through
// ephemeral accounts.
func (c *Config) IsEphemeral(provider, role string) bool {
	p, ok := c.Providers[provider]
	return ok && p.IsEphemeral(role)
}

// GrantPrincipal is who a grant of provider's role is for: the identity's
// principal there, or, for a role granted through ephemeral accounts
// (where no personal principal is needed), the GitHub login itself, which
// owns the account.
func (c *Config) GrantPrincipal(login string, id Identity, provider, role string) string {
	if p := c.PrincipalOf(id, provider); p != "" {
		return p
	}
	if c.IsEphemeral(provider, role) {
		return login
	}
	return ""
}

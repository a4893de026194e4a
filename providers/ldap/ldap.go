// Package ldap grants temporary membership of LDAP groups (groupOfNames or
// groupOfUniqueNames, as in OpenLDAP, 389 Directory Server and most
// directories): a role is a group found by a DN template, a principal is a
// member found by another. Result codes 20 (value exists) and 16 (no such
// value) are idempotent success, and a group's last member is replaced by
// a placeholder, because the schema forbids empty groups.
package ldap

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sync"

	"github.com/go-ldap/ldap/v3"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/providers"
)

// Type is the provider type in gitgrant.yaml.
const Type = "ldap"

// permissiveModify is the Permissive Modify control (OpenLDAP, Active
// Directory, 389 DS): adding a value that exists or deleting one that does
// not succeeds. Sent non-critical, so servers without it ignore it and the
// fallbacks on codes 20 and 16 apply.
const permissiveModify = "1.2.840.113556.1.4.1413"

// Provider manages the groups of one ldap provider entry.
type Provider struct {
	cfg         gitgrant.ProviderConfig
	groupDN     *dnTemplate
	memberDN    *dnTemplate
	attr        string // member or uniqueMember
	placeholder string
	placeholdDN *ldap.DN
	pool        *pool
	dialer      *dialer
	// withoutPlaceholder holds the DNs of groups last seen without the
	// placeholder (see placeholderGone).
	withoutPlaceholder sync.Map
}

var (
	_ providers.Provider = (*Provider)(nil)
	_ providers.Checker  = (*Provider)(nil)
)

// Settings are an ldap provider entry's settings in gitgrant.yaml, as
// ldap.schema.json beside this file describes them.
type Settings struct {
	URL              string `json:"url"`
	StartTLS         bool   `json:"start_tls"`
	CAFile           string `json:"ca_file"`
	BindDN           string `json:"bind_dn"`
	BindPasswordEnv  string `json:"bind_password_env"`
	BindPasswordFile string `json:"bind_password_file"`
	// GroupDN and MemberDN are DN templates with {role} and {principal}.
	GroupDN         string `json:"group_dn"`
	MemberDN        string `json:"member_dn"`
	MemberAttribute string `json:"member_attribute"`
	PlaceholderDN   string `json:"placeholder_dn"`
}

// Open opens an ldap provider. It validates the settings and reads the bind
// password, but connects only on first use.
var Open = providers.Typed(openWith)

// openWith opens the provider from its decoded settings.
func openWith(_ context.Context, cfg gitgrant.ProviderConfig, s Settings, deps providers.Deps) (providers.Provider, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("provider %s: %s", cfg.Name, fmt.Sprintf(format, args...))
	}
	u, err := url.Parse(s.URL)
	if err != nil || (u.Scheme != "ldap" && u.Scheme != "ldaps") || u.Host == "" {
		return nil, bad("setting url must be ldap://host[:port] or ldaps://host[:port]")
	}
	startTLS := s.StartTLS
	if startTLS && u.Scheme == "ldaps" {
		return nil, bad("start_tls is for ldap:// URLs; ldaps:// is TLS already")
	}
	bindDN := s.BindDN
	if _, err := ldap.ParseDN(bindDN); err != nil || bindDN == "" {
		return nil, bad("setting bind_dn must be a DN")
	}
	password, err := providers.SecretRef{Name: "bind_password", Env: s.BindPasswordEnv, File: s.BindPasswordFile}.Read(cfg.Name, deps)
	if err != nil {
		return nil, err
	}
	groupDN, err := parseTemplate("group_dn", s.GroupDN, "{role}")
	if err != nil {
		return nil, bad("%v", err)
	}
	memberDN, err := parseTemplate("member_dn", s.MemberDN, "{principal}")
	if err != nil {
		return nil, bad("%v", err)
	}
	attr, err := providers.Choice(cfg.Name, "member_attribute", s.MemberAttribute, "member", "uniqueMember")
	if err != nil {
		return nil, err
	}
	placeholder := s.PlaceholderDN
	placeholdDN, err := ldap.ParseDN(placeholder)
	if err != nil || placeholder == "" {
		return nil, bad("setting placeholder_dn must be a DN")
	}
	if _, ok := memberDN.match(placeholdDN); ok {
		return nil, bad("placeholder_dn %s looks like a member (it matches member_dn); use an entry that is no one", placeholder)
	}
	tlsConfig, err := tlsSettings(s.CAFile, u, startTLS, deps)
	if err != nil {
		return nil, bad("%v", err)
	}
	d := &dialer{
		url:      u,
		startTLS: startTLS,
		tls:      tlsConfig,
		bindDN:   bindDN,
		password: password,
	}
	return &Provider{
		cfg:         cfg,
		groupDN:     groupDN,
		memberDN:    memberDN,
		attr:        attr,
		placeholder: placeholder,
		placeholdDN: placeholdDN,
		dialer:      d,
		pool:        newPool(d.dial),
	}, nil
}

// tlsSettings verifies the server as u's host name, against ca_file when
// it is set, else against the system's trust store.
func tlsSettings(caFile string, u *url.URL, startTLS bool, deps providers.Deps) (*tls.Config, error) {
	tlsConfig := &tls.Config{ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}
	if caFile == "" {
		return tlsConfig, nil
	}
	if u.Scheme == "ldap" && !startTLS {
		return nil, errors.New("ca_file is set but the connection is not encrypted: use ldaps:// or start_tls: true")
	}
	pemData, err := deps.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("reading ca_file: %v", err)
	}
	tlsConfig.RootCAs = x509.NewCertPool()
	if !tlsConfig.RootCAs.AppendCertsFromPEM(pemData) {
		return nil, fmt.Errorf("ca_file %s holds no PEM certificate", caFile)
	}
	return tlsConfig, nil
}

// Members lists the members of role's group with one base-scope search.
// Members whose DN follows member_dn are reported by principal name. Any
// other DN (someone added by hand, under another branch of the tree) is
// reported as the full DN, so that the reconciler sees it as drift; only
// the placeholder is left out.
func (p *Provider) Members(ctx context.Context, role string) ([]providers.Member, error) {
	group, err := p.group(role)
	if err != nil {
		return nil, err
	}
	var values []string
	err = p.pool.do(ctx, func(c *ldap.Conn) error {
		res, err := c.Search(ldap.NewSearchRequest(group, ldap.ScopeBaseObject, ldap.NeverDerefAliases,
			1, 0, false, "(objectClass=*)", []string{p.attr}, nil))
		if err != nil {
			return err
		}
		if len(res.Entries) == 1 {
			values = res.Entries[0].GetEqualFoldAttributeValues(p.attr)
		}
		return nil
	})
	if err != nil {
		return nil, p.wrap("list members of", role, group, err)
	}
	members := make([]providers.Member, 0, len(values))
	placeholder := false
	for _, v := range values {
		dn, err := ldap.ParseDN(v)
		if err != nil {
			members = append(members, providers.Member{Principal: v})
			continue
		}
		if dn.EqualFold(p.placeholdDN) {
			placeholder = true
			continue
		}
		name, ok := p.memberDN.match(dn)
		if !ok {
			name = v
		}
		members = append(members, providers.Member{Principal: name})
	}
	p.setPlaceholderGone(group, !placeholder)
	return providers.SortMembers(members), nil
}

// Grant adds the principal's DN to the group and takes the placeholder
// out, in one modification. The member entry must exist, spelt as the
// principal is: a DN that names no one would be a grant that silently does
// nothing, and one spelt otherwise would come back from Members as someone
// else. g.Until is not
// enforced by the directory; the reconciler revokes.
func (p *Provider) Grant(ctx context.Context, g providers.Grant) error {
	group, err := p.group(g.Role)
	if err != nil {
		return err
	}
	member, err := p.member(g.Principal)
	if err != nil {
		return err
	}
	var stored string // the member entry's name as the directory spells it
	err = p.pool.do(ctx, func(c *ldap.Conn) error {
		res, err := c.Search(ldap.NewSearchRequest(member, ldap.ScopeBaseObject, ldap.NeverDerefAliases,
			1, 0, false, "(objectClass=*)", []string{"1.1"}, nil))
		if ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
			return &memberMissing{err}
		}
		if err != nil {
			return err
		}
		if len(res.Entries) == 1 {
			if dn, err := ldap.ParseDN(res.Entries[0].DN); err == nil {
				if name, ok := p.memberDN.match(dn); ok && name != g.Principal {
					stored = name
					return nil
				}
			}
		}
		changes := []change{{add: true, value: member}}
		if !p.placeholderGone(group) {
			changes = append(changes, change{value: p.placeholder})
		}
		return p.modify(c, group, changes)
	})
	var missing *memberMissing
	switch {
	case errors.As(err, &missing):
		return fmt.Errorf("provider %s: grant %s to %s: member %s: %w", p.cfg.Name, g.Role, g.Principal, member, providers.ErrNotFound)
	case err == nil && stored != "":
		// The directory would accept it (uid matching ignores case), but
		// Members reports what is stored, and the difference would look
		// like drift to be revoked on the next run.
		return providers.SpeltOtherwise(p.cfg.Name, g.Role, "the directory", g.Principal, stored)
	}
	if err != nil {
		return p.wrap("grant", g.Role, group, err)
	}
	p.setPlaceholderGone(group, true)
	return nil
}

// Revoke deletes the principal's DN from the group. A principal that is a
// DN itself, as Members reports members outside member_dn, is deleted as
// that DN, so that drift can be revoked. When it was the last member the
// directory refuses (object class violation: groupOfNames MUST have a
// member), and the placeholder is added in the same modification.
func (p *Provider) Revoke(ctx context.Context, role, principal string) error {
	group, err := p.group(role)
	if err != nil {
		return err
	}
	member, err := p.member(principal)
	if err != nil {
		return err
	}
	if dn, err := ldap.ParseDN(principal); err == nil && len(dn.RDNs) >= 2 {
		if dn.EqualFold(p.placeholdDN) {
			return nil // never a member, only a stand-in
		}
		member = principal
	}
	err = p.pool.do(ctx, func(c *ldap.Conn) error {
		err := p.modify(c, group, []change{{value: member}})
		if ldap.IsErrorWithCode(err, ldap.LDAPResultObjectClassViolation) {
			err = p.modify(c, group, []change{{add: true, value: p.placeholder}, {value: member}})
			if err == nil {
				p.setPlaceholderGone(group, false)
			}
		}
		return err
	})
	if err != nil {
		return p.wrap("revoke", role, group, err)
	}
	return nil
}

// Check binds and reads every managed group. It cannot prove write access:
// LDAP has no portable way to ask for it without writing.
func (p *Provider) Check(ctx context.Context) error {
	return providers.CheckRoles(p.cfg, providers.RoleChecks{
		Connect: func() error {
			if err := p.pool.do(ctx, func(*ldap.Conn) error { return nil }); err != nil {
				return p.wrap("bind as", "", p.dialer.bindDN, err)
			}
			return nil
		},
		Role: func(role string) error {
			_, err := p.Members(ctx, role)
			return err
		},
		Last: providers.Unreachable,
	})
}

// Close closes idle connections.
func (p *Provider) Close() error {
	p.pool.close()
	return nil
}

// placeholderGone reports whether group was last seen without the
// placeholder, so that a grant need only add the member: on a directory
// without Permissive Modify, deleting a placeholder that is not there fails
// the request and costs a second one. It is a hint, refreshed by every
// Members call and every change Grant and Revoke make. Should another
// writer have put the placeholder back meanwhile, a grant leaves it beside
// the new member, where it grants nothing, Members does not report it and
// the next grant after the next Members call takes it out.
func (p *Provider) placeholderGone(group string) bool {
	_, ok := p.withoutPlaceholder.Load(group)
	return ok
}

func (p *Provider) setPlaceholderGone(group string, gone bool) {
	if gone {
		p.withoutPlaceholder.Store(group, struct{}{})
	} else {
		p.withoutPlaceholder.Delete(group)
	}
}

// change is one value of the member attribute to add or delete.
type change struct {
	add   bool
	value string
}

// modify applies changes to group's member attribute in one request. Should
// the server not honour Permissive Modify (OpenLDAP 2.5 does not), a value
// that exists (20) fails the whole request as does one that is missing
// (16); the adds (on 20) or deletes (on 16) are then done already and the
// request is sent again without them. Callers pass at most one add and one
// delete, so each code names exactly one change.
func (p *Provider) modify(c *ldap.Conn, group string, changes []change) error {
	for len(changes) > 0 {
		req := ldap.NewModifyRequest(group, []ldap.Control{ldap.NewControlString(permissiveModify, false, "")})
		for _, ch := range changes {
			if ch.add {
				req.Add(p.attr, []string{ch.value})
			} else {
				req.Delete(p.attr, []string{ch.value})
			}
		}
		err := c.Modify(req)
		before := len(changes)
		switch {
		case ldap.IsErrorWithCode(err, ldap.LDAPResultAttributeOrValueExists):
			changes = slices.DeleteFunc(changes, func(ch change) bool { return ch.add })
		case ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchAttribute):
			changes = slices.DeleteFunc(changes, func(ch change) bool { return !ch.add })
		default:
			return err
		}
		if len(changes) == before { // a code the changes cannot explain
			return err
		}
	}
	return nil
}

// group returns the DN of role's group. Only declared roles are managed.
func (p *Provider) group(role string) (string, error) {
	target, err := providers.DeclaredTarget(p.cfg, role)
	if err != nil {
		return "", err
	}
	if err := checkName("role target", target); err != nil {
		return "", fmt.Errorf("provider %s: role %s: %w", p.cfg.Name, role, err)
	}
	return p.groupDN.fill(target), nil
}

func (p *Provider) member(principal string) (string, error) {
	if err := checkName("principal", principal); err != nil {
		return "", fmt.Errorf("provider %s: %w", p.cfg.Name, err)
	}
	return p.memberDN.fill(principal), nil
}

// memberMissing marks a grant whose member entry does not exist, as
// opposed to a group that does not (both are result code 32).
type memberMissing struct{ err error }

func (e *memberMissing) Error() string { return e.err.Error() }

// wrap turns an LDAP error into the errors the reconciler acts on.
func (p *Provider) wrap(op, role, group string, err error) error {
	what := fmt.Sprintf("%s %s (%s)", op, role, group)
	if role == "" {
		what = op + " " + group
	}
	var tlsErr *tlsSetupError
	switch {
	case errors.As(err, &tlsErr):
		// A certificate that does not verify will not start to.
		return &gitgrant.SystemError{System: p.system(), Op: what, Err: err}
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("provider %s: %s: %w", p.cfg.Name, what, err)
	case errors.Is(err, context.DeadlineExceeded):
		// The directory did not answer in time.
		return providers.Unavailable(p.system(), what, err)
	case ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject):
		return fmt.Errorf("provider %s: %s: group does not exist: %w", p.cfg.Name, what, providers.ErrNotFound)
	case ldap.IsErrorAnyOf(err, ldap.LDAPResultInvalidCredentials, ldap.LDAPResultInsufficientAccessRights,
		ldap.LDAPResultInappropriateAuthentication, ldap.LDAPResultStrongAuthRequired, ldap.LDAPResultConfidentialityRequired):
		// Configuration or permissions: retrying will not help.
		return &gitgrant.SystemError{System: p.system(), Op: what, Err: err}
	case ldap.IsErrorAnyOf(err, ldap.LDAPResultBusy, ldap.LDAPResultUnavailable, ldap.LDAPResultUnwillingToPerform,
		ldap.LDAPResultTimeLimitExceeded, ldap.LDAPResultAdminLimitExceeded, ldap.LDAPResultOther,
		ldap.LDAPResultTimeout, ldap.LDAPResultServerDown, ldap.LDAPResultConnectError):
		return providers.Unavailable(p.system(), what, err)
	}
	var ldapErr *ldap.Error
	if !errors.As(err, &ldapErr) {
		// Dialing, TLS, or a closed connection: the directory is unreachable.
		return providers.Unavailable(p.system(), what, err)
	}
	if isNetwork(err) {
		return providers.Unavailable(p.system(), what, err)
	}
	return fmt.Errorf("provider %s: %s: %w", p.cfg.Name, what, err)
}

func (p *Provider) system() string { return "ldap " + p.cfg.Name }

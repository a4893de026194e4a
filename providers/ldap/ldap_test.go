package ldap

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/testing/testenv"
	"github.com/gitgrant/gitgrant/providers"
	"github.com/gitgrant/gitgrant/providers/providertest"
)

func TestMain(m *testing.M) { testenv.LDAPMain(m) }

// config builds a provider entry for the test directory whose roles map to
// the given group cns (role name -> target).
func config(srv testenv.LDAPServer, attr string, roles map[string]string) gitgrant.ProviderConfig {
	return providertest.Config(Type, "directory", roles, map[string]any{
		"url":               srv.URL,
		"bind_dn":           srv.ServiceDN,
		"bind_password_env": "LDAP_BIND_PASSWORD",
		"group_dn":          "cn={role}," + srv.GroupsDN,
		"member_dn":         "uid={principal}," + srv.PeopleDN,
		"member_attribute":  attr,
		"placeholder_dn":    srv.PlaceholderDN,
	})
}

// deps read files (the CA's certificate) from disk and the bind password
// from the environment.
func deps(srv testenv.LDAPServer) providers.Deps {
	d := providers.DefaultDeps()
	d.Getenv = func(k string) string {
		if k == "LDAP_BIND_PASSWORD" {
			return srv.ServicePassword
		}
		return ""
	}
	return d
}

func open(t testing.TB, srv testenv.LDAPServer, cfg gitgrant.ProviderConfig) *Provider {
	t.Helper()
	p, err := Open(context.Background(), cfg, deps(srv))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p.(*Provider)
}

// managedGroup adds a groupOfNames for role to srv, holding members, and
// opens a provider that manages it as role: it returns the group's DN and
// the provider.
func managedGroup(tb testing.TB, srv testenv.LDAPServer, role string, members ...string) (string, *Provider) {
	tb.Helper()
	cn := uniqueName(tb, role)
	group := srv.AddGroup(tb, "groupOfNames", cn, members...)
	return group, open(tb, srv, config(srv, "member", map[string]string{role: cn}))
}

// uniqueName keeps the groups of parallel tests apart in the shared server.
func uniqueName(t testing.TB, base string) string {
	return fmt.Sprintf("%s-%s-%d", base, strings.ReplaceAll(t.Name(), "/", "-"), time.Now().UnixNano())
}

func TestConformance(t *testing.T) {
	t.Parallel()
	srv := testenv.LDAP(t)
	for _, class := range []struct{ objectClass, attr string }{
		{"groupOfNames", "member"},
		{"groupOfUniqueNames", "uniqueMember"},
	} {
		t.Run(class.objectClass, func(t *testing.T) {
			t.Parallel()
			roles := map[string]string{}
			for _, role := range []string{"reader", "deployer"} {
				cn := uniqueName(t, role)
				srv.AddGroup(t, class.objectClass, cn)
				roles[role] = cn
			}
			// Names that need escaping in a DN prove they are escaped; the
			// twenty plain ones give the concurrency test something to do.
			principals := []string{"o'brien", "semi;colon", "comma, plus+sign", `back\slash`, "#hash", "ユーザー", "two  spaces", `quote"d`, "<angle>", "eq=al"}
			for i := range 20 {
				principals = append(principals, fmt.Sprintf("conf-%s-%02d", class.attr, i))
			}
			for i, p := range principals {
				principals[i] = p + "-" + class.attr // users are shared by both subtests
				srv.AddUser(t, principals[i])
			}
			cfg := config(srv, class.attr, roles)
			providertest.Run(t, providertest.Harness{
				Open:             func(t *testing.T) providers.Provider { return open(t, srv, cfg) },
				Roles:            []string{"reader", "deployer"},
				Principals:       principals,
				MissingPrincipal: "nobody-" + class.attr,
				OpenWithTarget: func(t *testing.T, target string) (providers.Provider, error) {
					c := config(srv, class.attr, map[string]string{"hostile": target})
					return Open(t.Context(), c, deps(srv))
				},
				Down: func(t *testing.T) (providers.Provider, error) {
					c := config(srv, class.attr, roles)
					c.Settings["url"] = fmt.Sprintf("ldap://127.0.0.1:%d", testenv.FreePort(t))
					return Open(t.Context(), c, deps(srv))
				},
				Secrets: []string{srv.ServicePassword, srv.AdminPassword},
			})
		})
	}
}

// step is a change to a group, and the values of its member attribute,
// as the directory holds them, after it.
type step struct {
	name string
	do   func() error
	want []string
}

// checkSteps makes each step in turn and checks the group's member values
// after it.
func checkSteps(t *testing.T, srv testenv.LDAPServer, group string, steps []step) {
	t.Helper()
	for _, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if diff := cmp.Diff(s.want, srv.Values(t, group, "member"), cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
			t.Fatalf("after %s, member values (-want +got):\n%s", s.name, diff)
		}
	}
}

// TestPlaceholder follows the placeholder through a group's life: it goes
// when the first real member comes and returns when the last one leaves.
func TestPlaceholder(t *testing.T) {
	t.Parallel()
	srv := testenv.LDAP(t)
	group, p := managedGroup(t, srv, "ops")
	ctx := t.Context()
	alice, bob := srv.UserDN("alice"), srv.UserDN("bob")

	steps := []step{
		{"start", func() error { return nil }, []string{srv.PlaceholderDN}},
		{"grant alice", func() error { return p.Grant(ctx, providers.Grant{Role: "ops", Principal: "alice"}) }, []string{alice}},
		{"grant bob", func() error { return p.Grant(ctx, providers.Grant{Role: "ops", Principal: "bob"}) }, []string{alice, bob}},
		{"revoke alice", func() error { return p.Revoke(ctx, "ops", "alice") }, []string{bob}},
		{"revoke bob, the last", func() error { return p.Revoke(ctx, "ops", "bob") }, []string{srv.PlaceholderDN}},
		{"revoke bob again", func() error { return p.Revoke(ctx, "ops", "bob") }, []string{srv.PlaceholderDN}},
		{"grant alice again", func() error { return p.Grant(ctx, providers.Grant{Role: "ops", Principal: "alice"}) }, []string{alice}},
	}
	checkSteps(t, srv, group, steps)
}

// TestPlaceholderPutBack: the provider remembers which groups it last saw
// without the placeholder, so as not to ask to delete it every time. When
// another writer puts it back behind the provider's back, a grant leaves it
// beside the member (where it grants nothing and is not reported), and the
// first grant after Members has seen it takes it out.
func TestPlaceholderPutBack(t *testing.T) {
	t.Parallel()
	srv := testenv.LDAP(t)
	group, p := managedGroup(t, srv, "back")
	ctx := t.Context()
	alice, bob, carol := srv.UserDN("alice"), srv.UserDN("bob"), srv.UserDN("carol")
	putBack := func() error {
		req := ldap.NewModifyRequest(group, nil)
		req.Add("member", []string{srv.PlaceholderDN})
		return srv.Admin(t).Modify(req)
	}
	members := func() error {
		got, err := p.Members(ctx, "back")
		if err != nil {
			return err
		}
		if diff := cmp.Diff([]providers.Member{{Principal: "alice"}, {Principal: "bob"}}, got); diff != "" {
			return fmt.Errorf("Members (-want +got):\n%s", diff)
		}
		return nil
	}
	steps := []step{
		{"grant alice", func() error { return p.Grant(ctx, providers.Grant{Role: "back", Principal: "alice"}) }, []string{alice}},
		{"another writer puts the placeholder back", putBack, []string{alice, srv.PlaceholderDN}},
		{"grant bob", func() error { return p.Grant(ctx, providers.Grant{Role: "back", Principal: "bob"}) }, []string{alice, bob, srv.PlaceholderDN}},
		{"list, which does not report the placeholder", members, []string{alice, bob, srv.PlaceholderDN}},
		{"grant carol", func() error { return p.Grant(ctx, providers.Grant{Role: "back", Principal: "carol"}) }, []string{alice, bob, carol}},
	}
	checkSteps(t, srv, group, steps)
}

// TestMembersReportsForeignDNs: a member added by hand outside member_dn
// must stay visible as drift, and the placeholder must not.
func TestMembersReportsForeignDNs(t *testing.T) {
	t.Parallel()
	srv := testenv.LDAP(t)
	foreign := "cn=legacy-robot,ou=services," + srv.BaseDN
	group, p := managedGroup(t, srv, "admins", srv.PlaceholderDN, srv.UserDN("carol"), foreign, "UID=Dave,OU=People,DC=Example,DC=Org")
	got, err := p.Members(t.Context(), "admins")
	if err != nil {
		t.Fatal(err)
	}
	want := []providers.Member{{Principal: "Dave"}, {Principal: "carol"}, {Principal: foreign}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Members (-want +got):\n%s", diff)
	}

	// Revoking what Members reported removes it, the foreign DN included;
	// the placeholder cannot be revoked.
	for _, principal := range []string{foreign, "Dave", "carol", srv.PlaceholderDN} {
		if err := p.Revoke(t.Context(), "admins", principal); err != nil {
			t.Fatalf("Revoke(%q): %v", principal, err)
		}
	}
	if diff := cmp.Diff([]string{srv.PlaceholderDN}, srv.Values(t, group, "member")); diff != "" {
		t.Errorf("member values after revoking everyone (-want +got):\n%s", diff)
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	srv := testenv.LDAP(t)
	cn := uniqueName(t, "errs")
	srv.AddGroup(t, "groupOfNames", cn)
	roles := map[string]string{"ok": cn, "gone": "no-such-group"}

	wrongPassword := config(srv, "member", roles)
	wrongPassword.Settings["bind_password_env"] = "WRONG"
	wrongDeps := deps(srv)
	wrongDeps.Getenv = func(string) string { return "not-the-password" }
	wp, err := Open(t.Context(), wrongPassword, wrongDeps)
	if err != nil {
		t.Fatal(err)
	}
	defer wp.Close()

	p := open(t, srv, config(srv, "member", roles))

	tests := []struct {
		name      string
		err       error
		notFound  bool
		system    bool
		retryable bool
	}{
		{"missing group on Members", func() error { _, err := p.Members(t.Context(), "gone"); return err }(), true, false, false},
		{"missing group on Grant", p.Grant(t.Context(), providers.Grant{Role: "gone", Principal: "alice"}), true, false, false},
		{"missing group on Revoke", p.Revoke(t.Context(), "gone", "alice"), true, false, false},
		{"missing principal", p.Grant(t.Context(), providers.Grant{Role: "ok", Principal: "mallory"}), true, false, false},
		{"principal spelt in another case", func() error {
			err := p.Grant(t.Context(), providers.Grant{Role: "ok", Principal: "ALICE"})
			if !errors.Is(err, providers.ErrInvalidName) || !strings.Contains(err.Error(), `"alice"`) {
				return fmt.Errorf("Grant(ALICE) = %v, want ErrInvalidName naming the directory's spelling", err)
			}
			if got := srv.Values(t, srv.GroupDN(cn), "member"); len(got) != 1 || got[0] != srv.PlaceholderDN {
				return fmt.Errorf("members after a refused grant: %q", got)
			}
			return err
		}(), false, false, false},
		{"wrong password", func() error { _, err := wp.Members(t.Context(), "ok"); return err }(), false, true, false},
		{"wrong password on Check", wp.(providers.Checker).Check(t.Context()), false, true, false},
		{"cancelled", func() error {
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			return p.Grant(ctx, providers.Grant{Role: "ok", Principal: "alice"})
		}(), false, false, false},
		{"deadline", func() error {
			ctx, cancel := context.WithDeadline(t.Context(), time.Now().Add(-time.Second))
			defer cancel()
			return p.Grant(ctx, providers.Grant{Role: "ok", Principal: "alice"})
		}(), false, true, true},
	}
	for _, tt := range tests {
		if tt.err == nil {
			t.Errorf("%s: no error", tt.name)
			continue
		}
		if strings.Contains(tt.err.Error(), srv.ServicePassword) {
			t.Errorf("%s: error contains the password", tt.name)
		}
		if got := errors.Is(tt.err, providers.ErrNotFound); got != tt.notFound {
			t.Errorf("%s: %v: errors.Is(ErrNotFound) = %v, want %v", tt.name, tt.err, got, tt.notFound)
		}
		if got, want := errors.Is(tt.err, providers.ErrInvalidName), tt.name == "principal spelt in another case"; got != want {
			t.Errorf("%s: %v: errors.Is(ErrInvalidName) = %v, want %v", tt.name, tt.err, got, want)
		}
		var sys *gitgrant.SystemError
		if got := errors.As(tt.err, &sys); got != tt.system {
			t.Errorf("%s: %v: SystemError = %v, want %v", tt.name, tt.err, got, tt.system)
		} else if got && sys.Retryable != tt.retryable {
			t.Errorf("%s: %v: Retryable = %v, want %v", tt.name, tt.err, sys.Retryable, tt.retryable)
		}
	}
}

func TestNewRejectsBadSettings(t *testing.T) {
	t.Parallel()
	srv := testenv.LDAPServer{URL: "ldap://127.0.0.1:1", ServiceDN: "cn=gitgrant,dc=x", ServicePassword: "pw",
		GroupsDN: "ou=groups,dc=x", PeopleDN: "ou=people,dc=x", PlaceholderDN: "cn=placeholder,dc=x"}
	tests := []struct {
		name, key string
		value     any // nil deletes the setting
		want      string
	}{
		{"url scheme", "url", "http://ldap.example.org", "setting url"},
		{"url missing", "url", nil, "setting url"},
		{"start_tls with ldaps", "start_tls", true, "start_tls"},
		{"group_dn without {role}", "group_dn", "cn=ops,ou=groups,dc=x", "{role} exactly once"},
		{"group_dn with {role} inside a value", "group_dn", "cn=team-{role},ou=groups,dc=x", "whole attribute value"},
		{"member_dn twice", "member_dn", "uid={principal},cn={principal},dc=x", "exactly once"},
		{"member attribute", "member_attribute", "memberUid", "member or uniqueMember"},
		{"placeholder missing", "placeholder_dn", nil, "placeholder_dn"},
		{"placeholder is a member", "placeholder_dn", "uid=nobody,ou=people,dc=x", "matches member_dn"},
		{"password missing", "bind_password_env", nil, "set bind_password_env or bind_password_file"},
		{"bind_dn not a DN", "bind_dn", "gitgrant", "bind_dn"},
		{"both password references", "bind_password_file", "/run/secrets/ldap", "not both"},
		{"ca_file without TLS", "ca_file", "/nonexistent/ca.pem", "not encrypted"},
		{"start_tls not a boolean", "start_tls", "yes", "start_tls must be true or false"},
		{"unknown setting", "bind_password", "pw", `unknown setting "bind_password"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := config(srv, "member", nil)
			if tt.key == "start_tls" {
				cfg.Settings["url"] = "ldaps://ldap.example.org"
			}
			if tt.value == nil {
				delete(cfg.Settings, tt.key)
			} else {
				cfg.Settings[tt.key] = tt.value
			}
			_, err := Open(t.Context(), cfg, deps(srv))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Open: err = %v, want one mentioning %q", err, tt.want)
			}
			if strings.Contains(err.Error(), srv.ServicePassword) {
				t.Errorf("error contains the password")
			}
		})
	}
}

func TestTemplateMatch(t *testing.T) {
	t.Parallel()
	tmpl, err := parseTemplate("member_dn", "uid={principal},ou=people,dc=example,dc=org", "{principal}")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, principal string
	}{
		{"plain", "alice"},
		{"comma and plus", "a,b+c"},
		{"leading hash and trailing space", "#x "},
		{"equals and quotes", `a="b"`},
		{"backslash", `a\b`},
		{"unicode", "ユーザー"},
		{"looks like a DN", "cn=admin,dc=example,dc=org"},
	}
	for _, tt := range tests {
		dn := tmpl.fill(tt.principal)
		parsed, err := ldap.ParseDN(dn)
		if err != nil {
			t.Errorf("%s: fill gave %q, which does not parse: %v", tt.name, dn, err)
			continue
		}
		if len(parsed.RDNs) != 4 {
			t.Errorf("%s: fill gave %q with %d RDNs, want 4: the name changed the DN's structure", tt.name, dn, len(parsed.RDNs))
		}
		got, ok := tmpl.match(parsed)
		if !ok || got != tt.principal {
			t.Errorf("%s: match(fill(%q)) = %q, %v", tt.name, tt.principal, got, ok)
		}
	}
	for _, foreign := range []string{"uid=alice,ou=robots,dc=example,dc=org", "cn=alice,ou=people,dc=example,dc=org", "uid=alice+cn=x,ou=people,dc=example,dc=org", "uid=alice,dc=example,dc=org"} {
		parsed, err := ldap.ParseDN(foreign)
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := tmpl.match(parsed); ok {
			t.Errorf("match(%q) = %q, want no match", foreign, got)
		}
	}
}

// TestRoundTrips pins what each operation costs on OpenLDAP 2.5, which
// lacks Permissive Modify: a grant is a lookup of the member plus one
// modification, which also takes the placeholder out while the group may
// hold it; a revoke is one modification, two for the last member (the
// first is refused: the group would be empty).
func TestRoundTrips(t *testing.T) {
	t.Parallel()
	srv := testenv.LDAP(t)
	_, p := managedGroup(t, srv, "rt")
	// go-ldap writes each message with one Write.
	var writes providertest.Writes
	p.dialer.wrap = writes.Wrap
	ctx := t.Context()
	if _, err := p.Members(ctx, "rt"); err != nil { // dial and bind
		t.Fatal(err)
	}
	writes.CheckCosts(t, []providertest.Cost{
		{Name: "grant the first member", Want: 2, Do: func() error { return p.Grant(ctx, providers.Grant{Role: "rt", Principal: "alice"}) }},
		{Name: "grant a second", Want: 2, Do: func() error { return p.Grant(ctx, providers.Grant{Role: "rt", Principal: "bob"}) }},
		{Name: "grant again", Want: 2, Do: func() error { return p.Grant(ctx, providers.Grant{Role: "rt", Principal: "bob"}) }},
		{Name: "list", Want: 1, Do: func() error { _, err := p.Members(ctx, "rt"); return err }},
		{Name: "revoke one of two", Want: 1, Do: func() error { return p.Revoke(ctx, "rt", "bob") }},
		{Name: "revoke again", Want: 1, Do: func() error { return p.Revoke(ctx, "rt", "bob") }},
		{Name: "revoke the last", Want: 2, Do: func() error { return p.Revoke(ctx, "rt", "alice") }},
		{Name: "grant to the group the placeholder is back in", Want: 2, Do: func() error { return p.Grant(ctx, providers.Grant{Role: "rt", Principal: "alice"}) }},
	})
}

// TestMembersIsOneRoundTrip: listing a role is one search, however many
// members it has.
func TestMembersIsOneRoundTrip(t *testing.T) {
	t.Parallel()
	srv := testenv.LDAP(t)
	cn := uniqueName(t, "big")
	var members []string
	for i := range 200 {
		members = append(members, srv.UserDN(fmt.Sprintf("u%03d", i)))
	}
	srv.AddGroup(t, "groupOfNames", cn, members...)
	p := open(t, srv, config(srv, "member", map[string]string{"big": cn}))
	var writes providertest.Writes
	p.dialer.wrap = writes.Wrap
	if _, err := p.Members(t.Context(), "big"); err != nil { // dial and bind
		t.Fatal(err)
	}
	var got []providers.Member
	writes.CheckCosts(t, []providertest.Cost{
		{Name: "list 200 members", Want: 1, Do: func() (err error) { got, err = p.Members(t.Context(), "big"); return err }},
	})
	if len(got) != 200 {
		t.Errorf("Members returned %d members, want 200", len(got))
	}
}

// BenchmarkGrantRevoke1000 grants and then revokes 1,000 memberships of one
// group through the provider, one call each as the reconciler makes them,
// side by side with its floors: the same modifications from ldapmodify -f
// and from go-ldap, each in one session bound as the same service account.
// One modification per change is what the provider is asked for (the
// reconciler hands it one change at a time), and the floors make each as a
// person who knows the group would: the first grant also deletes the
// placeholder and the last revoke adds it back, so every side leaves the
// group as it found it. The floors look up no member entry; the provider
// does, before each grant.
func BenchmarkGrantRevoke1000(b *testing.B) {
	ldapmodify := testenv.Client(b, "ldapmodify", "install ldap-utils")
	srv := testenv.LDAP(b)
	const n = 1000
	var principals, dns []string
	for i := range n {
		principals = append(principals, fmt.Sprintf("bench%04d", i))
		dns = append(dns, srv.AddUser(b, principals[i]))
	}
	cn := uniqueName(b, "bench")
	group := srv.AddGroup(b, "groupOfNames", cn)
	changes := grantRevokeChanges(group, "member", srv.PlaceholderDN, dns)
	dir := b.TempDir()
	ldif, password := filepath.Join(dir, "grant-revoke.ldif"), filepath.Join(dir, "password")
	if err := os.WriteFile(ldif, []byte(toLDIF(changes)), 0o600); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(password, []byte(srv.ServicePassword), 0o600); err != nil {
		b.Fatal(err)
	}
	cfg := config(srv, "member", map[string]string{"bench": cn})
	floor := providertest.Floor{Clients: []providertest.Client{
		{Name: "ldapmodify", Run: func() error {
			out, err := exec.Command(ldapmodify, "-x", "-H", srv.URL, "-D", srv.ServiceDN, "-y", password, "-f", ldif).CombinedOutput()
			if err != nil {
				return fmt.Errorf("%w\n%s", err, out)
			}
			return nil
		}},
		{Name: "go-ldap", Run: func() error {
			conn, err := ldap.DialURL(srv.URL)
			if err != nil {
				return err
			}
			defer conn.Close()
			if err := conn.Bind(srv.ServiceDN, srv.ServicePassword); err != nil {
				return err
			}
			for _, req := range changes {
				if err := conn.Modify(req); err != nil {
					return err
				}
			}
			return nil
		}},
	}}
	for b.Loop() {
		floor.Compare(b, func() providers.Provider { return open(b, srv, cfg) }, "bench", principals, time.Time{})
	}
	floor.Report(b)
}

// grantRevokeChanges adds every member to group, one modification each,
// then deletes every one.
func grantRevokeChanges(group, attr, placeholder string, members []string) []*ldap.ModifyRequest {
	var out []*ldap.ModifyRequest
	for i, m := range members {
		req := ldap.NewModifyRequest(group, nil)
		req.Add(attr, []string{m})
		if i == 0 {
			req.Delete(attr, []string{placeholder})
		}
		out = append(out, req)
	}
	for i, m := range members {
		req := ldap.NewModifyRequest(group, nil)
		req.Delete(attr, []string{m})
		if i == len(members)-1 {
			req.Add(attr, []string{placeholder})
		}
		out = append(out, req)
	}
	return out
}

// toLDIF writes modifications as LDIF for ldapmodify, values in base64 so
// that no DN needs escaping.
func toLDIF(reqs []*ldap.ModifyRequest) string {
	enc := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	ops := map[uint]string{ldap.AddAttribute: "add", ldap.DeleteAttribute: "delete", ldap.ReplaceAttribute: "replace"}
	var b strings.Builder
	for _, req := range reqs {
		fmt.Fprintf(&b, "dn:: %s\nchangetype: modify\n", enc(req.DN))
		for _, ch := range req.Changes {
			fmt.Fprintf(&b, "%s: %s\n", ops[ch.Operation], ch.Modification.Type)
			for _, v := range ch.Modification.Vals {
				fmt.Fprintf(&b, "%s:: %s\n", ch.Modification.Type, enc(v))
			}
			b.WriteString("-\n")
		}
		b.WriteString("\n")
	}
	return b.String()
}

// TestTLS: the provider works over StartTLS and ldaps:// when it trusts
// the server through ca_file, and refuses, without retrying, when not.
func TestTLS(t *testing.T) {
	t.Parallel()
	srv := testenv.LDAP(t)
	cn := uniqueName(t, "tls")
	srv.AddGroup(t, "groupOfNames", cn)
	tests := []struct {
		name     string
		settings map[string]any
		trusted  bool
	}{
		{"StartTLS", map[string]any{"start_tls": true, "ca_file": srv.CAFile}, true},
		{"ldaps", map[string]any{"url": srv.LDAPSURL, "ca_file": srv.CAFile}, true},
		{"StartTLS without the CA", map[string]any{"start_tls": true}, false},
		{"ldaps without the CA", map[string]any{"url": srv.LDAPSURL}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config(srv, "member", map[string]string{"tls": cn})
			for k, v := range tt.settings {
				cfg.Settings[k] = v
			}
			p := open(t, srv, cfg)
			ctx := t.Context()
			err := p.Grant(ctx, providers.Grant{Role: "tls", Principal: "carol"})
			if !tt.trusted {
				var sys *gitgrant.SystemError
				if !errors.As(err, &sys) || sys.Retryable || !strings.Contains(err.Error(), "certificate") {
					t.Fatalf("Grant: err = %v, want a non-retryable SystemError about the certificate", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Grant: %v", err)
			}
			got, err := p.Members(ctx, "tls")
			if diff := cmp.Diff([]providers.Member{{Principal: "carol"}}, got); diff != "" || err != nil {
				t.Errorf("Members: %v (-want +got):\n%s", err, diff)
			}
			if err := p.Revoke(ctx, "tls", "carol"); err != nil {
				t.Errorf("Revoke: %v", err)
			}
		})
	}
}

// TestReconnects: a connection the server dropped while idle is replaced,
// and the call that found it dropped still succeeds.
func TestReconnects(t *testing.T) {
	t.Parallel()
	srv := testenv.LDAP(t)
	_, p := managedGroup(t, srv, "re", srv.UserDN("alice"))
	var conns []net.Conn
	var mu sync.Mutex
	p.dialer.wrap = func(c net.Conn) net.Conn {
		mu.Lock()
		defer mu.Unlock()
		conns = append(conns, c)
		return c
	}
	ctx := t.Context()
	if _, err := p.Members(ctx, "re"); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	conns[0].Close() // as if the server had timed out the idle connection
	mu.Unlock()
	got, err := p.Members(ctx, "re")
	if err != nil {
		t.Fatalf("Members after the connection dropped: %v", err)
	}
	if diff := cmp.Diff([]providers.Member{{Principal: "alice"}}, got); diff != "" {
		t.Errorf("Members (-want +got):\n%s", diff)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(conns) != 2 {
		t.Errorf("dialled %d connections, want 2", len(conns))
	}
}

// TestHungServer: a server that accepts connections and never answers
// costs no more than the caller's deadline, and is reported as a
// retryable system error.
func TestHungServer(t *testing.T) {
	t.Parallel()
	srv := testenv.LDAPServer{ServiceDN: "cn=gitgrant,dc=x", ServicePassword: "pw", GroupsDN: "ou=groups,dc=x",
		PeopleDN: "ou=people,dc=x", PlaceholderDN: "cn=placeholder,dc=x", URL: "ldap://" + providertest.HungServer(t)}
	p := open(t, srv, config(srv, "member", map[string]string{"ops": "ops"}))
	providertest.CheckHungCall(t, 300*time.Millisecond, func(ctx context.Context) error {
		_, err := p.Members(ctx, "ops")
		return err
	})
}

// BenchmarkGrantRevoke1000Parallel does the same from eight goroutines
// sharing one provider (at most four connections).
func BenchmarkGrantRevoke1000Parallel(b *testing.B) {
	srv := testenv.LDAP(b)
	const n, workers = 1000, 8
	for i := range n {
		srv.AddUser(b, fmt.Sprintf("par%04d", i))
	}
	_, p := managedGroup(b, srv, "par")
	ctx := context.Background()
	run := func(op func(i int) error) {
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for i := w; i < n; i += workers {
					if err := op(i); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
	}
	b.ResetTimer()
	for range b.N {
		run(func(i int) error {
			return p.Grant(ctx, providers.Grant{Role: "par", Principal: fmt.Sprintf("par%04d", i)})
		})
		if ms, err := p.Members(ctx, "par"); err != nil || len(ms) != n {
			b.Fatalf("Members: %d, %v", len(ms), err)
		}
		run(func(i int) error { return p.Revoke(ctx, "par", fmt.Sprintf("par%04d", i)) })
	}
}

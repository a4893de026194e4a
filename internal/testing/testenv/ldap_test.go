package testenv

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"testing"

	"github.com/go-ldap/ldap/v3"
	"github.com/google/go-cmp/cmp"
)

func TestMain(m *testing.M) { LDAPMain(m) }

// TestLDAPServer checks the tree and, above all, the ACL: the service
// account must be able to do what the ldap provider needs and nothing more,
// or the provider's tests would prove less than they seem to.
func TestLDAPServer(t *testing.T) {
	t.Parallel()
	srv := LDAP(t)
	group := srv.AddGroup(t, "groupOfNames", "testenv-acl")
	if got := srv.Values(t, group, "member"); !cmp.Equal(got, []string{srv.PlaceholderDN}) {
		t.Fatalf("new group members = %q, want the placeholder", got)
	}

	service, err := ldap.DialURL(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer service.Close()
	if err := service.Bind(srv.ServiceDN, srv.ServicePassword); err != nil {
		t.Fatalf("service bind: %v", err)
	}

	addMember := func(dn string) error {
		req := ldap.NewModifyRequest(dn, nil)
		req.Add("member", []string{srv.UserDN("alice")})
		return service.Modify(req)
	}
	tests := []struct {
		name string
		do   func() error
		code uint16 // 0: must succeed
	}{
		{"service adds a member to a group", func() error { return addMember(group) }, 0},
		{"service cannot change a person", func() error {
			req := ldap.NewModifyRequest(srv.UserDN("bob"), nil)
			req.Replace("sn", []string{"x"})
			return service.Modify(req)
		}, ldap.LDAPResultInsufficientAccessRights},
		{"service cannot change a group's other attributes", func() error {
			req := ldap.NewModifyRequest(group, nil)
			req.Add("description", []string{"x"})
			return service.Modify(req)
		}, ldap.LDAPResultInsufficientAccessRights},
		{"service cannot add entries", func() error {
			req := ldap.NewAddRequest(srv.GroupDN("testenv-rogue"), nil)
			req.Attribute("objectClass", []string{"groupOfNames"})
			req.Attribute("member", []string{srv.PlaceholderDN})
			return service.Add(req)
		}, ldap.LDAPResultInsufficientAccessRights},
	}
	for _, tt := range tests {
		err := tt.do()
		switch {
		case tt.code == 0 && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.code != 0 && !ldap.IsErrorWithCode(err, tt.code):
			t.Errorf("%s: got %v, want result code %d", tt.name, err, tt.code)
		}
	}
	want := []string{srv.PlaceholderDN, srv.UserDN("alice")}
	if diff := cmp.Diff(want, srv.Values(t, group, "member")); diff != "" {
		t.Errorf("group members (-want +got):\n%s", diff)
	}

	anon, err := ldap.DialURL(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer anon.Close()
	res, err := anon.Search(ldap.NewSearchRequest(srv.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
		0, 0, false, "(objectClass=*)", nil, nil))
	if err == nil && len(res.Entries) > 0 {
		t.Errorf("anonymous search found %d entries, want none", len(res.Entries))
	}
}

// TestLDAPServerTLS: StartTLS on the plain port and ldaps:// both verify
// against the run's CA, and not without it.
func TestLDAPServerTLS(t *testing.T) {
	t.Parallel()
	srv := LDAP(t)
	pemData, err := os.ReadFile(srv.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pemData) {
		t.Fatalf("%s holds no certificate", srv.CAFile)
	}
	trusted := &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"}

	conn, err := ldap.DialURL(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.StartTLS(trusted); err != nil {
		t.Fatalf("StartTLS: %v", err)
	}
	if err := conn.Bind(srv.ServiceDN, srv.ServicePassword); err != nil {
		t.Fatalf("bind after StartTLS: %v", err)
	}

	conn, err = ldap.DialURL(srv.LDAPSURL, ldap.DialWithTLSConfig(trusted))
	if err != nil {
		t.Fatalf("ldaps: %v", err)
	}
	defer conn.Close()
	if err := conn.Bind(srv.ServiceDN, srv.ServicePassword); err != nil {
		t.Fatalf("bind over ldaps: %v", err)
	}

	if conn, err := ldap.DialURL(srv.LDAPSURL, ldap.DialWithTLSConfig(&tls.Config{ServerName: "127.0.0.1"})); err == nil {
		conn.Close()
		t.Errorf("ldaps without the test CA connected; the certificate is not being checked")
	}
}

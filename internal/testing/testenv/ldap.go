package testenv

// A private OpenLDAP server for integration tests.
//
// What it needs: Debian's slapd package (`apt-get install -y slapd`, which
// also provides slapadd; ldap-utils is handy for debugging but not used),
// the schema LDIF files it ships in /etc/ldap/schema (core, cosine,
// inetorgperson) and the back_mdb module in /usr/lib/ldap. Nothing of the
// Debian default instance is used: the helper writes its own cn=config with
// `slapadd -n0`, loads a test tree with `slapadd -n1`, and runs slapd in the
// foreground on a free loopback port from a temporary directory, as the
// current user. It listens for ldap:// (with StartTLS) and ldaps://, with a
// certificate from a CA made for the run. GITGRANT_TEST_SLAPD overrides the
// path of the slapd binary.
//
// The server is started once per test binary and shared by its tests, which
// therefore create their own groups (LDAPServer.AddGroup) instead of
// changing shared ones. Packages that use it end with
//
//	func TestMain(m *testing.M) { testenv.LDAPMain(m) }
//
// so that slapd is stopped and its directory removed after the last test.
// Should the binary die first, slapd still gets SIGKILL from the kernel
// (Pdeathsig) and only the temporary directory stays behind.

import (
	"errors"
	"sync"
	"testing"

	"github.com/go-ldap/ldap/v3"
)

// LDAPServer describes the running test directory. Passwords are random
// per run and never printed.
type LDAPServer struct {
	URL    string // ldap://127.0.0.1:<port>, which also offers StartTLS
	BaseDN string // dc=example,dc=org

	// LDAPSURL is ldaps://127.0.0.1:<port>. The server's certificate is for
	// 127.0.0.1 and localhost, signed by a CA made for this run: CAFile
	// holds it in PEM.
	LDAPSURL string
	CAFile   string

	// AdminDN is the database's root DN: it may do anything. Tests use it
	// to build fixtures and to look behind the provider's back.
	AdminDN       string
	AdminPassword string

	// ServiceDN is the least-privileged account gitgrant is meant to use:
	// it may read the tree and write only the member and uniqueMember
	// attributes of entries under GroupsDN (see the ACL in ldapConfig).
	ServiceDN       string
	ServicePassword string

	PeopleDN      string // ou=people,<base>; users are uid=<name>,<PeopleDN>
	GroupsDN      string // ou=groups,<base>; groups are cn=<name>,<GroupsDN>
	PlaceholderDN string // an entry meant to keep groups non-empty
	Users         []string
}

// UserDN returns the DN of the person with the given uid.
func (s LDAPServer) UserDN(uid string) string {
	return "uid=" + ldap.EscapeDN(uid) + "," + s.PeopleDN
}

// GroupDN returns the DN of the group with the given cn.
func (s LDAPServer) GroupDN(cn string) string {
	return "cn=" + ldap.EscapeDN(cn) + "," + s.GroupsDN
}

// Admin returns a connection bound as the root DN, closed when t ends.
func (s LDAPServer) Admin(t testing.TB) *ldap.Conn {
	t.Helper()
	conn, err := ldap.DialURL(s.URL)
	if err != nil {
		t.Fatalf("dialing test slapd: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := conn.Bind(s.AdminDN, s.AdminPassword); err != nil {
		t.Fatalf("binding to test slapd as %s: %v", s.AdminDN, err)
	}
	return conn
}

// AddUser creates an inetOrgPerson uid=<uid> under PeopleDN and deletes it
// when t ends. It returns the entry's DN.
func (s LDAPServer) AddUser(t testing.TB, uid string) string {
	t.Helper()
	dn := s.UserDN(uid)
	req := ldap.NewAddRequest(dn, nil)
	req.Attribute("objectClass", []string{"inetOrgPerson"})
	req.Attribute("uid", []string{uid})
	req.Attribute("cn", []string{uid})
	req.Attribute("sn", []string{uid})
	s.addEntry(t, req)
	return dn
}

// AddGroup creates a group cn=<cn> under GroupsDN of the given object class
// (groupOfNames or groupOfUniqueNames) with the given member DNs, and
// deletes it when t ends. With no members it holds PlaceholderDN, as both
// classes require at least one. It returns the group's DN.
func (s LDAPServer) AddGroup(t testing.TB, objectClass, cn string, members ...string) string {
	t.Helper()
	attr := map[string]string{"groupOfNames": "member", "groupOfUniqueNames": "uniqueMember"}[objectClass]
	if attr == "" {
		t.Fatalf("AddGroup: object class %q is neither groupOfNames nor groupOfUniqueNames", objectClass)
	}
	if len(members) == 0 {
		members = []string{s.PlaceholderDN}
	}
	dn := s.GroupDN(cn)
	req := ldap.NewAddRequest(dn, nil)
	req.Attribute("objectClass", []string{objectClass})
	req.Attribute("cn", []string{cn})
	req.Attribute(attr, members)
	s.addEntry(t, req)
	return dn
}

// Values reads one attribute of one entry as the root DN; nil when the
// entry has no such attribute.
func (s LDAPServer) Values(t testing.TB, dn, attr string) []string {
	t.Helper()
	conn := s.Admin(t)
	res, err := conn.Search(ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases,
		0, 0, false, "(objectClass=*)", []string{attr}, nil))
	if err != nil {
		t.Fatalf("reading %s of %s: %v", attr, dn, err)
	}
	return res.Entries[0].GetAttributeValues(attr)
}

func (s LDAPServer) addEntry(t testing.TB, req *ldap.AddRequest) {
	t.Helper()
	conn := s.Admin(t)
	if err := conn.Add(req); err != nil {
		t.Fatalf("adding %s: %v", req.DN, err)
	}
	t.Cleanup(func() {
		c, err := ldap.DialURL(s.URL)
		if err != nil {
			t.Errorf("cleanup: dialing test slapd: %v", err)
			return
		}
		defer c.Close()
		if err := c.Bind(s.AdminDN, s.AdminPassword); err != nil {
			t.Errorf("cleanup: binding: %v", err)
			return
		}
		if err := c.Del(ldap.NewDelRequest(req.DN, nil)); err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
			t.Errorf("cleanup: deleting %s: %v", req.DN, err)
		}
	})
}

var ldapOnce struct {
	sync.Once
	srv  LDAPServer
	proc *slapd
	what string // what is missing, for Unavailable
	how  string
	err  error
}

// LDAP returns the test binary's private slapd, starting it on first use.
// Without slapd it skips the test locally and fails it under CI=true.
func LDAP(t testing.TB) LDAPServer {
	t.Helper()
	ldapOnce.Do(func() {
		ldapOnce.srv, ldapOnce.proc, ldapOnce.err = startSlapd()
		if ldapOnce.err != nil {
			ldapOnce.what = "a private slapd"
			ldapOnce.how = "install Debian's slapd package (DEBIAN_FRONTEND=noninteractive apt-get install -y slapd ldap-utils; .ci/run does) or set GITGRANT_TEST_SLAPD"
		}
	})
	if ldapOnce.err != nil {
		var missing *missingError
		if errors.As(ldapOnce.err, &missing) {
			Unavailable(t, ldapOnce.what, ldapOnce.how, ldapOnce.err)
		}
		// slapd is installed but would not start: that is a bug here or in
		// the environment, never a reason to skip.
		t.Fatalf("starting a private slapd: %v", ldapOnce.err)
	}
	return ldapOnce.srv
}

// LDAPMain runs the package's tests, then stops the slapd that LDAP
// started (if any) and removes its directory. Call it from TestMain.
func LDAPMain(m *testing.M) {
	RunThenStop(m, "testenv: stopping slapd", func() error {
		if p := ldapOnce.proc; p != nil {
			return p.stop()
		}
		return nil
	})
}

// missingError says a program or file the server needs is not installed.
type missingError struct{ err error }

func (e *missingError) Error() string { return e.err.Error() }

func (e *missingError) Unwrap() error { return e.err }

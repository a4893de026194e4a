package testenv

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/gitgrant/gitgrant/internal/testing/testcert"
	"github.com/gitgrant/gitgrant/internal/testing/testenv/process"

	"github.com/go-ldap/ldap/v3"
)

const (
	ldapSuffix     = "dc=example,dc=org"
	ldapSchemaDir  = "/etc/ldap/schema"
	ldapModulePath = "/usr/lib/ldap"
)

var ldapUsers = []string{"alice", "bob", "carol", "dave"}

func startSlapd() (LDAPServer, *slapd, error) {
	bin := env("GITGRANT_TEST_SLAPD", "/usr/sbin/slapd")
	if _, err := os.Stat(bin); err != nil {
		return LDAPServer{}, nil, &missingError{err}
	}
	// slapadd is the same program; Debian installs it as a link next to it.
	slapadd := filepath.Join(filepath.Dir(bin), "slapadd")
	if _, err := os.Stat(slapadd); err != nil {
		return LDAPServer{}, nil, &missingError{err}
	}
	for _, f := range []string{"core.ldif", "cosine.ldif", "inetorgperson.ldif"} {
		if _, err := os.Stat(filepath.Join(ldapSchemaDir, f)); err != nil {
			return LDAPServer{}, nil, &missingError{err}
		}
	}
	if _, err := os.Stat(filepath.Join(ldapModulePath, "back_mdb.so")); err != nil {
		return LDAPServer{}, nil, &missingError{err}
	}

	dir, err := os.MkdirTemp("", "gitgrant-slapd-")
	if err != nil {
		return LDAPServer{}, nil, err
	}
	srv := LDAPServer{
		BaseDN:          ldapSuffix,
		AdminDN:         "cn=admin," + ldapSuffix,
		AdminPassword:   randomPassword(),
		ServiceDN:       "cn=gitgrant,ou=services," + ldapSuffix,
		ServicePassword: randomPassword(),
		PeopleDN:        "ou=people," + ldapSuffix,
		GroupsDN:        "ou=groups," + ldapSuffix,
		PlaceholderDN:   "cn=placeholder,ou=services," + ldapSuffix,
		Users:           append([]string(nil), ldapUsers...),
	}
	srv.CAFile = filepath.Join(dir, "ca.pem")
	if err := writeTLSFiles(dir); err != nil {
		os.RemoveAll(dir)
		return LDAPServer{}, nil, fmt.Errorf("making a test certificate: %w", err)
	}
	p, err := initSlapd(bin, slapadd, dir, srv)
	if err != nil {
		os.RemoveAll(dir)
		return LDAPServer{}, nil, err
	}
	// A port found free can be taken before slapd binds it; try again then.
	for attempt := 0; ; attempt++ {
		port, err := freePort()
		if err == nil {
			var tlsPort int
			tlsPort, err = freePort()
			srv.LDAPSURL = fmt.Sprintf("ldaps://127.0.0.1:%d", tlsPort)
		}
		if err != nil {
			os.RemoveAll(dir)
			return LDAPServer{}, nil, err
		}
		srv.URL = fmt.Sprintf("ldap://127.0.0.1:%d", port)
		err = p.start(srv)
		if err == nil {
			return srv, p, nil
		}
		if attempt == 2 {
			os.RemoveAll(dir)
			return LDAPServer{}, nil, err
		}
	}
}

// slapd is one private server process and its directory.
type slapd struct {
	bin, dir string
	proc     *process.Process
}

// initSlapd writes cn=config and the test tree into dir with slapadd.
func initSlapd(bin, slapadd, dir string, srv LDAPServer) (*slapd, error) {
	confDir := filepath.Join(dir, "slapd.d")
	dataDir := filepath.Join(dir, "data")
	for _, d := range []string{confDir, dataDir} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return nil, err
		}
	}
	config, err := ldapConfig(dir, dataDir, srv)
	if err != nil {
		return nil, err
	}
	steps := []struct {
		db, name, ldif string
	}{
		{"0", "config.ldif", config},
		{"1", "tree.ldif", ldapTree(srv)},
	}
	for _, s := range steps {
		path := filepath.Join(dir, s.name)
		if err := os.WriteFile(path, []byte(s.ldif), 0o600); err != nil {
			return nil, err
		}
		out, err := exec.Command(slapadd, "-q", "-F", confDir, "-n", s.db, "-l", path).CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("slapadd -n%s %s: %v: %s", s.db, s.name, err, strings.TrimSpace(string(out)))
		}
		// The LDIF holds the passwords; it is not needed any more.
		os.Remove(path)
	}
	return &slapd{bin: bin, dir: dir}, nil
}

// start runs slapd in the foreground on srv.URL and waits until it
// answers and the service account can bind.
func (p *slapd) start(srv LDAPServer) error {
	// -d 0 keeps slapd in the foreground without debug output; its own
	// messages go to stderr, kept for error reports.
	proc, err := process.Start(p.bin, "-d", "0", "-F", filepath.Join(p.dir, "slapd.d"), "-h", srv.URL+"/ "+srv.LDAPSURL+"/")
	if err != nil {
		return err
	}
	p.proc = proc
	return proc.WaitReady("slapd", 15*time.Second, 50*time.Millisecond, slapdStopGrace, func() error {
		conn, err := ldap.DialURL(srv.URL)
		if err != nil {
			return err
		}
		defer conn.Close()
		if err := conn.Bind(srv.ServiceDN, srv.ServicePassword); err != nil {
			return process.Fail(fmt.Errorf("test slapd answers but binding as %s failed: %w", srv.ServiceDN, err))
		}
		return nil
	})
}

// slapdStopGrace is how long slapd has after SIGTERM to close mdb cleanly.
const slapdStopGrace = 10 * time.Second

// stop terminates slapd (gracefully, so that mdb is closed cleanly) and
// removes its directory.
func (p *slapd) stop() error {
	defer os.RemoveAll(p.dir)
	if p.proc == nil {
		return nil
	}
	return p.proc.Stop(slapdStopGrace)
}

// ldapConfig is the cn=config database: the mdb backend, three schemas and
// one mdb database with an ACL that gives the service account exactly what
// gitgrant needs.
func ldapConfig(dir, dataDir string, srv LDAPServer) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, `dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: %[1]s/slapd.pid
olcArgsFile: %[1]s/slapd.args
olcLogLevel: none
olcTLSCACertificateFile: %[1]s/ca.pem
olcTLSCertificateFile: %[1]s/server.pem
olcTLSCertificateKeyFile: %[1]s/server.key

dn: cn=module{0},cn=config
objectClass: olcModuleList
cn: module{0}
olcModulePath: %[2]s
olcModuleLoad: back_mdb

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

`, dir, ldapModulePath)
	for _, f := range []string{"core.ldif", "cosine.ldif", "inetorgperson.ldif"} {
		schema, err := os.ReadFile(filepath.Join(ldapSchemaDir, f))
		if err != nil {
			return "", &missingError{err}
		}
		b.Write(bytes.TrimSpace(schema))
		b.WriteString("\n\n")
	}
	fmt.Fprintf(&b, `dn: olcDatabase={-1}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {-1}frontend
olcSizeLimit: 5000

dn: olcDatabase={0}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {0}config
olcAccess: {0}to * by * none

dn: olcDatabase={1}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {1}mdb
olcSuffix: %[1]s
olcRootDN: %[2]s
olcRootPW: %[3]s
olcDbDirectory: %[4]s
olcDbMaxSize: 268435456
olcDbIndex: objectClass eq
olcDbIndex: uid eq
olcDbIndex: member,uniqueMember eq
olcAccess: {0}to attrs=userPassword by self =x by anonymous auth by * none
olcAccess: {1}to dn.subtree="%[5]s" attrs=member,uniqueMember by dn.exact="%[6]s" write by users read by * none
olcAccess: {2}to * by users read by * none
`, srv.BaseDN, srv.AdminDN, srv.AdminPassword, dataDir, srv.GroupsDN, srv.ServiceDN)
	return b.String(), nil
}

// ldapTree is the test tree: people, groups, the service account and the
// placeholder entry.
func ldapTree(srv LDAPServer) string {
	var b strings.Builder
	fmt.Fprintf(&b, `dn: %s
objectClass: dcObject
objectClass: organization
dc: example
o: Example

dn: %s
objectClass: organizationalUnit
ou: people

dn: %s
objectClass: organizationalUnit
ou: groups

dn: ou=services,%s
objectClass: organizationalUnit
ou: services

dn: %s
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: gitgrant
userPassword: %s

dn: %s
objectClass: organizationalRole
cn: placeholder
description: Keeps gitgrant-managed groups non-empty; grants nothing.
`, srv.BaseDN, srv.PeopleDN, srv.GroupsDN, srv.BaseDN, srv.ServiceDN, srv.ServicePassword, srv.PlaceholderDN)
	for _, u := range srv.Users {
		fmt.Fprintf(&b, "\ndn: %s\nobjectClass: inetOrgPerson\nuid: %s\ncn: %s\nsn: %s\n", srv.UserDN(u), u, u, u)
	}
	return b.String()
}

// writeTLSFiles makes a CA and a server certificate for 127.0.0.1 and
// localhost, valid for a day, as ca.pem, server.pem and server.key in dir.
func writeTLSFiles(dir string) error {
	p, err := testcert.Loopback("gitgrant test CA", "127.0.0.1")
	if err != nil {
		return err
	}
	for name, data := range map[string][]byte{"ca.pem": p.CA, "server.pem": p.Cert, "server.key": p.Key} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return err
		}
	}
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randomPassword() string {
	b := make([]byte, 18)
	rand.Read(b)
	return hex.EncodeToString(b)
}

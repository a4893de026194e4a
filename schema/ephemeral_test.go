package schema

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/testing/sshkeys"
)

const ephemeralConfig = `identities:
  alice:
    ssh_keys: ["%KEY%"]
  bob: {}
providers:
  orders-db:
    type: postgres
    dsn_env: ORDERS_DB_DSN
    roles:
      readonly: {approvals: 0}
      support: {approvals: 1, mode: ephemeral}
      migrate: {approvals: 1, mode: ephemeral, account_prefix: tmp_mig_, on_owned: refuse}
  shop-db:
    type: mysql
    dsn_env: SHOP_DB_DSN
    roles:
      ro: {approvals: 0, mode: ephemeral}
`

func TestEphemeralConfigLoads(t *testing.T) {
	t.Parallel()
	key := sshkeys.Generate(t, sshkeys.Ed25519, "").Public
	cfg, ds := LoadConfig("gitgrant.yaml", []byte(strings.Replace(ephemeralConfig, "%KEY%", key, 1)))
	if cfg == nil || len(ds) > 0 {
		t.Fatalf("rejected: %v", ds)
	}
	if diff := cmp.Diff([]string{key}, cfg.Identities["alice"].SSHKeys); diff != "" {
		t.Errorf("ssh_keys (-want +got):\n%s", diff)
	}
	roles := cfg.Providers["orders-db"].Roles
	want := map[string]gitgrant.RoleConfig{
		"readonly": {},
		"support":  {Approvals: 1, Mode: gitgrant.ModeEphemeral},
		"migrate":  {Approvals: 1, Mode: gitgrant.ModeEphemeral, AccountPrefix: "tmp_mig_", OnOwned: gitgrant.OnOwnedRefuse},
	}
	if diff := cmp.Diff(want, roles); diff != "" {
		t.Errorf("roles (-want +got):\n%s", diff)
	}
	// An ephemeral role's login is made for the request: bob, who has no
	// principal on orders-db, may ask for one, not for a membership.
	c := NewPolicy(cfg, testNow)
	for role, wantErr := range map[string]bool{"support": false, "readonly": true} {
		req := loadGrantRequest(t, "requester: bob\n", "orders-db", role, "look at an order")
		if got := c.Check(req); (findDiag(got, "bob has no principal on orders-db") != nil) != wantErr {
			t.Errorf("%s: %v (want an error: %v)", role, got, wantErr)
		}
	}
}

func TestBadEphemeralConfigs(t *testing.T) {
	t.Parallel()
	ecdsa := sshkeys.Generate(t, sshkeys.ECDSA, "").Public
	short := sshkeys.Generate(t, sshkeys.RSA1024, "").Public
	good := sshkeys.Generate(t, sshkeys.Ed25519, "").Public
	base := strings.Replace(ephemeralConfig, "%KEY%", good, 1)
	role := "      support: {approvals: 1, mode: ephemeral}"
	testBadConfigs(t, []badConfig{
		{name: "type without ephemeral accounts", content: `providers:
  script:
    type: exec
    command: [./grant.sh]
    roles:
      ops: {approvals: 1, mode: ephemeral}
`, line: 6, col: 33, field: "providers.script.roles.ops.mode", message: "provider type exec has no ephemeral accounts (types that do: mysql, postgres)", hint: "remove mode: ephemeral"},
		{name: "unknown mode", content: strings.Replace(base, role, "      support: {approvals: 1, mode: temporary}", 1), line: 11, col: 37, field: "providers.orders-db.roles.support.mode", message: "must be one of"},
		{name: "prefix with upper case", content: strings.Replace(base, role, role[:len(role)-1]+", account_prefix: Tmp_}", 1), line: 11, col: 64, field: "providers.orders-db.roles.support.account_prefix", message: `account prefix "Tmp_" must start with a lower-case letter`},
		{name: "prefix without a trailing underscore", content: strings.Replace(base, role, role[:len(role)-1]+", account_prefix: tmp}", 1), line: 11, col: 64, field: "providers.orders-db.roles.support.account_prefix", message: `must end with "_"`},
		{name: "prefix too long for mysql", content: strings.Replace(base, "ro: {approvals: 0, mode: ephemeral}", "ro: {approvals: 0, mode: ephemeral, account_prefix: shop_readonly_support_}", 1), line: 17, col: 59, field: "providers.shop-db.roles.ro.account_prefix", message: "longer than the 32 this system allows (at most 20)", hint: "set account_prefix"},
		{name: "default prefix too long for mysql", content: strings.Replace(base, "ro: {approvals: 0, mode: ephemeral}", "readonly-support-x: {approvals: 0, mode: ephemeral}", 1), line: 17, col: 48, field: "providers.shop-db.roles.readonly-support-x.mode", message: `account prefix "gg_readonly_support_x_" is 22 characters`, hint: "account_prefix to a shorter prefix such as gg_readonly_"},
		{name: "two roles, one prefix", content: strings.Replace(base, "account_prefix: tmp_mig_", "account_prefix: gg_support_", 1), line: 11, col: 37, field: "providers.orders-db.roles.support.mode", message: `role support's accounts would start with "gg_support_", as role migrate's do`},
		{name: "prefix without ephemeral", content: strings.Replace(base, "readonly: {approvals: 0}", "readonly: {approvals: 0, account_prefix: ro_}", 1), line: 10, col: 48, field: "providers.orders-db.roles.readonly.account_prefix", message: "applies only to roles with mode: ephemeral"},
		{name: "on_owned on mysql", content: strings.Replace(base, "ro: {approvals: 0, mode: ephemeral}", "ro: {approvals: 0, mode: ephemeral, on_owned: reassign}", 1), line: 17, col: 53, field: "providers.shop-db.roles.ro.on_owned", message: "mysql accounts own no objects that can be reassigned"},
		{name: "bad on_owned", content: strings.Replace(base, "on_owned: refuse", "on_owned: keep", 1), line: 12, col: 84, field: "providers.orders-db.roles.migrate.on_owned", message: "must be one of"},
		{name: "not a key", content: strings.Replace(base, good, "ssh-ed25519 AAAAnotbase64!", 1), line: 3, col: 16, field: "identities.alice.ssh_keys.0", message: "not a public SSH key in authorized_keys form"},
		{name: "ecdsa key", content: strings.Replace(base, good, ecdsa, 1), line: 3, col: 16, field: "identities.alice.ssh_keys.0", message: "an ecdsa-sha2-nistp256 key; secrets can be encrypted only to ssh-ed25519 and ssh-rsa keys"},
		{name: "short rsa key", content: strings.Replace(base, good, short, 1), line: 3, col: 16, field: "identities.alice.ssh_keys.0", message: "an RSA key of 1024 bits", hint: "ssh-ed25519"},
		{name: "broken key", content: strings.Replace(base, good, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIH", 1), line: 3, col: 16, field: "identities.alice.ssh_keys.0", message: "not a public SSH key"},
	})
}

func TestEphemeralMaxLogin(t *testing.T) {
	t.Parallel()
	if n, ok := EphemeralMaxLogin("postgres"); !ok || n != 63 {
		t.Errorf("postgres: %d, %v", n, ok)
	}
	if _, ok := EphemeralMaxLogin("ldap"); ok {
		t.Error("ldap has ephemeral accounts")
	}
}

// Simulation, PostgreSQL seed 21: a break-glass request for an ephemeral
// role has no pull request to hand the credentials over on, so every pass
// made the account and dropped it. It is refused, saying what to do.
func TestEmergencyEphemeralRefused(t *testing.T) {
	t.Parallel()
	key := sshkeys.Generate(t, sshkeys.Ed25519, "").Public
	cfg, ds := LoadConfig("gitgrant.yaml", []byte(strings.Replace(ephemeralConfig, "%KEY%", key, 1)+"policy:\n  break_glass: {members: [alice]}\n"))
	if cfg == nil || ds.HasErrors() {
		t.Fatalf("rejected: %v", ds)
	}
	c := NewPolicy(cfg, testNow)
	for role, refused := range map[string]bool{"support": true, "readonly": false} {
		req := loadGrantRequest(t, "requester: alice\nemergency: true\n", "orders-db", role, "the site is down")
		d := findDiag(c.Check(req), "break-glass cannot hand over")
		if (d != nil) != refused {
			t.Errorf("%s: %v (want refused: %v)", role, c.Check(req), refused)
		}
		if d != nil && (d.Severity != gitgrant.SeverityError || d.Hint == "") {
			t.Errorf("%s: %+v, want an error with a hint", role, d)
		}
	}
}

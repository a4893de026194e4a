package schema

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gitgrant/gitgrant"
)

func TestConfigLoads(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	want := gitgrant.ProviderConfig{
		Name: "orders-db", Type: "postgres", Drift: gitgrant.DriftRevoke,
		Roles: map[string]gitgrant.RoleConfig{
			"readonly":  {MaxDuration: gitgrant.Duration(8 * time.Hour)},
			"readwrite": {MaxDuration: gitgrant.Duration(4 * time.Hour), Approvals: 1},
		},
		Settings: map[string]any{"dsn_env": "ORDERS_DB_DSN"},
	}
	if diff := cmp.Diff(want, cfg.Providers["orders-db"]); diff != "" {
		t.Errorf("orders-db (-want +got):\n%s", diff)
	}
	if got := cfg.EffectiveMaxDuration("ldap", "admins"); got != gitgrant.Duration(2*time.Hour) {
		t.Errorf("EffectiveMaxDuration(ldap, admins) = %v, want 2h", got)
	}
	if key, _, ok := cfg.Identity("ALICE"); !ok || key != "alice" {
		t.Errorf("Identity(ALICE) = %q, %v; logins are case-insensitive", key, ok)
	}
	if cfg.Cleanup.Mode != gitgrant.CleanupPush {
		t.Errorf("cleanup mode defaults to %q, want push", cfg.Cleanup.Mode)
	}
}

// The template at the repository root is what people copy; it must load.
func TestCallTimeout(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		setting string
		want    time.Duration
	}{{"", gitgrant.DefaultCallTimeout}, {"\n    call_timeout: 5s", 5 * time.Second}, {"\n    call_timeout: 2m30s", 150 * time.Second}} {
		cfg, diags := LoadConfig("gitgrant.yaml", []byte(strings.Replace(baseConfig, "type: postgres", "type: postgres"+tc.setting, 1)))
		if diags.HasErrors() {
			t.Fatalf("%q: %v", tc.setting, diags)
		}
		p := cfg.Providers["orders-db"]
		if got := p.Timeout(); got != tc.want {
			t.Errorf("%q: Timeout() = %v, want %v", tc.setting, got, tc.want)
		}
		if _, inSettings := p.Settings["call_timeout"]; inSettings {
			t.Errorf("call_timeout leaked into the type's settings")
		}
	}
}

func TestTemplateConfigLoads(t *testing.T) {
	t.Parallel()
	if cfg, diags := LoadConfig("gitgrant.yaml", readTestFile(t, "../gitgrant.yaml")); cfg == nil || len(diags) > 0 {
		t.Fatalf("template gitgrant.yaml: %v", diags)
	}
}

const baseConfig = `providers:
  orders-db:
    type: postgres
    dsn_env: ORDERS_DB_DSN
    roles:
      readonly: {approvals: 0}
`

// badConfig is a gitgrant.yaml that LoadConfig must reject with the
// diagnostic message (at line:col on field, with hint, when set), and
// whose diagnostics must not show mustNotShow.
type badConfig struct {
	name, content     string
	line, col         int
	field, message    string
	hint, mustNotShow string
}

// testBadConfigs runs each case as a parallel subtest.
func testBadConfigs(t *testing.T, cases []badConfig) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg, ds := LoadConfig("gitgrant.yaml", []byte(tc.content))
			if cfg != nil {
				t.Fatalf("accepted, want %q", tc.message)
			}
			wantDiag(t, ds, tc.message, tc.line, tc.col, tc.field, tc.hint)
			if tc.mustNotShow != "" && strings.Contains(ds.Error(), tc.mustNotShow) {
				t.Errorf("diagnostics repeat the secret:\n%v", ds)
			}
		})
	}
}

func TestBadConfigs(t *testing.T) {
	t.Parallel()
	testBadConfigs(t, []badConfig{
		{name: "inline password", content: strings.Replace(baseConfig, "dsn_env: ORDERS_DB_DSN", "password: hunter2hunter2", 1), line: 4, col: 5, field: "providers.orders-db.password", message: `"password" holds a secret inline`, hint: "password_env", mustNotShow: "hunter2"},
		{name: "inline dsn", content: strings.Replace(baseConfig, "dsn_env: ORDERS_DB_DSN", "dsn: postgres://app:s3cretpw@db/orders", 1), line: 4, col: 5, field: "providers.orders-db.dsn", message: `"dsn" holds a secret inline`, mustNotShow: "s3cretpw"},
		{name: "password in url value", content: strings.Replace(baseConfig, "dsn_env: ORDERS_DB_DSN", "dsn_file: postgres://app:s3cretpw@db/orders", 1), line: 4, col: 15, field: "providers.orders-db.dsn_file", message: "looks like a credential", mustNotShow: "s3cretpw"},
		{name: "token value", content: strings.Replace(baseConfig, "dsn_env: ORDERS_DB_DSN", "dsn_env: ghp_abcdefghijklmnopqrstuvwxyz0123456789", 1), line: 4, col: 14, field: "providers.orders-db.dsn_env", message: "looks like a credential", mustNotShow: "ghp_abc"},
		{name: "secret pasted into env ref", content: strings.Replace(baseConfig, "ORDERS_DB_DSN", "correct horse battery", 1), line: 4, col: 14, field: "providers.orders-db.dsn_env", message: "is not valid", hint: "environment variable", mustNotShow: "horse"},
		{name: "unknown type", content: strings.Replace(baseConfig, "type: postgres", "type: postgress", 1), line: 3, col: 11, field: "providers.orders-db.type", message: `unknown provider type "postgress"`, hint: `did you mean "postgres"?`},
		{name: "unknown setting", content: strings.Replace(baseConfig, "dsn_env: ORDERS_DB_DSN", "dsn_env: ORDERS_DB_DSN\n    terminate_session: true", 1), line: 5, col: 5, field: "providers.orders-db.terminate_session", message: `unknown field "terminate_session"`, hint: `did you mean "terminate_sessions"?`},
		{name: "no dsn", content: strings.Replace(baseConfig, "    dsn_env: ORDERS_DB_DSN\n", "", 1), line: 3, col: 5, field: "providers.orders-db", message: "set exactly one of dsn_env and dsn_file"},
		{name: "no providers", content: "policy: {}\n", line: 1, col: 1, field: "providers", message: `missing required field "providers"`},
		{name: "no roles", content: strings.Replace(baseConfig, "    roles:\n      readonly: {approvals: 0}\n", "", 1), line: 3, col: 5, field: "providers.orders-db.roles", message: `missing required field "roles"`},
		{name: "bad provider name", content: strings.Replace(baseConfig, "orders-db:", "Orders DB:", 1), line: 2, col: 3, field: "providers.Orders DB", message: `name "Orders DB" is not allowed`},
		{name: "negative approvals", content: strings.Replace(baseConfig, "approvals: 0", "approvals: -1", 1), line: 6, col: 29, field: "providers.orders-db.roles.readonly.approvals", message: "must be at least 0"},
		{name: "bad call timeout", content: strings.Replace(baseConfig, "type: postgres", "type: postgres\n    call_timeout: soon", 1), line: 4, col: 19, field: "providers.orders-db.call_timeout", message: "is not valid", hint: "Go duration such as 30s"},
		{name: "bad drift", content: strings.Replace(baseConfig, "type: postgres", "type: postgres\n    drift: ignore", 1), line: 4, col: 12, field: "providers.orders-db.drift", message: "must be one of"},
		{name: "bad ticket pattern", content: "policy:\n  ticket_pattern: \"INC-[0-9\"\n" + baseConfig, line: 2, col: 19, field: "policy.ticket_pattern", message: "not a valid regular expression"},
		{name: "negative reason minimum", content: "policy:\n  min_reason_length: -1\n" + baseConfig, line: 2, col: 22, field: "policy.min_reason_length", message: "must be at least 0"},
		{name: "reason minimum over the maximum", content: "policy:\n  min_reason_length: 2001\n" + baseConfig, line: 2, col: 22, field: "policy.min_reason_length", message: "must be at most 2000"},
		{name: "zero policy max", content: "policy:\n  max_duration: 0h\n" + baseConfig, line: 2, col: 17, field: "policy.max_duration", message: "must be longer than zero"},
		{name: "principal for unknown provider", content: "identities:\n  alice:\n    principals: {orders: alice}\n" + baseConfig, line: 3, col: 18, field: "identities.alice.principals.orders", message: `undeclared provider "orders"`, hint: `did you mean "orders-db"?`},
		{name: "shared principal", content: "identities:\n  alice:\n    principals: {orders-db: app}\n  bob:\n    principals: {orders-db: app}\n" + baseConfig, line: 5, col: 18, field: "identities.bob.principals.orders-db", message: `principal "app" on orders-db is also alice's`},
		{name: "shared email", content: "identities:\n  alice: {email: a@example.com}\n  bob: {email: A@example.com}\n" + baseConfig, line: 3, col: 16, field: "identities.bob.email", message: "email A@example.com is also alice's"},
		{name: "identities differing in case", content: "identities:\n  alice: {}\n  Alice: {}\n" + baseConfig, line: 2, col: 3, field: "identities.alice", message: "differs from"},
		{name: "too few approvers", content: strings.Replace(baseConfig, "{approvals: 0}", "{approvals: 2, approvers: [alice]}", 1), line: 6, col: 29, field: "providers.orders-db.roles.readonly.approvals", message: "needs 2 approvals but only 1 approver"},
		{name: "standing unknown role", content: baseConfig + "    standing:\n      - {principal: app, roles: [admin]}\n", line: 8, col: 9, field: "providers.orders-db.standing.0", message: `undeclared role "admin"`},
		{name: "bad cleanup", content: baseConfig + "cleanup: {mode: force-push}\n", line: 7, col: 17, field: "cleanup.mode", message: "must be one of"},
		{name: "unknown top-level key", content: "polcy: {}\n" + baseConfig, line: 1, col: 1, field: "polcy", message: `unknown field "polcy"`, hint: `did you mean "policy"?`},
		{name: "alias bomb", content: "x: &a [1,1,1,1,1,1,1,1,1,1]\ny: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nz: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nw: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\nv: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nu: [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\n", message: "document expands to more than"},
		{name: "look-alike identity", content: "identities:\n  аlice: {}\n" + baseConfig, line: 2, col: 3, field: "identities.аlice", message: "CYRILLIC SMALL LETTER A", hint: `looks like "alice"`},
		{name: "look-alike approver", content: strings.Replace(baseConfig, "{approvals: 0}", "{approvals: 1, approvers: [bοb]}", 1), line: 6, col: 44, field: "providers.orders-db.roles.readonly.approvers.0", message: "GREEK SMALL LETTER OMICRON", hint: `looks like "bob"`},
		{name: "look-alike break-glass team", content: "policy:\n  break_glass:\n    members: [\"@example-org/sre\", \"@еxample-org/sre\"]\n" + baseConfig, line: 3, col: 35, field: "policy.break_glass.members.1", message: "CYRILLIC SMALL LETTER IE", hint: `looks like "example-org/sre"`},
		{name: "future version", content: "version: 9\n" + baseConfig, line: 1, col: 10, field: "version", message: "newer than this gitgrant"},
	})
}

// Anchors and merge keys are how people share role definitions in a large
// config; they are allowed there, unlike in request files.
func TestConfigAnchorsAndMerge(t *testing.T) {
	t.Parallel()
	cfg, ds := LoadConfig("gitgrant.yaml", []byte(`
x-role: &short {max_duration: 1h, approvals: 1}
providers:
  orders-db:
    type: postgres
    dsn_env: DSN
    roles:
      a: *short
      b:
        <<: *short
        approvals: 2
`))
	if cfg != nil || findDiag(ds, `unknown field "x-role"`) == nil {
		t.Fatalf("want an unknown field error for x-role, got %v", ds)
	}
	cfg, ds = LoadConfig("gitgrant.yaml", []byte(`
providers:
  orders-db:
    type: postgres
    dsn_env: DSN
    roles:
      a: &short {max_duration: 1h, approvals: 1}
      b:
        <<: *short
        approvals: 2
`))
	if cfg == nil {
		t.Fatalf("config with anchors rejected: %v", ds)
	}
	got := cfg.Providers["orders-db"].Roles
	want := map[string]gitgrant.RoleConfig{
		"a": {MaxDuration: gitgrant.Duration(time.Hour), Approvals: 1},
		"b": {MaxDuration: gitgrant.Duration(time.Hour), Approvals: 2},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("roles (-want +got):\n%s", diff)
	}
}

func TestConfigWarnings(t *testing.T) {
	t.Parallel()
	cfg, ds := LoadConfig("gitgrant.yaml", []byte("policy: {max_duration: 2h}\n"+strings.Replace(baseConfig, "{approvals: 0}", "{approvals: 0, max_duration: 8h}", 1)))
	if cfg == nil {
		t.Fatalf("warnings must not reject the config: %v", ds)
	}
	if d := findDiag(ds, "caps every grant at 2h"); d == nil || d.Severity != gitgrant.SeverityWarning {
		t.Errorf("want a warning about the role max over the policy max, got %v", ds)
	}
}

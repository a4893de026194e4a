package gitgrant

import "testing"

func TestPrincipalOf(t *testing.T) {
	t.Parallel()
	cfg := &Config{Providers: map[string]ProviderConfig{
		"db":   {Name: "db", Type: "postgres"},
		"okta": {Name: "okta", Type: "okta", Settings: map[string]any{"principal": "email"}},
	}}
	alice := Identity{Email: "alice@example.com", Principals: map[string]string{"db": "alice_db"}}
	cases := []struct {
		id             Identity
		provider, want string
	}{
		{alice, "db", "alice_db"},
		{alice, "okta", "alice@example.com"},                                                // provider names people by email
		{Identity{Email: "bob@example.com"}, "db", ""},                                      // no fallback where names are not emails
		{Identity{Principals: map[string]string{"okta": "bob.smith"}}, "okta", "bob.smith"}, // an explicit principal wins
		{Identity{}, "okta", ""},
	}
	for _, tc := range cases {
		if got := cfg.PrincipalOf(tc.id, tc.provider); got != tc.want {
			t.Errorf("PrincipalOf(%+v, %s) = %q, want %q", tc.id, tc.provider, got, tc.want)
		}
	}
}

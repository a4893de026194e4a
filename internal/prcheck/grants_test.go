package prcheck

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gitgrant/gitgrant"
)

// The comment names the principal the reconciler will grant to: for a
// provider that names people by email, the identity's email (it once
// showed "—" while the reconciler granted to the email).
func TestCommentPrincipalIsTheGrantedOne(t *testing.T) {
	t.Parallel()
	cfg := &gitgrant.Config{
		Identities: map[string]gitgrant.Identity{"alice": {Email: "alice@example.com", Principals: map[string]string{"db": "alice_pg"}}},
		Providers: map[string]gitgrant.ProviderConfig{
			"db":   {Name: "db", Type: "postgres", Roles: map[string]gitgrant.RoleConfig{"ro": {}}},
			"okta": {Name: "okta", Type: "okta", Settings: map[string]any{"principal": "email"}, Roles: map[string]gitgrant.RoleConfig{"ops": {}}},
		},
	}
	req := &gitgrant.Request{Requester: "alice", Grants: []gitgrant.GrantRef{{Provider: "db", Role: "ro"}, {Provider: "okta", Role: "ops"}}}
	got := []string{}
	for _, g := range grants(cfg, req) {
		got = append(got, g.Principal)
	}
	if want := []string{"alice_pg", "alice@example.com"}; !cmp.Equal(want, got) {
		t.Errorf("principals %q, want %q", got, want)
	}
}

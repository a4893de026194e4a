package providertest

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gitgrant/gitgrant/providers"
)

// builtinHostile are names no provider may turn into a grant of something
// else. Each must be rejected (ErrInvalidName), or quoted safely so that
// it refers to a principal that does not exist (ErrNotFound).
var builtinHostile = []string{
	"",
	"'",
	`"`,
	"`",
	`x'; DROP ROLE postgres; --`,
	`x"; DROP TABLE users; --`,
	"x`; DROP DATABASE mysql; --",
	`' OR '1'='1`,
	`back\slash\`,
	`\'; SELECT 1; --`,
	"new\nline",
	"tab\there",
	"nul\x00byte",
	"$(touch /tmp/gitgrant-pwned)",
	"`touch /tmp/gitgrant-pwned`",
	"a;b|c&d>e",
	"*",
	"%",
	"_",
	"ユーザー",
	"\u202eevil",
	"emoji\U0001F600",
	"\xff\xfe invalid utf-8",
	strings.Repeat("a", 300),
	strings.Repeat("é", 200),
	"user@host",
	"'x'@'%' OR 1=1",
	"cn=admin,dc=example,dc=org",
	"../../etc/passwd",
	"public",
	"PUBLIC",
	"none",
	"CURRENT_USER",
}

// rejected reports whether err is an acceptable answer to a hostile name.
func rejected(err error) bool {
	return errors.Is(err, providers.ErrInvalidName) || errors.Is(err, providers.ErrNotFound)
}

func testHostileNames(t *testing.T, h Harness) {
	p := h.open(t)
	ctx := t.Context()
	role := h.Roles[0]
	names := append(slices.Clone(builtinHostile), h.HostileNames...)
	for _, name := range names {
		if slices.Contains(h.Principals, name) || slices.Contains(h.Roles, name) {
			continue
		}
		err := p.Grant(ctx, providers.Grant{Role: role, Principal: name, Until: time.Now().Add(time.Hour)})
		h.noSecrets(t, err)
		if !rejected(err) {
			t.Errorf("Grant(principal %q): err = %v, want ErrInvalidName or ErrNotFound", name, err)
		}
		if err := p.Revoke(ctx, role, name); err != nil && !rejected(err) {
			t.Errorf("Revoke(principal %q): err = %v, want nil, ErrInvalidName or ErrNotFound", name, err)
		}
		if _, err := p.Members(ctx, name); !rejected(err) {
			t.Errorf("Members(role %q): err = %v, want ErrInvalidName or ErrNotFound", name, err)
		}
		err = p.Grant(ctx, providers.Grant{Role: name, Principal: h.Principals[0], Until: time.Now().Add(time.Hour)})
		if !rejected(err) {
			t.Errorf("Grant(role %q): err = %v, want ErrInvalidName or ErrNotFound", name, err)
		}
		if err := p.Revoke(ctx, name, h.Principals[0]); !rejected(err) && err != nil {
			t.Errorf("Revoke(role %q): err = %v, want nil, ErrInvalidName or ErrNotFound", name, err)
		}
	}
	// Nothing was granted on the way, and the provider still works.
	for _, r := range h.Roles {
		if got := h.members(t, p, r); len(got) != 0 {
			t.Errorf("members of %q after hostile names: %v", r, got)
		}
	}
	if err := p.Grant(ctx, providers.Grant{Role: role, Principal: h.Principals[0]}); err != nil {
		t.Errorf("Grant after hostile names: %v", err)
	}
	if diff := cmp.Diff([]string{h.Principals[0]}, h.members(t, p, role)); diff != "" {
		t.Errorf("members (-want +got):\n%s", diff)
	}
}

func testHostileTargets(t *testing.T, h Harness) {
	if h.OpenWithTarget == nil {
		t.Skip("the harness sets no OpenWithTarget")
	}
	ctx := t.Context()
	for _, target := range builtinHostile {
		p, err := h.OpenWithTarget(t, target)
		if err != nil {
			if !errors.Is(err, providers.ErrInvalidName) {
				t.Errorf("open with target %q: err = %v, want nil or ErrInvalidName", target, err)
			}
			continue
		}
		if _, err := p.Members(ctx, "hostile"); !rejected(err) {
			t.Errorf("target %q: Members: err = %v, want ErrInvalidName or ErrNotFound", target, err)
		}
		if err := p.Grant(ctx, providers.Grant{Role: "hostile", Principal: h.Principals[0]}); !rejected(err) {
			t.Errorf("target %q: Grant: err = %v, want ErrInvalidName or ErrNotFound", target, err)
		}
		if err := p.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
	// The real roles are untouched.
	p := h.open(t)
	for _, r := range h.Roles {
		if got := h.members(t, p, r); len(got) != 0 {
			t.Errorf("members of %q after hostile targets: %v", r, got)
		}
	}
}

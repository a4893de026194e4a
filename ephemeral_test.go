package gitgrant_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/gitgrant/gitgrant"
)

func TestDefaultAccountPrefix(t *testing.T) {
	t.Parallel()
	tests := []struct{ role, want string }{
		{"readonly", "gg_readonly_"},
		{"Read-Write", "gg_read_write_"},
		{"ops.v2", "gg_ops_v2_"},
	}
	for _, tt := range tests {
		if got := gitgrant.DefaultAccountPrefix(tt.role); got != tt.want {
			t.Errorf("DefaultAccountPrefix(%q) = %q, want %q", tt.role, got, tt.want)
		}
		if err := gitgrant.CheckAccountPrefix(gitgrant.DefaultAccountPrefix(tt.role), 63); err != nil {
			t.Errorf("the default prefix of %q is refused: %v", tt.role, err)
		}
	}
}

func TestCheckAccountPrefix(t *testing.T) {
	t.Parallel()
	tests := []struct {
		prefix  string
		max     int
		wantErr string
	}{
		{"gg_reader_", 63, ""},
		{"x_", 32, ""},
		{strings.Repeat("a", 50) + "_", 63, ""},
		{strings.Repeat("a", 51) + "_", 63, "longer than the 63"},
		{"gg_reader_", 21, "longer than the 21"},
		{"", 63, "empty"},
		{"Gg_", 63, "lower-case letter"},
		{"1gg_", 63, "lower-case letter"},
		{"gg", 63, `end with "_"`},
		{"gg-reader_", 63, `not '-'`},
		{"gg_r\u00e9_", 63, "only lower-case letters"},
		{"gg\"; drop_", 63, "only lower-case letters"},
	}
	for _, tt := range tests {
		err := gitgrant.CheckAccountPrefix(tt.prefix, tt.max)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("CheckAccountPrefix(%q, %d) = %v, want nil", tt.prefix, tt.max, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("CheckAccountPrefix(%q, %d) = %v, want an error with %q", tt.prefix, tt.max, err, tt.wantErr)
		}
	}
}

func TestNewAccountName(t *testing.T) {
	t.Parallel()
	valid := regexp.MustCompile(`^gg_reader_[a-z0-9]{12}$`)
	seen := map[string]bool{}
	for range 1000 {
		name := gitgrant.NewAccountName("gg_reader_")
		if !valid.MatchString(name) {
			t.Fatalf("NewAccountName = %q, want the prefix and 12 of [a-z0-9]", name)
		}
		if err := gitgrant.CheckAccountName("gg_reader_", name, 32); err != nil {
			t.Fatalf("a new name is refused: %v", err)
		}
		if seen[name] {
			t.Fatalf("NewAccountName repeated %q", name)
		}
		seen[name] = true
	}
}

func TestCheckAccountName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		ok   bool
	}{
		{"gg_reader_abc123", true},
		{"gg_reader_a", true},
		{"gg_reader_", false},
		{"gg_reader_ABC", false},
		{"gg_reader_a_b", false}, // another role's prefix gg_reader_a_
		{"gg_reader_abc; DROP", false},
		{"gg_reader_abc\x00", false},
		{"alice", false},
		{"GG_reader_abc", false},
		{"gg_reader_" + strings.Repeat("a", 54), false},
	}
	for _, tt := range tests {
		err := gitgrant.CheckAccountName("gg_reader_", tt.name, 63)
		if (err == nil) != tt.ok {
			t.Errorf("CheckAccountName(%q) = %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
	if err := gitgrant.CheckAccountName("", "abc", 63); err == nil {
		t.Error("an empty prefix accepted a name")
	}
}

func TestRoleEphemeralSettings(t *testing.T) {
	t.Parallel()
	p := gitgrant.ProviderConfig{Roles: map[string]gitgrant.RoleConfig{
		"plain":  {},
		"eph":    {Mode: gitgrant.ModeEphemeral},
		"custom": {Mode: gitgrant.ModeEphemeral, AccountPrefix: "tmp_", OnOwned: gitgrant.OnOwnedRefuse},
	}}
	if p.IsEphemeral("plain") || !p.IsEphemeral("eph") || p.IsEphemeral("missing") {
		t.Error("IsEphemeral is wrong")
	}
	if got := p.RoleAccountPrefix("eph"); got != "gg_eph_" {
		t.Errorf("default prefix %q", got)
	}
	if got := p.RoleAccountPrefix("custom"); got != "tmp_" {
		t.Errorf("custom prefix %q", got)
	}
	if p.RoleOnOwned("eph") != gitgrant.OnOwnedReassign || p.RoleOnOwned("custom") != gitgrant.OnOwnedRefuse {
		t.Error("RoleOnOwned is wrong")
	}
}

package gitgrant

import (
	"testing"
	"time"
)

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

func TestProviderFolder(t *testing.T) {
	t.Parallel()
	for path, want := range map[string]string{
		"requests/db/alice.yaml":     "db",
		"requests/db/sub/alice.yaml": "db",
		"requests/./db/alice.yaml":   "db",
		"requests/alice.yaml":        "",
		"other/db/alice.yaml":        "",
		"requests/../db/alice.yaml":  "",
	} {
		if got := ProviderFolder(path); got != want {
			t.Errorf("ProviderFolder(%q) = %q, want %q", path, got, want)
		}
	}
}

func TestRequestWindow(t *testing.T) {
	t.Parallel()
	merged := time.Date(2030, 1, 1, 10, 0, 0, 0, time.UTC)
	cases := []struct {
		name    string
		req     Request
		limit   Duration
		want    Window
		clamped bool
	}{
		{"duration from the merge", Request{Duration: Duration(2 * time.Hour)}, 0, Window{merged, merged.Add(2 * time.Hour)}, false},
		{"starts later", Request{Duration: Duration(time.Hour), Starts: merged.Add(time.Hour)}, 0, Window{merged.Add(time.Hour), merged.Add(2 * time.Hour)}, false},
		{"starts earlier is the merge", Request{Duration: Duration(time.Hour), Starts: merged.Add(-time.Hour)}, 0, Window{merged, merged.Add(time.Hour)}, false},
		{"clamped", Request{Duration: Duration(8 * time.Hour)}, Duration(4 * time.Hour), Window{merged, merged.Add(4 * time.Hour)}, true},
		{"expires", Request{Expires: merged.Add(3 * time.Hour)}, 0, Window{merged, merged.Add(3 * time.Hour)}, false},
		{"expired before the merge", Request{Expires: merged.Add(-time.Hour)}, 0, Window{merged, merged}, false},
	}
	for _, tc := range cases {
		w, clamped := tc.req.Window(merged, tc.limit)
		if w != tc.want || clamped != tc.clamped {
			t.Errorf("%s: %v %v, want %v %v", tc.name, w, clamped, tc.want, tc.clamped)
		}
	}
}

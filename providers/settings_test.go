package providers

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gitgrant/gitgrant"
)

type testSettings struct {
	URL      string   `json:"url"`
	Rate     *float64 `json:"requests_per_second"`
	Attempts int      `json:"max_attempts"`
	On       bool     `json:"on"`
}

func TestDecode(t *testing.T) {
	t.Parallel()
	rate := 2.5
	tests := []struct {
		name     string
		settings map[string]any
		want     testSettings
		wantErr  string
	}{
		{name: "every kind of value", settings: map[string]any{"url": "https://x", "requests_per_second": 2.5, "max_attempts": 3, "on": true},
			want: testSettings{URL: "https://x", Rate: &rate, Attempts: 3, On: true}},
		{name: "absent keys keep the zero value", settings: nil},
		{name: "unknown key", settings: map[string]any{"url": "https://x", "urll": "y"}, wantErr: `provider p: unknown setting "urll" (see gitgrant schema provider t)`},
		{name: "string for a number", settings: map[string]any{"requests_per_second": "fast"}, wantErr: "provider p: setting requests_per_second must be a number, not string"},
		{name: "fraction for a whole number", settings: map[string]any{"max_attempts": 1.5}, wantErr: "provider p: setting max_attempts must be a whole number, not number 1.5"},
		{name: "string for a boolean", settings: map[string]any{"on": "yes"}, wantErr: "provider p: setting on must be true or false, not string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got testSettings
			err := Decode(gitgrant.ProviderConfig{Name: "p", Type: "t", Settings: tt.settings}, &got)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("Decode: err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Decode (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSecretRef(t *testing.T) {
	t.Parallel()
	deps := Deps{
		Getenv: func(k string) string {
			if k == "TOKEN" {
				return "s3cret"
			}
			return ""
		},
		ReadFile: func(p string) ([]byte, error) {
			if p == "/run/token" {
				return []byte("s3cret\r\n"), nil
			}
			return nil, errors.New("no such file")
		},
	}
	tests := []struct {
		name     string
		ref      SecretRef
		want     string
		wantErr  string
		isSetRef bool
	}{
		{name: "from the environment", ref: SecretRef{Name: "token", Env: "TOKEN"}, want: "s3cret", isSetRef: true},
		{name: "from a file, newline trimmed", ref: SecretRef{Name: "token", File: "/run/token"}, want: "s3cret", isSetRef: true},
		{name: "variable unset", ref: SecretRef{Name: "token", Env: "UNSET"}, wantErr: "provider p: environment variable UNSET (from token_env) is not set", isSetRef: true},
		{name: "file missing", ref: SecretRef{Name: "token", File: "/nope"}, wantErr: "provider p: reading token_file: no such file", isSetRef: true},
		{name: "both", ref: SecretRef{Name: "token", Env: "TOKEN", File: "/run/token"}, wantErr: "provider p: set token_env or token_file, not both", isSetRef: true},
		{name: "neither", ref: SecretRef{Name: "token"}, wantErr: "provider p: set token_env or token_file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.ref.Set(); got != tt.isSetRef {
				t.Errorf("Set() = %v, want %v", got, tt.isSetRef)
			}
			got, err := tt.ref.Read("p", deps)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("Read: err = %v, want %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "s3cret") {
					t.Errorf("the error quotes the secret: %v", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("Read = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestParseWait(t *testing.T) {
	t.Parallel()
	tests := []struct {
		value   string
		want    time.Duration
		wantErr bool
	}{
		{"", 5 * time.Minute, false},
		{"0s", 0, false},
		{"90s", 90 * time.Second, false},
		{"soon", 0, true},
		{"-1s", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseWait("p", "max_wait", tt.value, 5*time.Minute)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseWait(%q) = %v, %v; want %v (error %v)", tt.value, got, err, tt.want, tt.wantErr)
		}
		if err != nil && !strings.Contains(err.Error(), "setting max_wait") {
			t.Errorf("ParseWait(%q): %v does not name the setting", tt.value, err)
		}
	}
}

func TestNamed(t *testing.T) {
	t.Parallel()
	cause := errors.New("cause")
	err := Named("corp").Errorf("setting x must be y, not %q: %w", "z", cause)
	if err.Error() != `provider corp: setting x must be y, not "z": cause` || !errors.Is(err, cause) {
		t.Errorf("Errorf = %v, want the provider named and the cause wrapped", err)
	}
}

// TestTyped: a typed Factory hands its open function the decoded
// settings, and refuses settings Decode refuses before open runs.
func TestTyped(t *testing.T) {
	t.Parallel()
	var got testSettings
	factory := Typed(func(_ context.Context, _ gitgrant.ProviderConfig, s testSettings, _ Deps) (Provider, error) {
		got = s
		return nil, nil
	})
	if _, err := factory(t.Context(), gitgrant.ProviderConfig{Name: "p", Settings: map[string]any{"url": "https://x"}}, Deps{}); err != nil || got.URL != "https://x" {
		t.Errorf("Typed: settings %+v, err %v; want url https://x", got, err)
	}
	got = testSettings{URL: "untouched"}
	if _, err := factory(t.Context(), gitgrant.ProviderConfig{Name: "p", Settings: map[string]any{"nope": 1}}, Deps{}); err == nil || got.URL != "untouched" {
		t.Errorf("Typed with an unknown key: err %v, open ran: %v", err, got.URL != "untouched")
	}
}

// TestValidTarget: only declared roles have a target, and a target of the
// wrong form is an invalid name that says what it should be.
func TestValidTarget(t *testing.T) {
	t.Parallel()
	cfg := gitgrant.ProviderConfig{Name: "corp", Roles: map[string]gitgrant.RoleConfig{"ops": {Target: "team-ops"}, "bad": {Target: "../x"}}}
	slug := func(s string) bool { return !strings.ContainsAny(s, "./") }
	tests := []struct {
		role    string
		want    string
		wantErr error
		says    string
	}{
		{role: "ops", want: "team-ops"},
		{role: "ghost", wantErr: ErrNotFound, says: `provider corp: role "ghost" is not declared in gitgrant.yaml`},
		{role: "bad", wantErr: ErrInvalidName, says: `provider corp: role bad: "../x" is not a team slug`},
	}
	for _, tt := range tests {
		got, err := ValidTarget(cfg, tt.role, slug, "a team slug")
		if got != tt.want || !errors.Is(err, tt.wantErr) || (tt.says != "" && !strings.Contains(err.Error(), tt.says)) {
			t.Errorf("ValidTarget(%s) = %q, %v; want %q, %v saying %q", tt.role, got, err, tt.want, tt.wantErr, tt.says)
		}
	}
}

func TestChoice(t *testing.T) {
	t.Parallel()
	tests := []struct {
		value, want, wantErr string
	}{
		{"", "login", ""},
		{"email", "email", ""},
		{"Email", "", `provider corp: setting principal must be login, email or id, not "Email"`},
	}
	for _, tt := range tests {
		got, err := Choice("corp", "principal", tt.value, "login", "email", "id")
		if got != tt.want || (err == nil) != (tt.wantErr == "") || (err != nil && err.Error() != tt.wantErr) {
			t.Errorf("Choice(%q) = %q, %v; want %q, %q", tt.value, got, err, tt.want, tt.wantErr)
		}
	}
}

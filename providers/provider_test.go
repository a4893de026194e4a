package providers

import (
	"errors"
	"testing"

	"github.com/gitgrant/gitgrant"
	"github.com/google/go-cmp/cmp"
)

func TestFromHTTPStatus(t *testing.T) {
	t.Parallel()
	cause := errors.New("answer")
	cases := []struct {
		status             int
		notFound, system   bool
		retryable, wrapped bool
	}{
		{404, true, false, false, false},
		{401, false, true, false, true},
		{403, false, true, false, true},
		{429, false, true, true, true},
		{503, false, true, true, true},
		{400, false, false, false, true},
	}
	for _, tc := range cases {
		err := FromHTTPStatus("x p", "p", "grant r", tc.status, cause)
		var sys *gitgrant.SystemError
		isSys := errors.As(err, &sys)
		if errors.Is(err, ErrNotFound) != tc.notFound || isSys != tc.system || (isSys && sys.Retryable != tc.retryable) || errors.Is(err, cause) != tc.wrapped {
			t.Errorf("%d: %v (system %v)", tc.status, err, isSys)
		}
	}
}

func TestSortMembers(t *testing.T) {
	t.Parallel()
	got := SortMembers([]Member{{Principal: "bob"}, {Principal: "Alice"}, {Principal: "alice"}})
	if got[0].Principal != "Alice" || got[1].Principal != "alice" || got[2].Principal != "bob" {
		t.Errorf("SortMembers = %v, want byte order", got)
	}
}

// TestCheckRoles: every role is checked in name order and every problem
// reported, until one that says the system itself is down.
func TestCheckRoles(t *testing.T) {
	t.Parallel()
	cfg := gitgrant.ProviderConfig{Roles: map[string]gitgrant.RoleConfig{"c": {}, "a": {}, "b": {}, "d": {}}}
	answers := map[string]error{
		"a": ErrNotFound,
		"b": &gitgrant.SystemError{System: "s", Op: "read b", Err: errors.New("403")},
		"c": Unavailable("s", "read c", errors.New("connection refused")),
	}
	tests := []struct {
		name    string
		last    func(error) bool
		checked []string
	}{
		{"stopping when unreachable", Unreachable, []string{"a", "b", "c"}},
		{"stopping at any system error", IsSystem, []string{"a", "b"}},
		{"never stopping", nil, []string{"a", "b", "c", "d"}},
	}
	for _, tt := range tests {
		var checked []string
		err := CheckRoles(cfg, RoleChecks{Last: tt.last, Role: func(role string) error {
			checked = append(checked, role)
			return answers[role]
		}})
		if diff := cmp.Diff(tt.checked, checked); diff != "" {
			t.Errorf("%s: roles checked (-want +got):\n%s", tt.name, diff)
		}
		for _, role := range checked {
			if want := answers[role]; want != nil && !errors.Is(err, want) {
				t.Errorf("%s: the error %v leaves out %v", tt.name, err, want)
			}
		}
	}
	connected := errors.New("connected")
	none := RoleChecks{Connect: func() error { return connected }, Role: func(string) error { return errors.New("no role to check") }}
	if err := CheckRoles(gitgrant.ProviderConfig{}, none); err != connected {
		t.Errorf("CheckRoles with no role = %v, want what Connect says", err)
	}
	if err := CheckRoles(gitgrant.ProviderConfig{}, RoleChecks{}); err != nil {
		t.Errorf("CheckRoles with no role and nothing to connect = %v", err)
	}
}

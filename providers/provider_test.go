package providers

import (
	"errors"
	"testing"

	"github.com/gitgrant/gitgrant"
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

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

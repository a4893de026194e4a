package providertest

import (
	"errors"
	"strings"
	"testing"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/providers"
)

// Failure is what the reconciler must be able to tell from an error of a
// provider: the class it falls in, and a part of what it says.
type Failure struct {
	// NotFound: wraps providers.ErrNotFound. Invalid: wraps
	// providers.ErrInvalidName.
	NotFound, Invalid bool
	// System: wraps *gitgrant.SystemError (exit code 3); Retryable, its
	// Retryable.
	System, Retryable bool
	// Says is a part of the message, when not empty.
	Says string
}

// CheckFailure checks that err is the failure want describes, and that it
// quotes none of secrets.
func CheckFailure(t *testing.T, name string, err error, want Failure, secrets ...string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error", name)
		return
	}
	msg := err.Error()
	for _, s := range secrets {
		if s != "" && strings.Contains(msg, s) {
			t.Errorf("%s: the error quotes a secret: %v", name, err)
		}
	}
	if !strings.Contains(msg, want.Says) {
		t.Errorf("%s: %v, want it to say %q", name, err, want.Says)
	}
	if got := errors.Is(err, providers.ErrNotFound); got != want.NotFound {
		t.Errorf("%s: %v: ErrNotFound = %v, want %v", name, err, got, want.NotFound)
	}
	if got := errors.Is(err, providers.ErrInvalidName); got != want.Invalid {
		t.Errorf("%s: %v: ErrInvalidName = %v, want %v", name, err, got, want.Invalid)
	}
	var sys *gitgrant.SystemError
	if got := errors.As(err, &sys); got != want.System {
		t.Errorf("%s: %v: SystemError = %v, want %v", name, err, got, want.System)
	} else if got && sys.Retryable != want.Retryable {
		t.Errorf("%s: %v: Retryable = %v, want %v", name, err, sys.Retryable, want.Retryable)
	}
}

// FailureCase is a call of a provider and the failure it must end in.
type FailureCase struct {
	Name string
	Do   func() error
	Want Failure
}

// CheckFailures makes each call in turn and checks, as CheckFailure, the
// failure it ends in.
func CheckFailures(t *testing.T, cases []FailureCase, secrets ...string) {
	t.Helper()
	for _, c := range cases {
		CheckFailure(t, c.Name, c.Do(), c.Want, secrets...)
	}
}

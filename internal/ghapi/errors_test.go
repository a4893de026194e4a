package ghapi_test

import (
	"context"
	"errors"
	"io/fs"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/ghapi"
	"github.com/gitgrant/gitgrant/internal/ghfake"
	"github.com/gitgrant/gitgrant/internal/testing/fakeclock"
)

// Every failed call is classified in one place: a *gitgrant.SystemError,
// retryable only when a later call may succeed unchanged, that tells a
// refusal (ErrForbidden, ErrNotFound) apart and keeps GitHub's message.
func TestErrorsAreClassified(t *testing.T) {
	t.Parallel()
	type verdict struct {
		Retryable, Forbidden, NotFound bool
	}
	tests := []struct {
		name    string
		fault   ghfake.Fault
		want    verdict
		wantMsg string
	}{
		{"forbidden", ghfake.Fault{Status: 403, Body: `{"message":"Resource not accessible by integration"}`}, verdict{Forbidden: true}, "Resource not accessible by integration"},
		{"not found", ghfake.Fault{Status: 404, Body: `{"message":"Not Found"}`}, verdict{NotFound: true}, "404"},
		{"invalid", ghfake.Fault{Status: 422, Body: `{"message":"Validation Failed"}`}, verdict{}, "Validation Failed"},
		{"server error", ghfake.Fault{Status: 502, Times: 100}, verdict{Retryable: true}, "502"},
		{"rate limit too long to wait", ghfake.Fault{Status: 429, Header: map[string]string{"Retry-After": "3600"}}, verdict{Retryable: true}, "rate limit"},
		{"secondary rate limit too long to wait", ghfake.Fault{Status: 403, Header: map[string]string{"Retry-After": "3600"}, Body: `{"message":"You have exceeded a secondary rate limit."}`},
			verdict{Retryable: true}, "secondary rate limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := newClient(t, repoWithFaults(t, tt.fault), fakeclock.NewAuto(t0), ghapi.Config{}).DefaultBranch(context.Background())
			var se *gitgrant.SystemError
			if !errors.As(err, &se) {
				t.Fatalf("err = %v, want a *gitgrant.SystemError", err)
			}
			got := verdict{Retryable: se.Retryable, Forbidden: errors.Is(err, ghapi.ErrForbidden), NotFound: errors.Is(err, ghapi.ErrNotFound)}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("%v (-want +got):\n%s", err, diff)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) || !strings.HasPrefix(err.Error(), "github: get repository acme/access: ") {
				t.Errorf("err = %q, want GitHub's answer (%q) after what was asked", err, tt.wantMsg)
			}
		})
	}
}

// A missing file is an answer, not a failure: fs.ErrNotExist.
func TestMissingFileIsNotExist(t *testing.T) {
	t.Parallel()
	gh := ghfake.New(nil)
	defer gh.Close()
	repo := gh.AddRepo("acme", "access", "main")
	c := gh.AddCommit(repo, ghfake.Commit{Author: "admin", Committer: "admin", Date: t0}, map[string]string{"gitgrant.yaml": "version: 1\n"})
	cl := newClient(t, gh, fakeclock.NewAuto(t0), ghapi.Config{})
	ctx := context.Background()
	if data, err := cl.ReadFile(ctx, c.SHA, "gitgrant.yaml"); err != nil || string(data) != "version: 1\n" {
		t.Fatalf("ReadFile = %q, %v", data, err)
	}
	_, err := cl.ReadFile(ctx, c.SHA, "CODEOWNERS")
	var se *gitgrant.SystemError
	if !errors.Is(err, fs.ErrNotExist) || errors.As(err, &se) {
		t.Errorf("missing file: %v, want fs.ErrNotExist and no system error", err)
	}
}

package ghapi_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/ghapi"
	"github.com/gitgrant/gitgrant/internal/ghfake"
	"github.com/gitgrant/gitgrant/internal/testing/fakeclock"
)

// Every key of a user, over as many pages as it takes, without comments.
func TestUserSSHKeys(t *testing.T) {
	t.Parallel()
	gh := ghfake.New(nil)
	defer gh.Close()
	gh.AddRepo("acme", "access", "main")
	var keys, want []string
	for i := range 130 {
		k := fmt.Sprintf("ssh-ed25519 AAAAkey%03d", i)
		keys, want = append(keys, k+" laptop"), append(want, k)
	}
	gh.SetUserKeys("alice", keys...)
	c := newClient(t, gh, fakeclock.NewAuto(t0), ghapi.Config{})
	got, err := c.UserSSHKeys(t.Context(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("keys (-want +got):\n%s", diff)
	}
	if got, err := c.UserSSHKeys(t.Context(), "bob"); err != nil || len(got) != 0 {
		t.Errorf("a user without keys: %v, %v", got, err)
	}
	gh.Inject(ghfake.Fault{Method: "GET", PathContains: "/users/ghost/keys", Status: 404})
	if _, err := c.UserSSHKeys(t.Context(), "ghost"); !errors.Is(err, ghapi.ErrNotFound) {
		t.Errorf("an unknown login: %v, want ErrNotFound", err)
	}
}

// Comments come oldest first, with whether their author is a bot.
func TestComments(t *testing.T) {
	t.Parallel()
	gh, repo, c := newRepoClient(t)
	gh.AddComment(repo, 7, "alice", "please")
	gh.AddComment(repo, 7, "gitgrant[bot]", "granted")
	gh.AddComment(repo, 8, "bob", "elsewhere")
	got, err := c.Comments(t.Context(), 7)
	if err != nil {
		t.Fatal(err)
	}
	want := []gitgrant.Comment{{Author: "alice", Body: "please"}, {Author: "gitgrant[bot]", AuthorIsBot: true, Body: "granted"}}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(gitgrant.Comment{}, "ID", "URL", "CreatedAt")); diff != "" {
		t.Errorf("comments (-want +got):\n%s", diff)
	}
}

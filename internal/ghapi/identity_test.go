package ghapi_test

import (
	"context"
	"testing"
	"time"

	"github.com/gitgrant/gitgrant/internal/ghapi"
	"github.com/gitgrant/gitgrant/internal/ghfake"
	"github.com/gitgrant/gitgrant/internal/testing/fakeclock"
)

// gitgrant learns once who it acts as: an App's bot from GET /app (with
// the App's JWT), a user token's login from GET /user, and the Actions
// token, which may not call GET /user, as github-actions[bot].
func TestIdentity(t *testing.T) {
	t.Parallel()
	key, _ := testKeys(t)
	tests := []struct {
		name  string
		setup func(gh *ghfake.Server) ghapi.Config
		want  string
	}{
		{name: "app", want: "access-bot[bot]", setup: func(gh *ghfake.Server) ghapi.Config {
			gh.AddApp(42, &key.PublicKey, 7, time.Hour)
			gh.SetAppSlug(42, "access-bot")
			return ghapi.Config{AppID: 42, InstallationID: 7, PrivateKey: pemOf(key)}
		}},
		{name: "user token", want: "ops-automation", setup: func(gh *ghfake.Server) ghapi.Config {
			gh.AddUserToken("pat", "ops-automation")
			return ghapi.Config{Token: "pat"}
		}},
		{name: "actions token", want: ghapi.ActionsBot, setup: func(gh *ghfake.Server) ghapi.Config {
			gh.AddInstallationToken("ghs_actions", ghapi.ActionsBot)
			return ghapi.Config{Token: "ghs_actions"}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clk := fakeclock.NewAuto(t0)
			gh := ghfake.New(clk.Now)
			defer gh.Close()
			gh.AddRepo("acme", "access", "main")
			c := newClient(t, gh, clk, tt.setup(gh))
			for range 2 {
				got, err := c.Identity(context.Background())
				if err != nil || got != tt.want {
					t.Fatalf("identity %q, %v; want %q", got, err, tt.want)
				}
			}
			if n := gh.Count("GET", "/app") + gh.Count("GET", "/user"); n != 1 {
				t.Errorf("%d identity calls, want 1 (memoised)", n)
			}
		})
	}
}

// A token GitHub refuses is an error, never a guessed identity.
func TestIdentityBadToken(t *testing.T) {
	t.Parallel()
	clk := fakeclock.NewAuto(t0)
	gh := ghfake.New(clk.Now)
	defer gh.Close()
	gh.AddRepo("acme", "access", "main")
	gh.AddToken("good")
	c := newClient(t, gh, clk, ghapi.Config{Token: "revoked"})
	if got, err := c.Identity(context.Background()); err == nil {
		t.Errorf("identity %q with a bad token, want an error", got)
	}
}

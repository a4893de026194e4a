package ghapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/google/go-github/v60/github"
)

// ActionsBot is the login the Actions GITHUB_TOKEN acts as.
const ActionsBot = "github-actions[bot]"

type identityMemo struct {
	mu    sync.Mutex
	login string
}

// Identity is the GitHub login gitgrant acts as: issues and comments it
// writes are authored by it, and only those count as its own. It is
// learnt once per client:
//   - as a GitHub App, "<slug>[bot]", the slug from GET /app with the App's
//     JWT (an installation token may not call GET /app);
//   - with a token, GET /user's login; an installation token (the Actions
//     GITHUB_TOKEN) may not call GET /user (403 "Resource not accessible
//     by integration") and acts as github-actions[bot].
func (c *Client) Identity(ctx context.Context) (string, error) {
	c.identity.mu.Lock()
	defer c.identity.mu.Unlock()
	if c.identity.login != "" {
		return c.identity.login, nil
	}
	var login string
	var err error
	if c.App != nil {
		var slug string
		slug, err = c.App.Slug(ctx)
		login = slug + "[bot]"
	} else {
		login, err = c.userLogin(ctx)
	}
	if err != nil {
		return "", err
	}
	c.identity.login = login
	return login, nil
}

func (c *Client) userLogin(ctx context.Context) (string, error) {
	u, resp, err := c.gh.Users.Get(ctx, "")
	if resp != nil && resp.StatusCode == http.StatusForbidden && integration(err) {
		return ActionsBot, nil
	}
	if err != nil {
		return "", fail("get the authenticated user (who gitgrant acts as)", resp, err)
	}
	if u.GetLogin() == "" {
		return "", fail("get the authenticated user", resp, errors.New("no login in the answer"))
	}
	return u.GetLogin(), nil
}

// integration: GitHub's answer to an installation token on an endpoint
// only users may call.
func integration(err error) bool {
	var er *github.ErrorResponse
	return errors.As(err, &er) && strings.Contains(er.Message, "Resource not accessible by integration")
}

// Slug asks GitHub for the App's slug (GET /app, authenticated with the
// App's JWT); its bot account is "<slug>[bot]".
func (s *AppTokenSource) Slug(ctx context.Context) (string, error) {
	resp, data, err := s.asApp(ctx, http.MethodGet, "app", nil)
	if err != nil {
		return "", fmt.Errorf("GitHub App %d: get the app: %w", s.AppID, err)
	}
	var out struct {
		Slug    string `json:"slug"`
		Message string `json:"message"`
	}
	_ = json.Unmarshal(data, &out)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GitHub App %d: get the app: %s: %s", s.AppID, resp.Status, out.Message)
	}
	if out.Slug == "" {
		return "", fmt.Errorf("GitHub App %d: get the app: no slug in the answer", s.AppID)
	}
	return out.Slug, nil
}

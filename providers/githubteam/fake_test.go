package githubteam

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gitgrant/gitgrant/internal/ghfake"
)

// fakeGitHub is the simulated GitHub (ghfake) serving org "acme", with the
// request log the tests pin.
type fakeGitHub struct {
	*ghfake.Server
}

// newFakeGitHub starts a fake with the given org members and teams, and
// returns it with the api_url to reach it. A request the fake does not
// serve, or one that misses its /api/v3 prefix, fails the test.
func newFakeGitHub(t *testing.T, members []string, teams ...string) (fakeGitHub, string) {
	f := fakeGitHub{ghfake.New(nil)}
	t.Cleanup(func() {
		f.Close()
		if n, m := f.Unrouted(), f.Unprefixed(); n+m > 0 {
			t.Errorf("fake GitHub: %d requests for no operation it serves, %d outside %s", n, m, ghfake.Prefix)
		}
	})
	for _, m := range members {
		f.AddUser(m, "acme")
	}
	for _, team := range teams {
		f.AddTeam("acme", team)
	}
	return f, f.BaseURL()
}

// state returns the team's memberships as "login:role:state", sorted.
func (f fakeGitHub) state(team string) []string { return f.TeamMemberships("acme", team) }

// log is the requests so far, "METHOD /path?query", in order.
func (f fakeGitHub) log() []string {
	var out []string
	for _, r := range f.Requests() {
		line := r.Method + " " + r.Path
		if r.Query != "" {
			line += "?" + r.Query
		}
		out = append(out, line)
	}
	return out
}

// limit queues rate limit answers, each as GitHub gives it: "primary"
// (403), "primary429", "secondary" (403 with Retry-After) or "429" (with
// Retry-After), each optionally with ":<seconds>" to wait.
func (f fakeGitHub) limit(kinds ...string) {
	for _, spec := range kinds {
		kind, secs, _ := strings.Cut(spec, ":")
		wait, _ := strconv.Atoi(secs)
		if wait == 0 {
			wait = 1
		}
		// go-github compares a primary limit's reset with the wall clock.
		primary := map[string]string{"X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": "0",
			"X-RateLimit-Reset": strconv.FormatInt(time.Now().Add(time.Duration(wait)*time.Second).Unix(), 10)}
		retryAfter := map[string]string{"Retry-After": strconv.Itoa(wait)}
		var fault ghfake.Fault
		switch kind {
		case "primary":
			fault = ghfake.Fault{Status: http.StatusForbidden, Header: primary, Body: body(map[string]string{
				"message":           "API rate limit exceeded for installation.",
				"documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-the-primary-rate-limit",
			})}
		case "primary429":
			fault = ghfake.Fault{Status: http.StatusTooManyRequests, Header: primary, Body: body(map[string]string{"message": "API rate limit exceeded"})}
		case "secondary":
			fault = ghfake.Fault{Status: http.StatusForbidden, Header: retryAfter, Body: body(map[string]string{
				"message":           "You have exceeded a secondary rate limit.",
				"documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits",
			})}
		case "429":
			fault = ghfake.Fault{Status: http.StatusTooManyRequests, Header: retryAfter, Body: body(map[string]string{"message": "Too Many Requests"})}
		default:
			panic("unknown rate limit kind " + kind)
		}
		f.Inject(fault)
	}
}

func body(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

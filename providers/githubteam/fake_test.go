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
		const docs = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-"
		fault, ok := map[string]ghfake.Fault{
			"primary":    {Status: http.StatusForbidden, Header: primary, Body: body("API rate limit exceeded for installation.", docs+"the-primary-rate-limit")},
			"primary429": {Status: http.StatusTooManyRequests, Header: primary, Body: body("API rate limit exceeded", "")},
			"secondary":  {Status: http.StatusForbidden, Header: retryAfter, Body: body("You have exceeded a secondary rate limit.", docs+"secondary-rate-limits")},
			"429":        {Status: http.StatusTooManyRequests, Header: retryAfter, Body: body("Too Many Requests", "")},
		}[kind]
		if !ok {
			panic("unknown rate limit kind " + kind)
		}
		f.Inject(fault)
	}
}

// body is GitHub's error body: a message, and where the documentation
// explains it when docs is not "".
func body(message, docs string) string {
	v := map[string]string{"message": message}
	if docs != "" {
		v["documentation_url"] = docs
	}
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

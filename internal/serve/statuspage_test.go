package serve

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gitgrant/gitgrant/internal/engine"
	"github.com/gitgrant/gitgrant/internal/testing/browser"
	"github.com/gitgrant/gitgrant/internal/testing/fakeclock"
	"github.com/gitgrant/gitgrant/internal/testing/golden"
)

// hostileReason tries to leave its table cell and run a script.
const hostileReason = `<img src=x onerror=alert(1)> </td><script>alert(2)</script>`

const statusToken = "s3cret-status-token"

// statusWorld runs one real pass (fake GitHub, fake provider) with alice's
// request active (its reason hostile), bob's scheduled, and a member
// nobody asked for: the page has something in every section.
func statusWorld(t *testing.T) *Server {
	t.Helper()
	w, clk := newClockedWorld(t)
	w.merge(1, "alice", "requests/db/alice.yaml", "requester: alice\ngrants: [{provider: db, role: ro}]\nduration: 4h\nreason: '"+hostileReason+"'\n", t0.Add(-time.Hour))
	w.merge(2, "bob", "requests/db/bob.yaml", request("bob", "rw", "duration: 1h\nstarts: "+t0.Add(2*time.Hour).Format(time.RFC3339)+"\n"), t0.Add(-30*time.Minute))
	w.db.Set("rw", map[string]time.Time{"mallory": {}})
	s := New(w.engine(clk), Options{Apply: engine.ApplyOptions{Commit: commitAt(clk)}, Clock: clk, WebhookSecret: []byte(secret), Logger: testLogger(t),
		Status: NewStatusPage(clk), StatusToken: statusToken})
	if _, err := s.pass(context.Background(), "test"); err != nil {
		t.Fatalf("pass: %v", err)
	}
	return s
}

func TestStatusPageNeedsTheToken(t *testing.T) {
	t.Parallel()
	s := statusWorld(t)
	h := s.Handler()
	for _, c := range []struct {
		name, auth string
		code       int
	}{
		{"no token", "", http.StatusUnauthorized},
		{"wrong token", "Bearer not-the-token", http.StatusUnauthorized},
		{"token as basic auth", "Basic " + statusToken, http.StatusUnauthorized},
		{"the token's prefix", "Bearer " + statusToken[:5], http.StatusUnauthorized},
		{"the token", "Bearer " + statusToken, http.StatusOK},
	} {
		r := httptest.NewRequest(http.MethodGet, "/status", nil)
		if c.auth != "" {
			r.Header.Set("Authorization", c.auth)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if rec.Code != c.code {
			t.Errorf("%s: status %d, want %d", c.name, rec.Code, c.code)
		}
		if got := rec.Header().Get("Cache-Control"); got != "no-store" {
			t.Errorf("%s: Cache-Control %q, want no-store", c.name, got)
		}
		if c.code == http.StatusUnauthorized {
			if strings.Contains(rec.Body.String(), "alice") || rec.Header().Get("WWW-Authenticate") == "" {
				t.Errorf("%s: 401 leaks the page or lacks WWW-Authenticate: %s", c.name, rec.Body.String())
			}
			continue
		}
		csp := rec.Header().Get("Content-Security-Policy")
		if !strings.HasPrefix(csp, "default-src 'none'; style-src 'nonce-") || strings.Contains(csp, "script-src") {
			t.Errorf("CSP %q: want default-src 'none' and only a nonce'd style", csp)
		}
		if nonce := regexp.MustCompile(`'nonce-([^']+)'`).FindStringSubmatch(csp); nonce == nil || !strings.Contains(rec.Body.String(), `<style nonce="`+nonce[1]+`">`) {
			t.Errorf("the style's nonce does not match the CSP %q", csp)
		}
	}
	// Without a token the page is not mounted on the main listener at all.
	plain := New(s.eng, Options{Clock: fakeclock.New(t0), Status: NewStatusPage(nil)})
	if code, _ := get(t, plain.Handler(), "/status"); code != http.StatusNotFound {
		t.Errorf("/status without a token: %d, want 404", code)
	}
}

// The page in a real browser: every section rendered, and the hostile
// reason shown as text, with no element it tried to inject.
func TestStatusPageInBrowser(t *testing.T) {
	t.Parallel()
	s := statusWorld(t)
	srv := httptest.NewServer(s.opts.Status)
	defer srv.Close()
	dom := browser.DOM(t, srv.URL+"/status")

	for _, want := range []string{
		`<code>db/ro</code>`, `<code>alice</code>`, `<code>requests/db/alice.yaml</code> by alice`, "2026-11-22T15:00:00Z (in 3h)",
		"granted",
		"starts", `<code>requests/db/bob.yaml</code> by bob`, "2026-11-22T14:00:00Z (in 2h)",
		"Every managed role was listed", "Nothing is paused",
		"revoke (drift)", "grant", "(trust root)",
		// the reason, as text
		`&lt;img src=x onerror=alert(1)&gt; &lt;/td&gt;&lt;script&gt;alert(2)&lt;/script&gt;`,
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	access := dom[strings.Index(dom, `id="access"`):]
	access = access[:strings.Index(access, "</table>")]
	if strings.Contains(access, "mallory") || !strings.Contains(access, "alice") {
		t.Error("mallory, revoked as drift in the pass, is still listed as holding db/rw")
	}
	for _, bad := range []string{"<img", "<script", "onerror=alert(1)>"} {
		if strings.Contains(dom, bad) {
			t.Errorf("the page has %q: the reason injected markup", bad)
		}
	}
	if n := strings.Count(dom, "<td"); n != strings.Count(dom, "</td>") {
		t.Errorf("%d cells opened, %d closed: the reason broke the table", n, strings.Count(dom, "</td>"))
	}

	png := browser.Screenshot(t, srv.URL+"/status", t.TempDir()+"/status.png", 1280, 900)
	if len(png) < 8 || string(png[1:4]) != "PNG" {
		t.Fatalf("no PNG screenshot")
	}
	if golden.Updating() {
		if err := os.WriteFile("../../docs/status-page.png", png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCheckLoopback(t *testing.T) {
	t.Parallel()
	for addr, ok := range map[string]bool{
		"127.0.0.1:9091": true, "[::1]:9091": true, "localhost:9091": true, "127.0.0.2:1": true,
		":9091": false, "0.0.0.0:9091": false, "[::]:9091": false, "10.0.0.1:9091": false, "example.com:9091": false, "nonsense": false,
	} {
		if err := CheckLoopback(addr); (err == nil) != ok {
			t.Errorf("CheckLoopback(%q) = %v, want ok=%v", addr, err, ok)
		}
	}
}

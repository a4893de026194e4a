// SPDX-License-Identifier: Apache-2.0

package browser_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitgrant/gitgrant/internal/testing/browser"
)

// TestScriptsRunAndNetworkIsOff checks what the page tests rely on: the DOM
// is taken after scripts ran, and a page cannot load anything remote.
func TestScriptsRunAndNetworkIsOff(t *testing.T) {
	t.Parallel()
	page := filepath.Join(t.TempDir(), "page.html")
	html := `<!doctype html><html><body><p id="p">static</p>
<img id="remote" src="http://example.com/pixel.png" onerror="document.getElementById('p').dataset.remote='blocked'">
<script>document.getElementById('p').textContent = 'scripted';</script></body></html>`
	if err := os.WriteFile(page, []byte(html), 0o644); err != nil {
		t.Fatal(err)
	}
	dom := browser.DOM(t, browser.FileURL(t, page))
	if !strings.Contains(dom, ">scripted<") {
		t.Errorf("the script did not run; DOM:\n%s", dom)
	}
	if !strings.Contains(dom, `data-remote="blocked"`) {
		t.Errorf("the remote image did not fail to load; DOM:\n%s", dom)
	}
	png := browser.Screenshot(t, browser.FileURL(t, page), filepath.Join(t.TempDir(), "shot.png"), 320, 200)
	if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
		t.Errorf("screenshot is not a PNG: % x", png[:min(8, len(png))])
	}
}

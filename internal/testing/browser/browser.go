// SPDX-License-Identifier: Apache-2.0

// Package browser drives headless Chromium for tests of the pages gitgrant
// renders (the report, the status page): the DOM after scripts ran, and
// screenshots. Without Chromium it skips the test locally and fails it under
// CI=true, like the server helpers in internal/testing/testenv.
package browser

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/gitgrant/gitgrant/internal/testing/testenv"
)

// names are the executables Chromium goes by: Debian's package, other
// distributions', and Google's build.
var names = []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"}

// Find returns the path of a Chromium executable, or skips (fails in CI).
// GITGRANT_CHROMIUM names one explicitly.
func Find(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("GITGRANT_CHROMIUM"); p != "" {
		return p
	}
	var err error
	for _, n := range names {
		var p string
		if p, err = exec.LookPath(n); err == nil {
			return p
		}
	}
	testenv.Unavailable(t, "Chromium", "install it (apt-get install chromium) or set GITGRANT_CHROMIUM", err)
	return ""
}

// run starts headless Chromium on url with extra flags and returns stdout.
// Each run has its own profile directory, so runs never share state.
func run(t testing.TB, url string, extra ...string) []byte {
	t.Helper()
	bin := Find(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args := []string{
		"--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--no-first-run", "--no-default-browser-check", "--disable-extensions",
		"--disable-background-networking", "--disable-sync", "--hide-scrollbars",
		"--user-data-dir=" + t.TempDir(),
		// Pages must not reach the network: resolve every host to nowhere.
		"--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
	}
	args = append(args, extra...)
	args = append(args, url)
	cmd := exec.CommandContext(ctx, bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %s: %v\n%s", url, err, stderr.Bytes())
	}
	return stdout.Bytes()
}

// DOM returns the page's DOM serialised after its scripts ran (up to a
// virtual-time budget of two seconds), as Chromium's --dump-dom prints it.
// url may be a file:// URL or an http://127.0.0.1 address.
func DOM(t testing.TB, url string) string {
	t.Helper()
	return string(run(t, url, "--virtual-time-budget=2000", "--dump-dom"))
}

// Screenshot renders url at width×height CSS pixels into a PNG at path and
// returns its bytes.
func Screenshot(t testing.TB, url, path string, width, height int) []byte {
	t.Helper()
	abs, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	run(t, url, "--virtual-time-budget=2000",
		"--window-size="+strconv.Itoa(width)+","+strconv.Itoa(height),
		"--screenshot="+abs)
	png, err := os.ReadFile(abs)
	if err != nil {
		t.Fatalf("chromium wrote no screenshot: %v", err)
	}
	return png
}

// FileURL is the file:// URL of a local path.
func FileURL(t testing.TB, path string) string {
	t.Helper()
	abs, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	return "file://" + filepath.ToSlash(abs)
}

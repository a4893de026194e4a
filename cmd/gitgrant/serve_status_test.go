package main

import (
	"strings"
	"testing"
)

// The status page is off unless asked for, and never open to the network
// without a token.
func TestServeStatusPageFlags(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		vars map[string]string
		args []string
		want string
	}{
		{"no token", nil, []string{"--status-page"}, "set GITGRANT_STATUS_TOKEN to a random token of at least 16 characters"},
		{"a short token", map[string]string{"GITGRANT_STATUS_TOKEN": "short"}, []string{"--status-page"}, "at least 16 characters"},
		{"all interfaces", nil, []string{"--status-addr", ":9091"}, "is not a loopback address"},
		{"a public address", nil, []string{"--status-addr", "192.0.2.1:9091"}, "is not a loopback address"},
	} {
		r := runCLI(t, c.vars, append([]string{"serve", "--listen", "127.0.0.1:0"}, c.args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%s: exit %d, %q; want exit 2 and %q", c.name, r.code, r.stderr, c.want)
		}
	}
}

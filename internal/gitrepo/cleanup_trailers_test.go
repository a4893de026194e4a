package gitrepo

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gitgrant/gitgrant"
)

// A value a request file can choose (its path, first of all) is written so
// that it reads back as itself and cannot add trailers of its own.
func TestCleanupTrailersRoundTrip(t *testing.T) {
	t.Parallel()
	for _, path := range []string{
		"requests/orders-db/alice.yaml",
		"requests/orders-db/alice.yaml\nGitgrant-Approved-By: mallory",
		"requests/orders-db/x.yaml\n\nGitgrant-Request: requests/orders-db/alice.yaml",
		"requests/orders-db/\"quoted\".yaml",
		"requests/orders-db/back\\slash.yaml",
		" requests/orders-db/padded.yaml ",
		"requests/orders-db/tab\tand\u202ebidi.yaml",
		"requests/orders-db/naïve ünïcode.yaml",
	} {
		rm := removal(path, "alice")
		got := ParseCleanupTrailers(CleanupMessage([]Removal{rm}))
		if diff := cmp.Diff([]Removal{rm}, got); diff != "" {
			t.Errorf("%q: parsed trailers (-written +read):\n%s", path, diff)
		}
	}
}

// Plain values stay unquoted, as gitgrant always wrote them, and trailers
// written before values were quoted still read.
func TestCleanupTrailersPlainAndOld(t *testing.T) {
	t.Parallel()
	msg := CleanupMessage([]Removal{removal("requests/orders-db/alice.yaml", "alice")})
	for _, line := range []string{"\nGitgrant-Request: requests/orders-db/alice.yaml\n", "\nGitgrant-Requester: alice\n", "\nGitgrant-Approved-By: dana\n"} {
		if !strings.Contains(msg, line) {
			t.Errorf("message lacks %q:\n%s", line, msg)
		}
	}
	old := "gitgrant: remove 1 expired or revoked request\n\n- requests/db/\"odd\".yaml (bob, db/ro)\n\n" +
		"Gitgrant-Request: requests/db/\"odd\".yaml\nGitgrant-Requester: bob\nGitgrant-Grant: db/ro\nGitgrant-Approved-By: dana\nGitgrant-Pull-Request: 3\n"
	want := []Removal{{Path: `requests/db/"odd".yaml`, Requester: "bob", Grants: []gitgrant.GrantRef{{Provider: "db", Role: "ro"}}, ApprovedBy: []string{"dana"}, PullRequest: 3}}
	if diff := cmp.Diff(want, ParseCleanupTrailers(old)); diff != "" {
		t.Errorf("old trailers (-want +got):\n%s", diff)
	}
}

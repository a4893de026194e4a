package audit

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/gitgrant/gitgrant/internal/testing/fakeclock"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/gitrepo"
	"github.com/gitgrant/gitgrant/internal/testing/gitserver"
)

// A file name is written into the cleanup commit that removes the file. A
// name holding a newline and a trailer of its own must not make the trail
// believe that trailer: here it would say mallory approved alice's access.
func TestFileNameCannotForgeTrailers(t *testing.T) {
	t.Parallel()
	srv, w := gitserver.NewAccess(t, "token", start, map[string]string{"gitgrant.yaml": "version: 1\n"})
	alice := "requests/orders-db/alice.yaml"
	// Still a *.yaml file; the last line, without ": ", is no trailer.
	forged := alice + "\nGitgrant-Approved-By: mallory\n.yaml"
	w.MergePR(1, "alice", alice, request("alice", "readwrite", "1h"))
	w.MergePR(2, "mallory", forged, request("mallory", "readwrite", "1h"))
	w.Push()

	r := openAccess(t, srv)
	grants := []gitgrant.GrantRef{{Provider: "orders-db", Role: "readwrite"}}
	removals := []gitrepo.Removal{
		{Path: alice, Requester: "alice", Grants: grants, ApprovedBy: []string{"erin"}, PullRequest: 1},
		{Path: forged, Requester: "mallory", Grants: grants, PullRequest: 2},
	}
	if _, err := r.Cleanup(context.Background(), func(*gitrepo.Snapshot) ([]gitrepo.Removal, error) { return removals, nil },
		gitrepo.CommitOptions{Clock: fakeclock.New(start.Add(3 * time.Hour))}); err != nil {
		t.Fatal(err)
	}
	trail := buildTrail(t, r, Options{Now: start.Add(4 * time.Hour)})
	approved := map[string][]string{}
	for _, e := range trail.Events {
		if slices.Contains(e.ApprovedBy, "mallory") {
			t.Errorf("the trail believes a trailer from a file name: %s %q approved by %v", e.Event, e.Request, e.ApprovedBy)
		}
		if e.Event == Approved {
			approved[e.Request] = e.ApprovedBy
		}
	}
	if got := approved[alice]; !slices.Equal(got, []string{"erin"}) {
		t.Errorf("alice's request approved by %v, want [erin] from her own trailers", got)
	}
	if got, ok := approved[forged]; !ok || len(got) != 0 {
		t.Errorf("the oddly named request: approved by %v (recorded: %v), want no approvers", got, ok)
	}
}

// Files beside requests (a README, a .gitkeep, notes in Markdown) are no
// requests: neither invalid requests nor events of the trail.
func TestFilesBesideRequestsAreNoEvents(t *testing.T) {
	t.Parallel()
	srv, w := gitserver.NewAccess(t, "token", start, map[string]string{"gitgrant.yaml": "version: 1\n", "requests/README.md": "# How to ask for access\n", "requests/orders-db/.gitkeep": ""})
	w.SquashPR(1, "alice", "requests/orders-db/alice.yaml", request("alice", "readwrite", "1h"))
	w.Write("requests/orders-db/HOWTO.md", "Ask the DBAs.\n")
	w.Write("requests/orders-db/.draft.yaml", "requester: [\n")
	w.Commit("Document the orders-db folder (#2)")
	w.Git("rm", "-q", "requests/README.md")
	w.Commit("Drop the README (#3)")
	w.Push()

	r := openAccess(t, srv)
	trail := buildTrail(t, r, Options{Now: start.Add(30 * time.Minute)})
	var got []string
	for _, e := range trail.Events {
		got = append(got, string(e.Event)+" "+e.Request)
	}
	want := []string{"requested requests/orders-db/alice.yaml", "approved requests/orders-db/alice.yaml", "granted requests/orders-db/alice.yaml"}
	if !slices.Equal(want, got) {
		t.Errorf("events = %q, want only alice's request: %q", got, want)
	}
}

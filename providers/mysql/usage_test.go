package mysql

import (
	"testing"
	"time"

	"github.com/gitgrant/gitgrant/providers"
)

// TestSessions: the observer sees an account's open connections (with
// PROCESS), and none of a principal that has none.
func TestSessions(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 3)
	user, idle := f.principals[0], f.principals[2]
	db := login(t, user, 2)
	for range 2 {
		session(t, db)
	}
	f.mustExec(t, "GRANT PROCESS ON *.* TO "+literal(f.prefix+"_gitgrant")+"@'%'")
	p := f.open(t, nil)
	defer p.Close()
	var obs providers.UsageObserver = p
	before := time.Now().Add(-time.Minute)
	got, err := obs.Sessions(t.Context(), user)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("sessions of %s = %v, want 2", user, got)
	}
	for _, s := range got {
		if s.Started.Before(before) || s.Started.After(time.Now().Add(time.Second)) {
			t.Errorf("session started %s, want within the last minute", s.Started)
		}
	}
	if got, err := obs.Sessions(t.Context(), idle); err != nil || len(got) != 0 {
		t.Errorf("sessions of %s = %v, %v; want none", idle, got, err)
	}
	if _, err := obs.Sessions(t.Context(), "'a'@'b'@'c'"); err == nil {
		t.Error("a malformed principal was looked up")
	}
}

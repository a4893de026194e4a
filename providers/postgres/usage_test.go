package postgres

import (
	"testing"
	"time"

	"github.com/gitgrant/gitgrant/providers"
)

// TestSessions: the observer sees a principal's backends with their
// start, and none of a principal that has none.
func TestSessions(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 2)
	user, idle := f.principals[0], f.principals[1]
	var opened time.Time
	for range 2 {
		c := f.connectAs(t, user)
		if err := c.QueryRow(t.Context(), "SELECT backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid()").Scan(&opened); err != nil {
			t.Fatal(err)
		}
	}
	p := f.open(t, nil, nil)
	defer p.Close()
	var obs providers.UsageObserver = p
	got, err := obs.Sessions(t.Context(), user)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !got[1].Started.Equal(opened.UTC()) || !got[0].Started.Before(got[1].Started) {
		t.Errorf("sessions of %q = %v, want 2, the last started at %s", user, got, opened.UTC())
	}
	if got, err := obs.Sessions(t.Context(), idle); err != nil || len(got) != 0 {
		t.Errorf("sessions of %q = %v, %v; want none", idle, got, err)
	}
	if _, err := obs.Sessions(t.Context(), ""); err == nil {
		t.Error("an empty principal was looked up")
	}
}

package httpapitest

import (
	"testing"
	"time"
)

// TestQuota: windows are aligned to the clock, per bucket, and a request
// the window cannot take spends nothing.
func TestQuota(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	q := Quota{Window: 10 * time.Second, Limit: 5}
	steps := []struct {
		bucket   string
		cost     int
		at       time.Duration
		ok       bool
		left     int
		resetsIn time.Duration
	}{
		{"a", 3, time.Second, true, 2, 9 * time.Second},
		{"a", 3, 2 * time.Second, false, 2, 8 * time.Second},
		{"b", 3, 2 * time.Second, true, 2, 8 * time.Second},
		{"a", 2, 9 * time.Second, true, 0, time.Second},
		{"a", 1, 10 * time.Second, true, 4, 10 * time.Second}, // a new window
	}
	for i, s := range steps {
		now := t0.Add(s.at)
		ok, left, reset := q.Take(s.bucket, s.cost, now)
		if ok != s.ok || left != s.left || reset.Sub(now) != s.resetsIn {
			t.Errorf("step %d: Take = %v, %d, resets in %v; want %v, %d, %v", i, ok, left, reset.Sub(now), s.ok, s.left, s.resetsIn)
		}
	}
	if ok, _, _ := (&Quota{Window: time.Second}).Take("x", 1000, t0); !ok {
		t.Error("a Quota without a limit refused a request")
	}
}

// TestTokens: a token is valid until its TTL has passed on the clock, and
// not after a revocation; every refusal is counted.
func TestTokens(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	tokens := Tokens{Now: func() time.Time { return now }, Prefix: "tok-", TTL: time.Minute}
	tok, ttl := tokens.Issue()
	if tok != "tok-1" || ttl != 60 || !tokens.Valid("Bearer "+tok) {
		t.Fatalf("Issue = %q, %d; want a valid tok-1 for 60 s", tok, ttl)
	}
	now = now.Add(time.Minute)
	if tokens.Valid("Bearer " + tok) {
		t.Error("a token is valid at its expiry")
	}
	tok, _ = tokens.Issue()
	tokens.RevokeAll()
	if tokens.Valid("Bearer "+tok) || tokens.Valid(tok) || tokens.Refused != 3 {
		t.Errorf("after revocation: valid, or refusals %d (want 3)", tokens.Refused)
	}
}

package main

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/audit"
	"github.com/gitgrant/gitgrant/internal/render"
)

// TestAuditJSONShape checks that the streamed JSON is byte for byte what
// render.WriteJSON prints for the same document.
func TestAuditJSONShape(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	events := []audit.Event{
		{Time: at, Event: audit.Granted, Request: "requests/db/a.yaml", Requester: "alice", Beneficiary: "alice", Grants: []gitgrant.GrantRef{{Provider: "db", Role: "ro"}}, Commit: "abc", PullRequest: 3, Until: at.Add(time.Hour), Source: audit.FromNote},
		{Time: at.Add(time.Hour), Event: audit.Expired, Request: "requests/db/a.yaml", Requester: "alice", Beneficiary: "alice", Commit: "abc", Source: audit.FromInferred, Detail: "a.yaml -> b.yaml & <c>"},
	}
	holdings := []audit.Holding{{Requester: "alice", Beneficiary: "alice", Provider: "db", Role: "ro", From: at, Until: at.Add(time.Hour), Request: "requests/db/a.yaml", Commit: "abc", Source: audit.FromNote}}
	type eventsDoc struct {
		Version int           `json:"version"`
		Head    string        `json:"head"`
		Events  []audit.Event `json:"events"`
	}
	type holdingsDoc struct {
		Version  int             `json:"version"`
		Head     string          `json:"head"`
		At       time.Time       `json:"at"`
		Holdings []audit.Holding `json:"holdings"`
	}
	tests := []struct {
		name  string
		write func(*bytes.Buffer) error
		want  any
	}{
		{"events", func(b *bytes.Buffer) error { return writeEvents(b, "json", "head1", events) }, eventsDoc{1, "head1", events}},
		{"no events", func(b *bytes.Buffer) error { return writeEvents(b, "json", "head1", nil) }, eventsDoc{1, "head1", []audit.Event{}}},
		{"holdings", func(b *bytes.Buffer) error { return writeHoldings(b, "json", "head1", at, holdings) }, holdingsDoc{1, "head1", at, holdings}},
	}
	for _, tt := range tests {
		var got, want bytes.Buffer
		if err := tt.write(&got); err != nil {
			t.Fatal(err)
		}
		if err := render.WriteJSON(&want, tt.want); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want.String(), got.String()); diff != "" {
			t.Errorf("%s (-render.WriteJSON +streamed):\n%s", tt.name, diff)
		}
		if !json.Valid(got.Bytes()) {
			t.Errorf("%s: invalid JSON", tt.name)
		}
	}
}

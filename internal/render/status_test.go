package render

import (
	"bytes"
	"path/filepath"
	"testing"
	"time"

	"github.com/gitgrant/gitgrant/internal/testing/golden"

	"github.com/google/go-cmp/cmp"

	"github.com/gitgrant/gitgrant"
)

// statusPlan has an active grant, a pending emergency one, a rejected
// and an unverified request.
func statusPlan() gitgrant.Plan {
	p := samplePlan()
	at := p.At
	p.NextChange = at.Add(30 * time.Minute)
	p.Entries = append(p.Entries,
		gitgrant.Entry{Path: "requests/orders-db/dave.yaml", Requester: "dave", Status: gitgrant.StatusPending, Emergency: true,
			Grants: []gitgrant.DesiredGrant{{Provider: "orders-db", Role: "readonly", Principal: "dave", Window: gitgrant.Window{Start: at.Add(30 * time.Minute), End: at.Add(26*time.Hour + 30*time.Minute)}}}},
		gitgrant.Entry{Path: "requests/orders-db/erin.yaml", Requester: "erin", Status: gitgrant.StatusUnverified,
			Grants: []gitgrant.DesiredGrant{{Provider: "orders-db", Role: "readonly", Principal: "erin", Window: gitgrant.Window{Start: at, End: at.Add(time.Hour)}}}},
	)
	return p
}

func TestStatusOf(t *testing.T) {
	t.Parallel()
	p := statusPlan()
	got := StatusOf(p, p.At)
	if got.Unverified != 1 || len(got.Grants) != 2 {
		t.Fatalf("StatusOf: %d grants, %d unverified; want 2 and 1 (the rejected request is left out)", len(got.Grants), got.Unverified)
	}
	want := []StatusGrant{
		{Status: gitgrant.StatusActive, Path: "requests/orders-db/alice.yaml", Requester: "alice", Provider: "orders-db", Role: "readwrite", Principal: "alice",
			Start: p.At.Add(-time.Hour), End: p.At.Add(150 * time.Minute), Remaining: 150 * 60},
		{Status: gitgrant.StatusPending, Path: "requests/orders-db/dave.yaml", Requester: "dave", Provider: "orders-db", Role: "readonly", Principal: "dave",
			Start: p.At.Add(30 * time.Minute), End: p.At.Add(26*time.Hour + 30*time.Minute), StartsIn: 30 * 60, Remaining: (26*60 + 30) * 60, Emergency: true},
	}
	if diff := cmp.Diff(want, got.Grants); diff != "" {
		t.Errorf("grants, active first (-want +got):\n%s", diff)
	}
}

func TestStatusText(t *testing.T) {
	t.Parallel()
	p := statusPlan()
	var b bytes.Buffer
	if err := StatusText(&b, StatusOf(p, p.At)); err != nil {
		t.Fatal(err)
	}
	golden.Check(t, filepath.Join("testdata", "status.txt"), b.Bytes())
	b.Reset()
	if err := StatusText(&b, StatusOf(gitgrant.Plan{}, p.At)); err != nil {
		t.Fatal(err)
	}
	if got, want := b.String(), "No active or upcoming grants.\n"; got != want {
		t.Errorf("empty status = %q, want %q", got, want)
	}
}

func TestHumanDuration(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{
		-time.Second: "0s", 45 * time.Second: "45s", 2*time.Hour + 5*time.Minute + 59*time.Second: "2h5m",
		3*24*time.Hour + 4*time.Hour: "3d4h", 48 * time.Hour: "2d", 7 * time.Minute: "7m",
	} {
		if got := HumanDuration(d); got != want {
			t.Errorf("HumanDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

package gitrepo

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/google/go-cmp/cmp"

	"github.com/gitgrant/gitgrant"
)

var (
	commitA = plumbing.NewHash("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
	commitB = plumbing.NewHash("bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb")
	aliceRW = gitgrant.MemberKey{Provider: "orders-db", Role: "readwrite", Principal: "alice"}
	bobRO   = gitgrant.MemberKey{Provider: "orders-db", Role: "readonly", Principal: "bob"}
)

// recordsOf builds Records from notes as RecordNotes would write them.
func recordsOf(t *testing.T, notes ...Note) *Records {
	t.Helper()
	lines := map[plumbing.Hash][]string{}
	for _, n := range notes {
		rec := n.Record
		if rec.Version == 0 {
			rec.Version = NoteVersion
		}
		b, err := json.Marshal(rec)
		if err != nil {
			t.Fatal(err)
		}
		lines[n.Commit] = append(lines[n.Commit], string(b))
	}
	return rawRecords(lines)
}

func rawRecords(lines map[plumbing.Hash][]string) *Records {
	merged := map[plumbing.Hash]map[string]*NoteRecord{}
	for h, ls := range lines {
		merged[h] = map[string]*NoteRecord{}
		for _, l := range ls {
			merged[h][l] = parseRecord(l)
		}
	}
	return newRecords(merged)
}

func holding(k gitgrant.MemberKey, end time.Time, request string) gitgrant.Holding {
	return gitgrant.Holding{MemberKey: k, Target: k.Role, End: end, Request: request, Blob: "b1", Commit: commitA.String(), Policy: commitB.String()}
}

func granted(at time.Time, hs ...gitgrant.Holding) NoteRecord {
	return NoteRecord{Event: EventGranted, Request: "requests/orders-db/alice.yaml", Requester: "alice", GrantedAt: at, RecordedAt: at, Holdings: hs}
}

func revoked(recordedAt, revokedAt time.Time, ks ...gitgrant.MemberKey) NoteRecord {
	return NoteRecord{Event: EventRevoked, Request: "requests/orders-db/alice.yaml", Requester: "alice", RevokedAt: revokedAt, RecordedAt: recordedAt, Ended: ks}
}

func withGrantedAt(h gitgrant.Holding, at time.Time) gitgrant.Holding {
	h.GrantedAt = at
	return h
}

func TestLedgerReplay(t *testing.T) {
	t.Parallel()
	t0 := at
	t1, t2, t3 := t0.Add(time.Minute), t0.Add(2*time.Minute), t0.Add(3*time.Minute)
	end := t0.Add(4 * time.Hour)
	tests := []struct {
		name  string
		notes []Note
		want  gitgrant.Ledger
	}{{
		name: "an old granted record without holdings starts nothing",
		notes: []Note{{Commit: commitA, Record: NoteRecord{Event: EventGranted, Request: "requests/orders-db/alice.yaml", Requester: "alice",
			Grants: []gitgrant.GrantRef{{Provider: "orders-db", Role: "readwrite"}}, GrantedAt: t0, ExpiresAt: end, RecordedAt: t0}}},
		want: gitgrant.Ledger{},
	}, {
		name:  "a granted record adds its holdings, GrantedAt from the record when unset",
		notes: []Note{{Commit: commitA, Record: granted(t0, holding(aliceRW, end, "r"), withGrantedAt(holding(bobRO, end, "r"), t1))}},
		want:  gitgrant.Ledger{aliceRW: withGrantedAt(holding(aliceRW, end, "r"), t0), bobRO: withGrantedAt(holding(bobRO, end, "r"), t1)},
	}, {
		name:  "a later revocation ends the line",
		notes: []Note{{Commit: commitA, Record: granted(t0, holding(aliceRW, end, "r"), holding(bobRO, end, "r"))}, {Commit: commitA, Record: revoked(t2, t1, aliceRW)}},
		want:  gitgrant.Ledger{bobRO: withGrantedAt(holding(bobRO, end, "r"), t0)},
	}, {
		name: "a revocation before the grant's record, recorded after it, ends nothing",
		notes: []Note{
			{Commit: commitA, Record: granted(t0, holding(aliceRW, end, "r"))},
			{Commit: commitA, Record: revoked(t1, t1, aliceRW)},
			{Commit: commitB, Record: granted(t2, holding(aliceRW, end, "r2"))},
			{Commit: commitA, Record: revoked(t3, t1, aliceRW)}, // a slow writer's record of the first revocation
		},
		want: gitgrant.Ledger{aliceRW: withGrantedAt(holding(aliceRW, end, "r2"), t2)},
	}, {
		name:  "at equal record times the revocation replays first and the grant stands",
		notes: []Note{{Commit: commitB, Record: granted(t1, holding(aliceRW, end, "r"))}, {Commit: commitA, Record: revoked(t1, t0, aliceRW)}},
		want:  gitgrant.Ledger{aliceRW: withGrantedAt(holding(aliceRW, end, "r"), t1)},
	}, {
		name: "a revocation at the grant's own time ends it",
		notes: []Note{{Commit: commitA, Record: granted(t0, holding(aliceRW, end, "r"))},
			{Commit: commitA, Record: revoked(t1, t0, aliceRW)}},
		want: gitgrant.Ledger{},
	}, {
		name: "an update replaces the line and keeps the first grant time",
		notes: []Note{
			{Commit: commitA, Record: granted(t0, holding(aliceRW, end, "r"))},
			{Commit: commitB, Record: NoteRecord{Event: EventExtended, RecordedAt: t2, Holdings: []gitgrant.Holding{withGrantedAt(holding(aliceRW, end.Add(time.Hour), "r2"), t2)}}},
		},
		want: gitgrant.Ledger{aliceRW: withGrantedAt(holding(aliceRW, end.Add(time.Hour), "r2"), t0)},
	}, {
		name: "an old revoked record without Ended ends nothing",
		notes: []Note{{Commit: commitA, Record: granted(t0, holding(aliceRW, end, "r"))},
			{Commit: commitA, Record: NoteRecord{Event: EventRevoked, Request: "requests/orders-db/alice.yaml", RevokedAt: t1, RecordedAt: t1}}},
		want: gitgrant.Ledger{aliceRW: withGrantedAt(holding(aliceRW, end, "r"), t0)},
	}, {
		name: "record time orders the replay, not the commit or the line",
		notes: []Note{{Commit: commitA, Record: revoked(t3, t3, aliceRW)}, {Commit: commitB, Record: granted(t2, holding(aliceRW, end, "r"))},
			{Commit: commitB, Record: granted(t0, holding(bobRO, end, "r"))}},
		want: gitgrant.Ledger{bobRO: withGrantedAt(holding(bobRO, end, "r"), t0)},
	}, {
		name:  "a holding without a full member key is no line",
		notes: []Note{{Commit: commitA, Record: granted(t0, holding(gitgrant.MemberKey{Provider: "orders-db", Role: "readwrite"}, end, "r"))}},
		want:  gitgrant.Ledger{},
	}, {
		name: "seen and policy records leave the ledger alone",
		notes: []Note{{Commit: commitA, Record: NoteRecord{Event: EventSeen, RecordedAt: t0, Seen: []Sighting{{Commit: commitA.String()}}}},
			{Commit: commitA, Record: NoteRecord{Event: EventPolicyTrusted, RecordedAt: t0, Policy: &PolicyTrust{Commit: commitA.String(), How: TrustBootstrap}}}},
		want: gitgrant.Ledger{},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tt.want, recordsOf(t, tt.notes...).Ledger()); diff != "" {
				t.Errorf("ledger (-want +got):\n%s", diff)
			}
		})
	}
}

// TestOldRecordsStillRead: lines that gitgrant wrote before the ledger
// existed parse and mean what they meant; lines of another version are
// skipped.
func TestOldRecordsStillRead(t *testing.T) {
	t.Parallel()
	old := `{"version":1,"event":"granted","request":"requests/orders-db/alice-readwrite.yaml","blob":"b1","requester":"alice","grants":[{"provider":"orders-db","role":"readwrite"}],"pull_request":12,"approved_by":["dana"],"approvals":[{"reviewer":"dana","review_id":1234,"commit_id":"c1","submitted_at":"2026-11-22T08:55:00Z","via":"@acme/dba"}],"granted_at":"2026-11-22T09:00:00Z","expires_at":"2026-11-22T13:00:00Z","recorded_at":"2026-11-22T09:00:05Z"}`
	oldRevoked := `{"version":1,"event":"revoked","request":"requests/orders-db/alice-readwrite.yaml","requester":"alice","grants":[{"provider":"orders-db","role":"readwrite"}],"revoked_at":"2026-11-22T10:00:00Z","recorded_at":"2026-11-22T10:00:01Z"}`
	future := `{"version":2,"event":"granted","request":"x","recorded_at":"2026-11-22T09:00:05Z"}`
	rs := rawRecords(map[plumbing.Hash][]string{commitA: {old, oldRevoked, future, "not json"}})
	ts := func(s string) time.Time { t, _ := time.Parse(time.RFC3339, s); return t }
	want := []NoteRecord{{
		Version: 1, Event: EventGranted, Request: "requests/orders-db/alice-readwrite.yaml", Blob: "b1", Requester: "alice",
		Grants: []gitgrant.GrantRef{{Provider: "orders-db", Role: "readwrite"}}, PullRequest: 12, ApprovedBy: []string{"dana"},
		Approvals: []Approval{{Reviewer: "dana", ReviewID: 1234, CommitID: "c1", SubmittedAt: ts("2026-11-22T08:55:00Z"), Via: "@acme/dba"}},
		GrantedAt: ts("2026-11-22T09:00:00Z"), ExpiresAt: ts("2026-11-22T13:00:00Z"), RecordedAt: ts("2026-11-22T09:00:05Z"),
	}, {
		Version: 1, Event: EventRevoked, Request: "requests/orders-db/alice-readwrite.yaml", Requester: "alice",
		Grants: []gitgrant.GrantRef{{Provider: "orders-db", Role: "readwrite"}}, RevokedAt: ts("2026-11-22T10:00:00Z"), RecordedAt: ts("2026-11-22T10:00:01Z"),
	}}
	if diff := cmp.Diff(want, rs.ByCommit()[commitA]); diff != "" {
		t.Errorf("old records (-want +got):\n%s", diff)
	}
	if l := rs.Ledger(); len(l) != 0 {
		t.Errorf("ledger from old records = %v, want empty: the ledger starts with the first record that carries holdings", l)
	}
}

func TestFirstSeenIsTheMinimum(t *testing.T) {
	t.Parallel()
	t0 := at
	file := Sighting{Path: "requests/orders-db/alice.yaml", Blob: "b1"}
	rs := recordsOf(t,
		Note{Commit: commitA, Record: NoteRecord{Event: EventSeen, RecordedAt: t0.Add(time.Minute), Seen: []Sighting{{Commit: commitA.String()}, file}}},
		// A forged later record moves nothing later.
		Note{Commit: commitB, Record: NoteRecord{Event: EventSeen, RecordedAt: t0.Add(time.Hour), Seen: []Sighting{{Commit: commitA.String()}, file}}},
		// SeenAt before the record's own time counts; after it, the record's time does.
		Note{Commit: commitB, Record: NoteRecord{Event: EventSeen, RecordedAt: t0.Add(2 * time.Minute), SeenAt: t0, Seen: []Sighting{file}}},
		Note{Commit: commitB, Record: NoteRecord{Event: EventSeen, RecordedAt: t0.Add(3 * time.Minute), SeenAt: t0.Add(3 * time.Hour), Seen: []Sighting{{Commit: commitB.String(), Refused: true}}}},
		Note{Commit: commitB, Record: NoteRecord{Event: EventSeen, RecordedAt: t0.Add(4 * time.Minute), Seen: []Sighting{{Commit: commitB.String()}}}},
		// Only seen records count.
		Note{Commit: commitA, Record: NoteRecord{Event: EventGranted, RecordedAt: t0.Add(-time.Hour), Seen: []Sighting{{Commit: commitA.String()}}}},
	)
	want := map[string]time.Time{
		SeenCommitKey(commitA.String()):                    t0.Add(time.Minute),
		SeenFileKey("requests/orders-db/alice.yaml", "b1"): t0,
		SeenCommitKey(commitB.String()):                    t0.Add(3 * time.Minute),
	}
	if diff := cmp.Diff(want, rs.FirstSeen()); diff != "" {
		t.Errorf("first seen (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]bool{commitB.String(): true}, rs.Refused()); diff != "" {
		t.Errorf("refused (-want +got):\n%s", diff)
	}
}

func TestPolicyTrustsRead(t *testing.T) {
	t.Parallel()
	state := map[string]string{gitgrant.ConfigPath: "c1", ".github/CODEOWNERS": "o1", "CODEOWNERS": "", "docs/CODEOWNERS": ""}
	boot := PolicyTrust{Commit: commitA.String(), State: state, How: TrustBootstrap}
	pr := PolicyTrust{Commit: commitB.String(), State: state, How: TrustPullRequest, PullRequest: 7, Approvers: []string{"dana"}}
	rs := recordsOf(t,
		Note{Commit: commitB, Record: NoteRecord{Event: EventPolicyTrusted, RecordedAt: at.Add(time.Minute), Policy: &pr}},
		Note{Commit: commitA, Record: NoteRecord{Event: EventPolicyTrusted, RecordedAt: at, Policy: &boot}},
		Note{Commit: commitA, Record: NoteRecord{Event: EventGranted, RecordedAt: at, Policy: &boot}},
	)
	boot.RecordedAt, pr.RecordedAt = at, at.Add(time.Minute)
	if diff := cmp.Diff([]PolicyTrust{boot, pr}, rs.PolicyTrusts()); diff != "" {
		t.Errorf("policy trusts (-want +got):\n%s", diff)
	}
}

package gitrepo

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/testing/fakeclock"
	"github.com/gitgrant/gitgrant/internal/testing/gitserver"
	"github.com/gitgrant/gitgrant/internal/testing/historygen"
)

// ledgerHistory writes, for git fast-import, a main branch of commits
// first-parent commits (a request every 20th, a policy change every
// 200th, docs/ changing every 7th) and a notes ref of records ledger
// records on the request commits: a grant per request, a revocation for
// every other one, and a second grant for some, as passes write them.
func ledgerHistory(w io.Writer, commits, records int) error {
	s := historygen.NewStream(w, time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), time.Minute)
	file := historygen.File
	var requestMarks []int
	for i := 1; i <= commits; i++ {
		var op, msg string
		switch {
		case i == 1:
			op, msg = file(gitgrant.ConfigPath, "version: 1\n")+file(".github/CODEOWNERS", "* @acme/admins\n"), "Initial"
		case i%200 == 0 && i%400 == 0:
			op, msg = file(gitgrant.ConfigPath, fmt.Sprintf("version: 1\n# revision %d\n", i)), "Config"
		case i%200 == 0:
			op, msg = file(".github/CODEOWNERS", fmt.Sprintf("* @acme/admins\n# %d\n", i)), "Owners"
		case i%20 == 0:
			op, msg = file(fmt.Sprintf("requests/db%02d/user%05d.yaml", i%13, i), requestYAML(fmt.Sprintf("user%05d", i), "readonly", "4h")), fmt.Sprintf("Request (#%d)", i)
			requestMarks = append(requestMarks, i)
		case i%7 == 0:
			op, msg = file("docs/guide.md", fmt.Sprintf("guide %d\n", i)), "Docs"
		default:
			op, msg = file(fmt.Sprintf("notes/%02d.md", i%16), fmt.Sprintf("%d\n", i)), "Notes"
		}
		var parents []int
		if i > 1 {
			parents = []int{i - 1}
		}
		s.CommitBy("refs/heads/main", "Dev", "dev@example.com", msg, parents, op)
	}
	at := s.Now()
	for n := 0; n < records; n++ {
		m := requestMarks[n%len(requestMarks)]
		at = at.Add(time.Second)
		k := gitgrant.MemberKey{Provider: fmt.Sprintf("db%02d", m%13), Role: "readonly", Principal: fmt.Sprintf("user%05d", m)}
		rec := NoteRecord{Version: NoteVersion, Event: EventGranted, Request: fmt.Sprintf("requests/%s/%s.yaml", k.Provider, k.Principal), Requester: k.Principal, RecordedAt: at}
		if n%3 == 1 {
			rec.Event, rec.Ended, rec.RevokedAt = EventRevoked, []gitgrant.MemberKey{k}, at
		} else {
			rec.Holdings = []gitgrant.Holding{{MemberKey: k, Target: "readonly", End: at.Add(4 * time.Hour), Request: rec.Request, Blob: "0123456789abcdef0123456789abcdef01234567", GrantedAt: at}}
		}
		if err := s.Note(m, rec); err != nil {
			return err
		}
	}
	s.Notes(string(NotesRef), "gitgrant: record grants", at)
	return s.Flush()
}

func ledgerRepo(b *testing.B, commits, records int) string {
	b.Helper()
	dir := b.TempDir()
	historygen.Import(b, dir, func(w io.Writer) error { return ledgerHistory(w, commits, records) })
	historygen.Repack(b, dir)
	return dir
}

// benchColdAndNext times read on a fresh Repo of dir each iteration
// ("cold", reporting the count read returns as unit), then on one Repo
// kept open, with next changing something before each read ("next-pass",
// next's work not timed when it stops the timer itself).
func benchColdAndNext(b *testing.B, dir, unit string, read func(*Repo) (int, error), next func(b *testing.B, r *Repo, i int)) {
	b.Run("cold", func(b *testing.B) {
		for b.Loop() {
			r, err := Open(context.Background(), Options{Source: dir})
			if err != nil {
				b.Fatal(err)
			}
			n, err := read(r)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(n), unit)
			r.Close()
		}
	})
	b.Run("next-pass", func(b *testing.B) {
		r, err := Open(context.Background(), Options{Source: dir})
		if err != nil {
			b.Fatal(err)
		}
		defer r.Close()
		if _, err := read(r); err != nil {
			b.Fatal(err)
		}
		for i := 0; b.Loop(); i++ {
			next(b, r, i)
			if _, err := read(r); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkLedger replays 2,000 ledger records on a 10,000-commit history:
// cold (a fresh Repo reads every note), and a later pass (one record
// added locally, then the ledger read again).
//
//	go test ./internal/gitrepo -run '^$' -bench 'Ledger|PolicyChanges' -benchtime 10x
func BenchmarkLedger(b *testing.B) {
	ctx := context.Background()
	clock := fakeclock.New(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	var head Hash // main's, the same on every pass: notes do not move it
	benchColdAndNext(b, ledgerRepo(b, 10_000, 2_000), "lines",
		func(r *Repo) (int, error) { l, err := r.Ledger(ctx); return len(l), err },
		func(b *testing.B, r *Repo, i int) {
			if head.IsZero() {
				var err error
				if head, err = r.MainRef(); err != nil {
					b.Fatal(err)
				}
			}
			k := gitgrant.MemberKey{Provider: "db00", Role: "readonly", Principal: fmt.Sprintf("bench%d", i)}
			rec := NoteRecord{Event: EventGranted, Holdings: []gitgrant.Holding{{MemberKey: k, End: clock.Now().Add(time.Hour)}}}
			if err := r.RecordNotes(ctx, []Note{{Commit: head, Record: rec}}, false, CommitOptions{Clock: clock}); err != nil {
				b.Fatal(err)
			}
			clock.Advance(time.Second)
		})
}

// BenchmarkPolicyChanges walks a 10,000-commit history for policy changes:
// cold (a fresh Repo), and a later pass with one new commit on main.
func BenchmarkPolicyChanges(b *testing.B) {
	dir := ledgerRepo(b, 10_000, 2_000)
	benchColdAndNext(b, dir, "changes",
		func(r *Repo) (int, error) { cs, err := r.PolicyChanges(context.Background()); return len(cs), err },
		func(b *testing.B, r *Repo, i int) {
			b.StopTimer()
			head := gitserver.Run(b, dir, "commit-tree", "-m", fmt.Sprintf("next %d", i), "-p", "main", "main^{tree}")
			gitserver.Run(b, dir, "update-ref", "refs/heads/main", head)
			b.StartTimer()
		})
}

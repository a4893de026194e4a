package gitrepo

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/google/go-cmp/cmp"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/testing/fakeclock"
	"github.com/gitgrant/gitgrant/internal/testing/gitserver"
)

// racingClock runs race the first time the time is read: RecordNotes reads
// it to date its notes commit, after its fetch and before its push, which
// is where another writer's push makes it lose the race.
type racingClock struct {
	*fakeclock.Clock
	once sync.Once
	race func()
}

func (c *racingClock) Now() time.Time {
	c.once.Do(c.race)
	return c.Clock.Now()
}

func ledgerOf(t *testing.T, r *Repo) gitgrant.Ledger {
	t.Helper()
	l, err := r.Ledger(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestRecordNotesPushesAtOnce: what RecordNotes returns from is on the
// remote, for any fresh clone to read, also when another writer pushed
// notes between its fetch and its push (nothing of theirs is lost).
func TestRecordNotesPushesAtOnce(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	merge := w.landAliceRW()
	ctx := context.Background()
	end := at.Add(4 * time.Hour)
	alice := withGrantedAt(holding(aliceRW, end, "requests/orders-db/alice.yaml"), at)
	bob := withGrantedAt(holding(bobRO, end, "requests/orders-db/bob.yaml"), at)

	r, other := w.open(t), w.open(t)
	var raceErr error
	clock := &racingClock{Clock: fakeclock.New(at), race: func() {
		raceErr = other.RecordNotes(ctx, []Note{{Commit: merge, Record: granted(at, bob)}}, true, CommitOptions{Clock: fakeclock.New(at)})
	}}
	if err := r.RecordNotes(ctx, []Note{{Commit: merge, Record: granted(at, alice)}}, true, CommitOptions{Clock: clock}); err != nil {
		t.Fatal(err)
	}
	if raceErr != nil {
		t.Fatal(raceErr)
	}
	want := gitgrant.Ledger{aliceRW: alice, bobRO: bob}
	if diff := cmp.Diff(want, ledgerOf(t, w.open(t))); diff != "" {
		t.Errorf("ledger of a fresh clone (-want +got):\n%s", diff)
	}
	w.Git("fetch", "-q", "origin", "refs/notes/*:refs/notes/*")
	if shown := w.Git("notes", "--ref", "gitgrant", "show", merge.String()); strings.Count(shown, "\n") != 1 || !strings.Contains(shown, `"principal":"bob"`) {
		t.Errorf("git notes show = %q, want alice's and bob's records", shown)
	}
}

// TestRecordNotesWithoutPush: push=false keeps records local until a
// later push; a rejected push is an error and loses nothing.
func TestRecordNotesWithoutPush(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	merge := w.landAliceRW()
	ctx := context.Background()
	alice := withGrantedAt(holding(aliceRW, at.Add(4*time.Hour), "requests/orders-db/alice.yaml"), at)
	o := CommitOptions{Clock: fakeclock.New(at)}

	r := w.open(t)
	if err := r.RecordNotes(ctx, []Note{{Commit: merge, Record: granted(at, alice)}}, false, o); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(gitgrant.Ledger{aliceRW: alice}, ledgerOf(t, r)); diff != "" {
		t.Errorf("local ledger (-want +got):\n%s", diff)
	}
	if l := ledgerOf(t, w.open(t)); len(l) != 0 {
		t.Errorf("a fresh clone sees %v: push=false pushed", l)
	}

	hook := filepath.Join(w.bare, "hooks", "pre-receive")
	if err := os.WriteFile(hook, []byte("#!/bin/sh\necho 'notes are protected' >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	err := r.RecordNotes(ctx, []Note{{Commit: merge, Record: revoked(at.Add(time.Hour), at.Add(time.Hour), aliceRW)}}, true, o)
	var sys *gitgrant.SystemError
	if !errors.As(err, &sys) || !strings.Contains(err.Error(), "pre-receive hook declined: the remote refused refs/notes/gitgrant, where gitgrant keeps its ledger") {
		t.Fatalf("RecordNotes with a rejecting remote = %v, want a *gitgrant.SystemError saying the hook declined", err)
	}
	if l := ledgerOf(t, r); len(l) != 0 {
		t.Errorf("local ledger after the revocation = %v, want it ended locally", l)
	}

	os.Remove(hook)
	if err := r.RecordNotes(ctx, nil, true, o); err != nil { // the next push takes what is pending
		t.Fatal(err)
	}
	fresh := w.open(t)
	rs, err := fresh.Records(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(rs.All()); n != 2 || len(rs.Ledger()) != 0 {
		t.Errorf("a fresh clone reads %d records and ledger %v, want the grant and its revocation", n, rs.Ledger())
	}
}

// TestRecordNotesWithoutRemote: a repository without a remote keeps its
// notes locally and that is no error.
func TestRecordNotesWithoutRemote(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	gitserver.Run(t, dir, "init", "-q", "--initial-branch=main", ".")
	gitserver.Run(t, dir, "commit", "-q", "--allow-empty", "-m", "Initial")
	r, err := Open(context.Background(), Options{Source: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	head := plumbing.NewHash(gitserver.Run(t, dir, "rev-parse", "HEAD"))
	alice := withGrantedAt(holding(aliceRW, at.Add(time.Hour), "r"), at)
	if err := r.RecordNotes(context.Background(), []Note{{Commit: head, Record: granted(at, alice)}}, true, CommitOptions{Clock: fakeclock.New(at)}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(gitgrant.Ledger{aliceRW: alice}, ledgerOf(t, r)); diff != "" {
		t.Errorf("ledger (-want +got):\n%s", diff)
	}
	if shown := gitserver.Run(t, dir, "notes", "--ref", "gitgrant", "show", head.String()); !strings.Contains(shown, `"holdings"`) {
		t.Errorf("git notes show = %q, want the record", shown)
	}
}

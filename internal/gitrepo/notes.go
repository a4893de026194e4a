package gitrepo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/gitgrant/gitgrant"
)

// NotesRef holds gitgrant's grant-time records, one note per annotated
// commit (the request's merge, squash or pushed commit on main).
const NotesRef = plumbing.ReferenceName("refs/notes/gitgrant")

// remoteNotesRef is where a fetch puts the remote's notes.
var remoteNotesRef = plumbing.ReferenceName("refs/remotes/origin/notes/gitgrant")

// NoteVersion is the version of NoteRecord's JSON. Fields are only ever
// added within a version, and a record without a field means what it
// meant before the field existed (docs/audit.md).
const NoteVersion = 1

// Events of note records.
const (
	// EventGranted: access was granted for a request (or is about to be:
	// a record with Holdings is written before the grant call).
	EventGranted = "granted"
	// EventExtended: a later version of a request was granted again.
	EventExtended = "extended"
	// EventRevoked: access was revoked; Ended names the memberships.
	EventRevoked = "revoked"
	// EventSeen: gitgrant saw commits or request files for the first time.
	EventSeen = "seen"
	// EventPolicyTrusted: a policy state became trusted (rule 13).
	EventPolicyTrusted = "policy-trusted"
	// EventNotified: a person was told something about a request once
	// (Notice): a reminder before its window ends, why it was refused.
	// It keeps gitgrant from saying it twice.
	EventNotified = "notified"
	// EventUsage: gitgrant looked for sessions of memberships it granted,
	// through a provider that can tell (providers.UsageObserver); Usage
	// says what it saw.
	EventUsage = "usage"
	// EventDriftRemoved: gitgrant revoked memberships it never granted and
	// nothing explains (drift); Ended names them, RevokedAt says when. The
	// ledger replay ignores it: it ends no ledger line.
	EventDriftRemoved = "drift-removed"
)

// NoteRecord is one line of a note: a JSON object (JSON Lines), so that
// records appended by concurrent writers merge as a union of lines, the way
// git's cat_sort_uniq notes merge strategy does (docs/audit.md).
type NoteRecord struct {
	Version     int                 `json:"version"`
	Event       string              `json:"event"` // one of the Event constants
	Request     string              `json:"request,omitempty"`
	Blob        string              `json:"blob,omitempty"` // the request file's blob when judged
	Requester   string              `json:"requester,omitempty"`
	Grants      []gitgrant.GrantRef `json:"grants,omitempty"`
	PullRequest int                 `json:"pull_request,omitempty"`
	// ApprovedBy are the reviewers whose approvals counted; Approvals is
	// the evidence for each.
	ApprovedBy []string   `json:"approved_by,omitempty"`
	Approvals  []Approval `json:"approvals,omitempty"`
	Emergency  bool       `json:"emergency,omitempty"`
	GrantedAt  time.Time  `json:"granted_at,omitzero"`
	ExpiresAt  time.Time  `json:"expires_at,omitzero"`
	// RevokedAt is when the access was revoked; on a record with Ended it
	// is the time the ledger replay compares with (see Records.Replay).
	RevokedAt  time.Time `json:"revoked_at,omitzero"`
	RecordedAt time.Time `json:"recorded_at"`

	// Holdings are ledger lines (rule 14) on granted and extended records:
	// the memberships granted, written before the grant call.
	Holdings []gitgrant.Holding `json:"holdings,omitempty"`
	// Ended are the memberships a revoked record's revocation ended (or a
	// drift-removed record's removed).
	Ended []gitgrant.MemberKey `json:"ended,omitempty"`
	// Seen is what a seen record saw first, at SeenAt (or RecordedAt when
	// that is earlier or SeenAt is zero).
	Seen   []Sighting `json:"seen,omitempty"`
	SeenAt time.Time  `json:"seen_at,omitzero"`
	// Policy is the state a policy-trusted record trusts.
	Policy *PolicyTrust `json:"policy,omitempty"`
	// Marker is, on an emergency grant's record, the random nonce of the
	// marker in its follow-up issue.
	Marker string `json:"marker,omitempty"`
	// Notice is what a notified record told about Request at Blob, such
	// as "reminder:2026-11-22T16:00:00Z" or "refused:<digest>".
	Notice string `json:"notice,omitempty"`
	// Usage is what a usage record saw of each membership.
	Usage []UsageSighting `json:"usage,omitempty"`
}

// UsageSighting is one look at a membership's sessions: the span it
// belongs to (the ledger line's GrantedAt), how many sessions of the
// principal were open, and the earliest one's start.
type UsageSighting struct {
	gitgrant.MemberKey
	GrantedAt    time.Time `json:"granted_at"`
	Sessions     int       `json:"sessions"`
	FirstSession time.Time `json:"first_session,omitzero"`
}

// Sighting is one thing a seen record saw: a commit, or a file's content
// at a path (Path and Blob). Refused records that its time cannot be
// trusted (a commit date too far after it was first seen): once any record
// refuses a key, the key stays refused.
type Sighting struct {
	Commit  string `json:"commit,omitempty"`
	Path    string `json:"path,omitempty"`
	Blob    string `json:"blob,omitempty"`
	Refused bool   `json:"refused,omitempty"`
}

// Key is the sighting's key in FirstSeen: SeenFileKey(Path, Blob) when
// Path is set, else SeenCommitKey(Commit).
func (s Sighting) Key() string {
	if s.Path != "" {
		return SeenFileKey(s.Path, s.Blob)
	}
	return s.Commit
}

// SeenCommitKey is the FirstSeen key of a commit: its hash.
func SeenCommitKey(commit string) string { return commit }

// SeenFileKey is the FirstSeen key of a file's content at a path:
// "path@blob". The blob is the text after the last "@".
func SeenFileKey(path, blob string) string { return path + "@" + blob }

// How a policy state came to be trusted.
const (
	TrustBootstrap   = "bootstrap"    // the operator trusted it explicitly
	TrustPullRequest = "pull-request" // a merged pull request verified as a policy change
	TrustRevert      = "revert"       // it equals the trusted state at its first parent
)

// PolicyTrust is what a policy-trusted record trusts: the policy state at
// a main commit (PolicyState's map: every policy file's blob, "" when
// absent), how, and on whose approval.
type PolicyTrust struct {
	Commit      string            `json:"commit"`
	State       map[string]string `json:"state"`
	How         string            `json:"how"` // TrustBootstrap, TrustPullRequest or TrustRevert
	PullRequest int               `json:"pull_request,omitempty"`
	Approvers   []string          `json:"approvers,omitempty"`
	// RecordedAt is the record's time; it is filled when read, not written.
	RecordedAt time.Time `json:"-"`
}

// Approval is the evidence for one counted approval.
type Approval struct {
	Reviewer    string    `json:"reviewer"`
	ReviewID    int64     `json:"review_id,omitempty"`
	CommitID    string    `json:"commit_id,omitempty"` // the head commit approved
	SubmittedAt time.Time `json:"submitted_at,omitzero"`
	Via         string    `json:"via,omitempty"` // the CODEOWNERS rule or team that made the reviewer count
}

// Note attaches a record to a commit.
type Note struct {
	Commit plumbing.Hash
	Record NoteRecord
}

// Notes reads every note under refs/notes/gitgrant, the local ref and
// the remote's last fetched one merged, keyed by annotated commit, each
// commit's records in the order of their lines. Lines that are not
// records of a known version are skipped.
func (r *Repo) Notes() (map[plumbing.Hash][]NoteRecord, error) {
	rs, err := r.Records(context.Background())
	if err != nil {
		return nil, err
	}
	return rs.ByCommit(), nil
}

// noteFile is one note: the blob, its non-empty lines and the record
// each holds (nil for a line that is none of a known version).
type noteFile struct {
	blob  plumbing.Hash
	lines []string
	recs  []*NoteRecord
}

// noteFiles reads a notes ref into its notes by annotated commit; a
// missing ref has no notes. Blobs are read and parsed once per Repo: a
// note's blob never changes, and a long-running reconciler reads the notes
// every pass.
func (r *Repo) noteFiles(name plumbing.ReferenceName) (map[plumbing.Hash]noteFile, error) {
	ref, err := r.git.Reference(name, true)
	if errors.Is(err, plumbing.ErrReferenceNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, r.fail("read "+name.String(), err, false)
	}
	c, err := object.GetCommit(r.git.Storer, ref.Hash())
	if err != nil {
		return nil, r.fail("read "+name.String(), err, false)
	}
	out := map[plumbing.Hash]noteFile{}
	err = r.walkTree(c.TreeHash, "", func(p string, e object.TreeEntry) error {
		// Notes trees may fan out (ab/cdef...); the path without slashes
		// is the annotated object's hash.
		hex := strings.ReplaceAll(p, "/", "")
		if len(hex) != 40 {
			return nil
		}
		f, err := r.noteFile(e.Hash)
		if err != nil {
			return err
		}
		out[plumbing.NewHash(hex)] = f
		return nil
	})
	if err != nil {
		return nil, r.fail("read "+name.String(), err, false)
	}
	return out, nil
}

func (r *Repo) noteFile(h plumbing.Hash) (noteFile, error) {
	r.notesMu.Lock()
	f, ok := r.noteBlobs[h]
	r.notesMu.Unlock()
	if ok {
		return f, nil
	}
	blob, err := object.GetBlob(r.git.Storer, h)
	if err != nil {
		return f, err
	}
	rd, err := blob.Reader()
	if err != nil {
		return f, err
	}
	data, err := io.ReadAll(rd)
	rd.Close()
	if err != nil {
		return f, err
	}
	f.blob = h
	for _, l := range strings.Split(string(data), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			f.lines = append(f.lines, l)
			f.recs = append(f.recs, parseRecord(l))
		}
	}
	r.notesMu.Lock()
	if r.noteBlobs == nil {
		r.noteBlobs = map[plumbing.Hash]noteFile{}
	}
	r.noteBlobs[h] = f
	r.notesMu.Unlock()
	return f, nil
}

// parseRecord reads one line; nil when it is not a record of a known
// version.
func parseRecord(line string) *NoteRecord {
	var rec NoteRecord
	if json.Unmarshal([]byte(line), &rec) != nil || rec.Version != NoteVersion {
		return nil
	}
	return &rec
}

// AddNotes records notes and pushes refs/notes/gitgrant: RecordNotes with
// push.
func (r *Repo) AddNotes(ctx context.Context, notes []Note, o CommitOptions) error {
	return r.RecordNotes(ctx, notes, true, o)
}

// RecordNotes appends records to the local refs/notes/gitgrant and, when
// push is set and the repository has a remote, pushes it at once, never
// forcing: each attempt fetches and merges the remote's notes, the local
// ones (which may hold records an earlier failed push left) and the new
// records as a union of lines, and a non-fast-forward is retried. Records
// already there are not written twice; nothing new makes no commit.
//
// The engine calls it before granting: once it returns nil, what is about
// to be granted is on the remote, and a crash loses nothing. An error
// means the records may be only local (they go out with the next push);
// the caller must then grant nothing. o dates, signs and bounds the
// attempts; a record without RecordedAt gets o's clock.
func (r *Repo) RecordNotes(ctx context.Context, notes []Note, push bool, o CommitOptions) error {
	add := map[plumbing.Hash][]string{}
	for _, n := range notes {
		rec := n.Record
		if rec.Version == 0 {
			rec.Version = NoteVersion
		}
		if rec.RecordedAt.IsZero() {
			rec.RecordedAt = o.now().Truncate(time.Second)
		}
		line, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		add[n.Commit] = append(add[n.Commit], string(line))
	}
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	_, noRemote := r.git.Remote(remoteName)
	if !push || noRemote != nil {
		_, err := r.writeNotes(add, o)
		return err
	}
	attempts := max(o.Attempts, 5) // records that do not land hold grants back
	var lastErr error
	for i := 0; i < attempts; i++ {
		if err := r.Fetch(ctx); err != nil {
			return err
		}
		changed, err := r.writeNotes(add, o)
		if err != nil {
			return err
		}
		if !changed {
			return nil
		}
		if lastErr = r.pushNotes(ctx); lastErr == nil {
			return nil
		}
		if !isNonFastForward(lastErr) {
			return r.fail("push "+NotesRef.String(), lastErr, false)
		}
	}
	return r.fail("push "+NotesRef.String(), fmt.Errorf("still rejected after %d attempts: %w", attempts, lastErr), true)
}

// writeNotes builds the merged notes commit on top of the remote's notes
// and points the local ref at it. changed is false when the remote already
// holds every line. A note whose lines did not change keeps its blob, so a
// pass that adds one record writes one blob, not one per annotated commit.
func (r *Repo) writeNotes(add map[plumbing.Hash][]string, o CommitOptions) (bool, error) {
	remote, err := r.noteFiles(remoteNotesRef)
	if err != nil {
		return false, err
	}
	local, err := r.noteFiles(NotesRef)
	if err != nil {
		return false, err
	}
	merged := map[plumbing.Hash]map[string]bool{}
	put := func(h plumbing.Hash, ls []string) {
		if merged[h] == nil {
			merged[h] = map[string]bool{}
		}
		for _, l := range ls {
			merged[h][l] = true
		}
	}
	for h, f := range remote {
		put(h, f.lines)
	}
	for h, f := range local {
		put(h, f.lines)
	}
	for h, ls := range add {
		put(h, ls)
	}
	changed := false
	for h, ls := range merged {
		if len(ls) != len(setOf(remote[h].lines)) {
			changed = true
			break
		}
	}
	var parents []plumbing.Hash
	if ref, err := r.git.Reference(remoteNotesRef, true); err == nil {
		parents = append(parents, ref.Hash())
	}
	if !changed && len(parents) > 0 {
		return false, r.git.Storer.SetReference(plumbing.NewHashReference(NotesRef, parents[0]))
	}
	entries := make([]object.TreeEntry, 0, len(merged))
	for h, ls := range merged {
		bh, err := r.noteBlob(ls, remote[h], local[h])
		if err != nil {
			return false, r.fail("write note", err, false)
		}
		entries = append(entries, object.TreeEntry{Name: h.String(), Mode: filemode.Regular, Hash: bh})
	}
	tree, err := r.storeTree(entries)
	if err != nil {
		return false, r.fail("write notes tree", err, false)
	}
	sig := o.signature()
	c := &object.Commit{Author: sig, Committer: sig, Message: "gitgrant: record grants\n", TreeHash: tree, ParentHashes: parents}
	h, err := r.storeCommit(c, o.Signer)
	if err != nil {
		return false, err
	}
	return true, r.git.Storer.SetReference(plumbing.NewHashReference(NotesRef, h))
}

// noteBlob returns the blob holding exactly the lines ls: an existing
// note's when it holds them, else a new one.
func (r *Repo) noteBlob(ls map[string]bool, existing ...noteFile) (plumbing.Hash, error) {
	for _, f := range existing {
		if !f.blob.IsZero() && len(f.lines) == len(ls) && len(setOf(f.lines)) == len(ls) && containsAll(ls, f.lines) {
			return f.blob, nil
		}
	}
	var buf bytes.Buffer
	for _, l := range sortedKeys(ls) {
		buf.WriteString(l + "\n")
	}
	obj := r.git.Storer.NewEncodedObject()
	obj.SetType(plumbing.BlobObject)
	w, err := obj.Writer()
	if err != nil {
		return plumbing.ZeroHash, err
	}
	if _, err := w.Write(buf.Bytes()); err != nil {
		return plumbing.ZeroHash, err
	}
	if err := w.Close(); err != nil {
		return plumbing.ZeroHash, err
	}
	return r.git.Storer.SetEncodedObject(obj)
}

func containsAll(set map[string]bool, ls []string) bool {
	for _, l := range ls {
		if !set[l] {
			return false
		}
	}
	return true
}

func (r *Repo) pushNotes(ctx context.Context) error {
	ref, err := r.git.Reference(NotesRef, true)
	if err != nil {
		return err
	}
	if err := r.push(ctx, ref.Hash(), NotesRef); err != nil {
		return err
	}
	return r.git.Storer.SetReference(plumbing.NewHashReference(remoteNotesRef, ref.Hash()))
}

func setOf(ls []string) map[string]bool {
	m := make(map[string]bool, len(ls))
	for _, l := range ls {
		m[l] = true
	}
	return m
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

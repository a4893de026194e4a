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

// NoteVersion is the version of NoteRecord's JSON.
const NoteVersion = 1

// NoteRecord is one line of a note: a JSON object (JSON Lines), so that
// records appended by concurrent writers merge as a union of lines, the way
// git's cat_sort_uniq notes merge strategy does (docs/audit.md).
type NoteRecord struct {
	Version     int                 `json:"version"`
	Event       string              `json:"event"` // granted, extended, revoked
	Request     string              `json:"request"`
	Blob        string              `json:"blob,omitempty"` // the request file's blob when judged
	Requester   string              `json:"requester"`
	Grants      []gitgrant.GrantRef `json:"grants"`
	PullRequest int                 `json:"pull_request,omitempty"`
	// ApprovedBy are the reviewers whose approvals counted; Approvals is
	// the evidence for each.
	ApprovedBy []string   `json:"approved_by,omitempty"`
	Approvals  []Approval `json:"approvals,omitempty"`
	Emergency  bool       `json:"emergency,omitempty"`
	GrantedAt  time.Time  `json:"granted_at,omitzero"`
	ExpiresAt  time.Time  `json:"expires_at,omitzero"`
	RevokedAt  time.Time  `json:"revoked_at,omitzero"`
	RecordedAt time.Time  `json:"recorded_at"`
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
// the remote's last fetched one merged, keyed by annotated commit.
// Lines that are not records of a known version are skipped.
func (r *Repo) Notes() (map[plumbing.Hash][]NoteRecord, error) {
	merged := map[plumbing.Hash]map[string]bool{}
	for _, name := range []plumbing.ReferenceName{NotesRef, remoteNotesRef} {
		lines, err := r.noteLines(name)
		if err != nil {
			return nil, err
		}
		for h, ls := range lines {
			if merged[h] == nil {
				merged[h] = map[string]bool{}
			}
			for _, l := range ls {
				merged[h][l] = true
			}
		}
	}
	out := make(map[plumbing.Hash][]NoteRecord, len(merged))
	for h, ls := range merged {
		for _, l := range sortedKeys(ls) {
			var rec NoteRecord
			if json.Unmarshal([]byte(l), &rec) != nil || rec.Version != NoteVersion {
				continue
			}
			out[h] = append(out[h], rec)
		}
	}
	return out, nil
}

// noteLines reads a notes ref into lines per annotated commit; a missing
// ref has no notes.
func (r *Repo) noteLines(name plumbing.ReferenceName) (map[plumbing.Hash][]string, error) {
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
	out := map[plumbing.Hash][]string{}
	err = r.walkTree(c.TreeHash, "", func(p string, e object.TreeEntry) error {
		// Notes trees may fan out (ab/cdef...); the path without slashes
		// is the annotated object's hash.
		hex := strings.ReplaceAll(p, "/", "")
		if len(hex) != 40 {
			return nil
		}
		blob, err := object.GetBlob(r.git.Storer, e.Hash)
		if err != nil {
			return err
		}
		rd, err := blob.Reader()
		if err != nil {
			return err
		}
		data, err := io.ReadAll(rd)
		rd.Close()
		if err != nil {
			return err
		}
		for _, l := range strings.Split(string(data), "\n") {
			if l = strings.TrimSpace(l); l != "" {
				out[plumbing.NewHash(hex)] = append(out[plumbing.NewHash(hex)], l)
			}
		}
		return nil
	})
	if err != nil {
		return nil, r.fail("read "+name.String(), err, false)
	}
	return out, nil
}

// AddNotes records notes and pushes refs/notes/gitgrant, never forcing:
// each attempt merges the remote's notes, the local ones (which may hold
// records an earlier failed push left) and the new records as a union of
// lines. Records already there are not written twice; nothing new makes
// no commit. Without a remote the notes stay local.
func (r *Repo) AddNotes(ctx context.Context, notes []Note, o CommitOptions) error {
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
	_, noRemote := r.git.Remote(remoteName)
	attempts := max(o.Attempts, 5)
	var lastErr error
	for i := 0; i < attempts; i++ {
		if noRemote == nil {
			if err := r.Fetch(ctx); err != nil {
				return err
			}
		}
		changed, err := r.writeNotes(add, o)
		if err != nil {
			return err
		}
		if noRemote != nil || !changed {
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
// holds every line.
func (r *Repo) writeNotes(add map[plumbing.Hash][]string, o CommitOptions) (bool, error) {
	remote, err := r.noteLines(remoteNotesRef)
	if err != nil {
		return false, err
	}
	local, err := r.noteLines(NotesRef)
	if err != nil {
		return false, err
	}
	merged := map[plumbing.Hash]map[string]bool{}
	put := func(src map[plumbing.Hash][]string) {
		for h, ls := range src {
			if merged[h] == nil {
				merged[h] = map[string]bool{}
			}
			for _, l := range ls {
				merged[h][l] = true
			}
		}
	}
	put(remote)
	put(local)
	put(add)
	changed := false
	for h, ls := range merged {
		if len(ls) != len(setOf(remote[h])) {
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
	var entries []object.TreeEntry
	for h, ls := range merged {
		var buf bytes.Buffer
		for _, l := range sortedKeys(ls) {
			buf.WriteString(l + "\n")
		}
		obj := r.git.Storer.NewEncodedObject()
		obj.SetType(plumbing.BlobObject)
		w, _ := obj.Writer()
		w.Write(buf.Bytes())
		w.Close()
		bh, err := r.git.Storer.SetEncodedObject(obj)
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

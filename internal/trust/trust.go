// Package trust decides which version of the policy files (gitgrant.yaml
// and CODEOWNERS) is in force at any commit of the main branch (rule 13).
//
// A commit that changes a policy file takes effect only once verified: it
// is the trust root the operator named, or it restores content already
// trusted, or it came through a merged pull request approved by the code
// owners of every file it changes, judged by the trusted policy at that
// pull request's base. Until a newer version verifies, gitgrant keeps the
// last verified one, and of those the newest whose gitgrant.yaml is valid
// configures grants: a verified typo never stops anything (rules 9, 15).
package trust

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/codeowners"
)

// State is the content of the policy files at one commit: path -> blob
// hash; a file that is absent has no entry (or "").
type State map[string]string

// Equal reports whether two states hold the same content.
func (s State) Equal(o State) bool {
	for _, p := range gitgrant.PolicyFiles {
		if s[p] != o[p] {
			return false
		}
	}
	return true
}

// Differs lists the policy files whose content differs between s and o.
func (s State) Differs(o State) []string {
	var out []string
	for _, p := range gitgrant.PolicyFiles {
		if s[p] != o[p] {
			out = append(out, p)
		}
	}
	return out
}

// Candidate is a first-parent commit of the main branch that changes at
// least one policy file.
type Candidate struct {
	Commit  string
	Parents []string
	// Depth is the commit's position on main's first-parent chain (the
	// root commit is 0): candidate A is older than B when A.Depth < B.Depth.
	Depth int
	// State is the policy content at Commit; Before at its first parent.
	State, Before State
}

// Changed lists the policy files the candidate itself changes.
func (c Candidate) Changed() []string { return c.State.Differs(c.Before) }

// Source is what trust reads from git.
type Source interface {
	// Candidates returns every policy-changing first-parent commit of
	// main, oldest first.
	Candidates(ctx context.Context) ([]Candidate, error)
	// Depth is the first-parent position on main of commit, or of its
	// nearest first-parent ancestor on main; ok is false when neither
	// exists in the repository.
	Depth(ctx context.Context, commit string) (depth int, ok bool, err error)
	// Blob reads a file's content by blob hash.
	Blob(hash string) ([]byte, error)
}

// Verdict says whether one candidate is trusted, and why or why not.
type Verdict struct {
	Trusted bool
	// How names the verification: "trust root", "restores verified
	// content of abc123", "pull request #12".
	How         string
	PullRequest int
	Approvers   []string
	// Reasons say why a candidate is not trusted, each with what to do.
	Reasons []string
	// Retry is set when the verdict may change (GitHub had not yet linked
	// the merge to its pull request): it is not memoised.
	Retry bool
	// Unknown is set when GitHub could not be asked at all.
	Unknown bool
}

// Change is a candidate handed to the pull-request verifier: Files are
// the policy files it changes, and Prior the trusted policy just before
// it (at its first parent).
type Change struct {
	Candidate
	Files []string
	Prior Policy
}

// VerifyFunc verifies a change that came through a pull request. It may
// call Resolver.PolicyAt for the trusted policy at the pull request's
// base (and at the commit it was merged onto). An error means GitHub
// could not be asked: nothing is decided.
type VerifyFunc func(ctx context.Context, ch Change) (Verdict, error)

// Policy is the trusted policy in force at one commit.
type Policy struct {
	// Commit is the candidate whose content this is: the newest trusted
	// policy change at or before the commit asked about.
	Commit string
	State  State
	How    string
	// Owners is the trusted CODEOWNERS (nil when there is none).
	Owners *codeowners.File
	// Config is the newest trusted gitgrant.yaml at or before the commit
	// that is valid, from ConfigCommit; nil when there is none.
	Config       *gitgrant.Config
	ConfigCommit string
	// Problems explains a Config that is older than State (the newer
	// verified gitgrant.yaml is invalid).
	Problems []string
}

// ErrNoRoot says nothing can be trusted yet: the first policy of a
// repository is trusted once, explicitly (docs/trust.md).
var ErrNoRoot = errors.New("no trusted policy: name the trust root once with `gitgrant trust --root first` (or GITGRANT_TRUST_ROOT); see docs/trust.md")

// Resolver answers which policy is trusted at a commit. One Resolver
// serves many passes: verdicts are memoised by commit, so a steady state
// costs no GitHub calls; Reset when main was force-pushed.
type Resolver struct {
	Source Source
	// Verify checks changes that came through a pull request; nil trusts
	// only the root and restorations of trusted content.
	Verify VerifyFunc
	// Root is the trust root: "first" (the first policy commit on main),
	// a commit on main (the policy in force there), or "" for none.
	Root string

	mu       sync.Mutex
	verdicts map[string]Verdict
	configs  map[string]configMemo       // by blob
	owned    map[string]*codeowners.File // by path and blob: a policy state's CODEOWNERS, parsed once
}

type configMemo struct {
	cfg      *gitgrant.Config
	problems []string
}

// Report is the trust situation at the head of main, for plan, status,
// the job summary and /readyz.
type Report struct {
	Policy Policy
	// Unverified are the candidates newer than the trusted policy that
	// are not trusted, newest first, with their reasons.
	Unverified []Unverified
}

// Unverified is a policy change gitgrant does not apply.
type Unverified struct {
	Commit  string
	Files   []string
	Reasons []string
	// Unknown: the verdict is not final (GitHub could not be asked about
	// this change, or about one before it that it was judged against), so
	// it may yet be verified. State is the policy state it would bring.
	Unknown bool
	State   State
}

// Loud is a one-line summary when anything is off, "" otherwise.
func (r Report) Loud() string {
	var parts []string
	if len(r.Unverified) > 0 {
		u := r.Unverified[0]
		parts = append(parts, fmt.Sprintf("policy change %s (%s) is not verified, so gitgrant keeps the verified policy of %s: %s",
			short(u.Commit), strings.Join(u.Files, ", "), short(r.Policy.Commit), strings.Join(u.Reasons, "; ")))
	}
	parts = append(parts, r.Policy.Problems...)
	return strings.Join(parts, "; ")
}

// resolution is one question to the Resolver: the candidates it was
// asked about, and verdicts that may still change, kept for the question
// only.
type resolution struct {
	cands     []Candidate
	root      int
	transient map[string]Verdict
}

func (r *Resolver) start(ctx context.Context) (*resolution, error) {
	cands, err := r.Source.Candidates(ctx)
	if err != nil {
		return nil, err
	}
	res := &resolution{cands: cands, transient: map[string]Verdict{}}
	if res.root, err = r.rootIndex(ctx, cands); err != nil {
		return nil, err
	}
	return res, nil
}

// At resolves the trusted policy at head and reports the policy changes
// since that are not trusted.
func (r *Resolver) At(ctx context.Context, head string) (Report, error) {
	res, err := r.start(ctx)
	if err != nil {
		return Report{}, err
	}
	cands := res.cands
	d, ok, err := r.Source.Depth(ctx, head)
	if err != nil {
		return Report{}, err
	}
	if !ok {
		return Report{}, fmt.Errorf("trust: commit %s is not on the main branch", short(head))
	}
	p, err := r.policyAt(ctx, res, d)
	if err != nil {
		return Report{}, err
	}
	rep := Report{Policy: p}
	for i := len(cands) - 1; i >= 0 && cands[i].Depth <= d; i-- {
		c := cands[i]
		if c.Commit == p.Commit {
			break
		}
		v, err := r.verdict(ctx, res, i)
		if err != nil {
			return Report{}, err
		}
		rep.Unverified = append(rep.Unverified, Unverified{Commit: c.Commit, Files: c.Changed(), Reasons: v.Reasons, Unknown: v.Unknown || v.Retry, State: c.State})
	}
	return rep, nil
}

// PolicyAt is the trusted policy in force at commit (on main, or judged at
// its nearest first-parent ancestor on main).
func (r *Resolver) PolicyAt(ctx context.Context, commit string) (Policy, error) {
	res, err := r.start(ctx)
	if err != nil {
		return Policy{}, err
	}
	d, ok, err := r.Source.Depth(ctx, commit)
	if err != nil {
		return Policy{}, err
	}
	if !ok {
		return Policy{}, fmt.Errorf("trust: commit %s has no ancestor on the main branch", short(commit))
	}
	return r.policyAt(ctx, res, d)
}

// IsTrusted reports whether commit is a trusted policy change: the
// provider settings there may be used (to revoke what was granted under
// them).
func (r *Resolver) IsTrusted(ctx context.Context, commit string) (bool, error) {
	res, err := r.start(ctx)
	if err != nil {
		return false, err
	}
	for i, c := range res.cands {
		if c.Commit == commit {
			v, err := r.verdict(ctx, res, i)
			return v.Trusted, err
		}
	}
	return false, nil
}

// ConfigOf loads the configuration of a trusted policy state: the
// settings to open a provider that has since left the configuration.
func (r *Resolver) ConfigOf(ctx context.Context, commit string) (*gitgrant.Config, error) {
	res, err := r.start(ctx)
	if err != nil {
		return nil, err
	}
	for i, c := range res.cands {
		if c.Commit != commit {
			continue
		}
		v, err := r.verdict(ctx, res, i)
		if err != nil {
			return nil, err
		}
		if !v.Trusted {
			return nil, fmt.Errorf("trust: the policy of %s is not verified; its settings are never used", short(commit))
		}
		cfg, problems := r.config(c.State[gitgrant.ConfigPath])
		if cfg == nil {
			return nil, fmt.Errorf("trust: %s at %s: %s", gitgrant.ConfigPath, short(commit), strings.Join(problems, "; "))
		}
		return cfg, nil
	}
	return nil, fmt.Errorf("trust: %s is not a policy change on the main branch", short(commit))
}

// Reset forgets every verdict, after main was rewritten.
func (r *Resolver) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.verdicts = nil
}

// ConfigAtState loads the gitgrant.yaml of a policy state, verified or
// not, memoised by blob; nil when it is missing or invalid.
func (r *Resolver) ConfigAtState(s State) *gitgrant.Config {
	cfg, _ := r.config(s[gitgrant.ConfigPath])
	return cfg
}

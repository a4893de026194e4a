package approval

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/codeowners"
	"github.com/gitgrant/gitgrant/schema"
)

// Policy is the policy that judges a pull request based at a commit: the
// configuration and CODEOWNERS in force there. The trust package supplies
// the verified policy in force at a main-branch commit (rule 13); without
// one, the verifier reads the raw files at the commit.
type Policy struct {
	// Config is nil when there is no usable gitgrant.yaml; ConfigReason
	// then says why ("gitgrant.yaml does not exist", "... is invalid").
	Config       *gitgrant.Config
	ConfigReason string
	// Owners is the CODEOWNERS file GitHub would use; nil when none exists.
	Owners *codeowners.File
	// Commit is the commit whose files these are. For a verified policy it
	// is the policy commit in force, older than the commit asked about.
	Commit string
	// Blobs are the git blob hashes of the gitgrant.PolicyFiles present in
	// this state, by path; an absent file has no entry. A policy change is
	// verified against them (the diff reviewers saw must start from them).
	Blobs map[string]string
}

// PolicySource tells the policy in force at a commit. The verifier asks it
// for a pull request's base commit and for the commit it was merged onto.
// An error means the policy cannot be known now (fail closed).
type PolicySource interface {
	PolicyAt(ctx context.Context, commit string) (Policy, error)
}

// ParsePolicy builds the Policy that files hold: path -> content of every
// gitgrant.PolicyFiles file that exists (a missing path is an absent
// file). commit is recorded as the commit the files are from.
func ParsePolicy(commit string, files map[string][]byte) Policy {
	p := Policy{Commit: commit, Blobs: map[string]string{}}
	for _, path := range gitgrant.PolicyFiles {
		if data, ok := files[path]; ok {
			p.Blobs[path] = BlobHash(data)
		}
	}
	data, ok := files[gitgrant.ConfigPath]
	switch {
	case !ok:
		p.ConfigReason = gitgrant.ConfigPath + " does not exist"
	default:
		cfg, diags := schema.LoadConfig(gitgrant.ConfigPath, data)
		if cfg == nil || diags.HasErrors() {
			p.ConfigReason = fmt.Sprintf("%s is invalid (%d errors)", gitgrant.ConfigPath, countErrors(diags))
		} else {
			p.Config = cfg
		}
	}
	for _, loc := range codeowners.Locations {
		if data, ok := files[loc]; ok {
			p.Owners = codeowners.Parse(loc, data)
			break
		}
	}
	return p
}

// fingerprint names the policy state: its commit and blobs. Cached
// verdicts judged by a state that has changed since are judged again.
func (p Policy) fingerprint() string {
	paths := make([]string, 0, len(p.Blobs))
	for path := range p.Blobs {
		paths = append(paths, path)
	}
	sort.Strings(paths)
	var b strings.Builder
	b.WriteString(p.Commit)
	for _, path := range paths {
		fmt.Fprintf(&b, " %s=%s", path, p.Blobs[path])
	}
	return b.String()
}

// rawPolicy reads the policy files as they are at commit, memoised: the
// files of a commit never change. Like GitHub, it reads CODEOWNERS
// locations only up to the first that exists; Blobs holds the files read.
func (v *Verifier) rawPolicy(ctx context.Context, commit string) (*Policy, error) {
	v.mu.Lock()
	if p, ok := v.raw[commit]; ok {
		v.mu.Unlock()
		return p, nil
	}
	v.mu.Unlock()
	files := map[string][]byte{}
	for _, path := range append([]string{gitgrant.ConfigPath}, codeowners.Locations...) {
		data, err := v.read(ctx, commit, path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			continue
		case err != nil:
			return nil, fmt.Errorf("read %s at %s: %w", path, short(commit), err)
		}
		files[path] = data
		if path != gitgrant.ConfigPath {
			break
		}
	}
	p := ParsePolicy(commit, files)
	v.mu.Lock()
	if v.raw == nil {
		v.raw = map[string]*Policy{}
	}
	v.raw[commit] = &p
	v.mu.Unlock()
	return &p, nil
}

// policyAt is the policy that judges a pull request based at commit:
// the PolicySource's, or the raw files there.
func (v *Verifier) policyAt(ctx context.Context, commit string) (*Policy, error) {
	var p *Policy
	if v.Policy == nil {
		raw, err := v.rawPolicy(ctx, commit)
		if err != nil {
			return nil, err
		}
		p = raw
	} else {
		got, err := v.Policy.PolicyAt(ctx, commit)
		if err != nil {
			return nil, fmt.Errorf("policy in force at %s: %w", short(commit), err)
		}
		p = &got
	}
	if p.Owners != nil && len(p.Owners.Problems) > 0 {
		v.logger().Warn("CODEOWNERS lines skipped", "file", p.Owners.Path, "commit", p.Commit, "problems", p.Owners.Problems)
	}
	return p, nil
}

// judgedBy is how reasons name a policy: which commit was asked about,
// and which commit's files decided.
type judgedBy struct {
	policy *Policy
	// at names the commit asked about: "the base commit", "the commit it
	// was merged onto (abc)".
	at string
	// verified: the policy came from the PolicySource (the trusted policy
	// in force), not from the raw files at the commit.
	verified bool
}

// where is the phrase reasons name the policy with: "at the base commit",
// or for the verified policy "at the base commit's verified policy (from
// abc123)".
func (j *judgedBy) where() string {
	if j.verified {
		return fmt.Sprintf("at %s's verified policy (from %s)", j.at, short(j.policy.Commit))
	}
	return "at " + j.at
}

// noConfig is the reason for a policy without a usable gitgrant.yaml.
func (j *judgedBy) noConfig() string {
	if j.verified || strings.Contains(j.at, short(j.policy.Commit)) {
		return fmt.Sprintf("%s %s: no policy, no approval", j.policy.ConfigReason, j.where())
	}
	return fmt.Sprintf("%s %s (%s): no policy, no approval", j.policy.ConfigReason, j.where(), short(j.policy.Commit))
}

// noOwners is the reason nobody can approve path, or "" when someone
// can: there is no CODEOWNERS, or it names no owner for path.
func (j *judgedBy) noOwners(path string, owners []codeowners.Owner) string {
	switch {
	case j.policy.Owners == nil:
		return fmt.Sprintf("there is no CODEOWNERS file %s (.github/CODEOWNERS, CODEOWNERS or docs/CODEOWNERS), so nobody can approve", j.where())
	case len(owners) == 0:
		return fmt.Sprintf("%s %s names no owner for %s", j.policy.Owners.Path, j.where(), path)
	}
	return ""
}

// mark prefixes with where() the reasons that do not already say it, so
// that a reason found at a second policy says which one.
func (j *judgedBy) mark(reasons []string) []string {
	out := make([]string, 0, len(reasons))
	for _, r := range reasons {
		if !strings.Contains(r, j.where()) {
			r = j.where() + ": " + r
		}
		out = append(out, r)
	}
	return out
}

func countErrors(ds gitgrant.Diagnostics) int {
	n := 0
	for _, d := range ds {
		if d.Severity != gitgrant.SeverityWarning {
			n++
		}
	}
	return n
}

package trust

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/codeowners"
	"github.com/gitgrant/gitgrant/schema"
)

// The resolution: which candidate is trusted, walking main's policy
// changes newest first, each verdict memoised.

// policyAt is the trusted policy at first-parent depth d.
func (r *Resolver) policyAt(ctx context.Context, res *resolution, d int) (Policy, error) {
	cands := res.cands
	i, err := r.trustedIndex(ctx, res, d)
	if err != nil {
		return Policy{}, err
	}
	if i < 0 {
		return Policy{}, r.noTrust()
	}
	c := cands[i]
	v, _ := r.verdict(ctx, res, i)
	owners, err := r.owners(c.State)
	if err != nil {
		return Policy{}, err
	}
	p := Policy{Commit: c.Commit, State: c.State, How: v.How, Owners: owners}
	for j := i; j >= 0; j-- {
		if cands[j].Depth > d {
			continue
		}
		v, err := r.verdict(ctx, res, j)
		if err != nil {
			return Policy{}, err
		}
		if !v.Trusted {
			continue
		}
		cfg, problems := r.config(cands[j].State[gitgrant.ConfigPath])
		if cfg != nil {
			p.Config, p.ConfigCommit = cfg, cands[j].Commit
			break
		}
		p.Problems = append(p.Problems, fmt.Sprintf("the verified %s of %s cannot be used (%s), so the one before it configures gitgrant",
			gitgrant.ConfigPath, short(cands[j].Commit), strings.Join(problems, "; ")))
	}
	return p, nil
}

func (r *Resolver) noTrust() error {
	if r.Root == "" {
		return ErrNoRoot
	}
	return fmt.Errorf("trust: the trust root %q is not a commit of the main branch with policy files: %w", r.Root, ErrNoRoot)
}

// trustedIndex is the index of the newest trusted candidate at depth <= d,
// or -1.
func (r *Resolver) trustedIndex(ctx context.Context, res *resolution, d int) (int, error) {
	cands := res.cands
	for i := len(cands) - 1; i >= 0; i-- {
		if cands[i].Depth > d {
			continue
		}
		v, err := r.verdict(ctx, res, i)
		if err != nil {
			return -1, err
		}
		if v.Trusted {
			return i, nil
		}
	}
	return -1, nil
}

// rootIndex is the candidate the trust root names, or -1.
func (r *Resolver) rootIndex(ctx context.Context, cands []Candidate) (int, error) {
	switch r.Root {
	case "":
		return -1, nil
	case "first":
		if len(cands) == 0 {
			return -1, nil
		}
		return 0, nil
	}
	d, ok, err := r.Source.Depth(ctx, r.Root)
	if err != nil || !ok {
		return -1, err
	}
	root := -1
	for i, c := range cands {
		if c.Depth <= d {
			root = i
		}
	}
	return root, nil
}

// verdict decides candidate i, memoised by commit (for the question only
// when it may still change).
func (r *Resolver) verdict(ctx context.Context, res *resolution, i int) (Verdict, error) {
	c := res.cands[i]
	if v, ok := r.memo(c.Commit); ok {
		return v, nil
	}
	if v, ok := res.transient[c.Commit]; ok {
		return v, nil
	}
	v, err := r.decide(ctx, res, i)
	if err != nil {
		return Verdict{}, err
	}
	if v.Retry {
		res.transient[c.Commit] = v
	} else {
		r.mu.Lock()
		if r.verdicts == nil {
			r.verdicts = map[string]Verdict{}
		}
		r.verdicts[c.Commit] = v
		r.mu.Unlock()
	}
	return v, nil
}

func (r *Resolver) decide(ctx context.Context, res *resolution, i int) (Verdict, error) {
	c, root := res.cands[i], res.root
	switch {
	case i == root:
		return Verdict{Trusted: true, How: "trust root"}, nil
	case root < 0 || i < root:
		return Verdict{Reasons: []string{"it is older than the trust root, or there is no trust root"}}, nil
	}
	prior, err := r.policyAt(ctx, res, c.Depth-1)
	if err != nil {
		return Verdict{}, err
	}
	v, err := r.judge(ctx, c, prior)
	// A verdict judged against a prior policy that rests on a verdict
	// which may still change (GitHub could not be asked about an earlier
	// change) may change with it: it is not memoised either, or a short
	// outage would fix it for the life of the process.
	for j := i - 1; j >= 0 && err == nil; j-- {
		if _, ok := res.transient[res.cands[j].Commit]; ok {
			v.Retry = true
			break
		}
	}
	return v, err
}

// judge decides candidate c against the trusted policy before it.
func (r *Resolver) judge(ctx context.Context, c Candidate, prior Policy) (Verdict, error) {
	if c.State.Equal(prior.State) {
		return Verdict{Trusted: true, How: "restores the verified policy of " + short(prior.Commit)}, nil
	}
	changed := c.Changed()
	var carried []string
	for _, f := range c.State.Differs(prior.State) {
		if !contains(changed, f) {
			carried = append(carried, f)
		}
	}
	if len(carried) > 0 {
		return Verdict{Reasons: []string{fmt.Sprintf("%s carries content that was never verified (it differs from the verified policy of %s); revert that change through a pull request",
			strings.Join(carried, ", "), short(prior.Commit))}}, nil
	}
	if r.Verify == nil {
		return Verdict{Reasons: []string{"no GitHub credentials: policy changes cannot be verified"}}, nil
	}
	v, err := r.Verify(ctx, Change{Candidate: c, Files: changed, Prior: prior})
	if err != nil {
		// GitHub could not be asked: nothing is decided about this change
		// (it is not in force this time, and asked about again), and the
		// pass goes on with the policy verified before it (rules 7, 15).
		return Verdict{Retry: true, Unknown: true, Reasons: []string{"could not be verified now (asked again next pass): " + err.Error()}}, nil
	}
	return v, nil
}

func (r *Resolver) memo(commit string) (Verdict, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	v, ok := r.verdicts[commit]
	return v, ok
}

// config loads a gitgrant.yaml blob, memoised; nil with the problems when
// it is missing or invalid.
func (r *Resolver) config(blob string) (*gitgrant.Config, []string) {
	if blob == "" {
		return nil, []string{gitgrant.ConfigPath + " does not exist"}
	}
	r.mu.Lock()
	m, ok := r.configs[blob]
	r.mu.Unlock()
	if ok {
		return m.cfg, m.problems
	}
	data, err := r.Source.Blob(blob)
	if err != nil {
		// Not memoised: a read failure is not a property of the content.
		return nil, []string{err.Error()}
	}
	cfg, diags := schema.LoadConfig(gitgrant.ConfigPath, data)
	if cfg == nil || diags.HasErrors() {
		var problems []string
		for _, d := range diags {
			if d.Severity != gitgrant.SeverityWarning {
				problems = append(problems, d.String())
			}
		}
		sort.Strings(problems)
		cfg, m = nil, configMemo{problems: problems}
	} else {
		m = configMemo{cfg: cfg}
	}
	r.mu.Lock()
	if r.configs == nil {
		r.configs = map[string]configMemo{}
	}
	r.configs[blob] = m
	r.mu.Unlock()
	return m.cfg, m.problems
}

// owners parses the CODEOWNERS GitHub would use in a state: the first of
// .github/, the root and docs/ that exists.
func (r *Resolver) owners(s State) (*codeowners.File, error) {
	for _, p := range []string{".github/CODEOWNERS", "CODEOWNERS", "docs/CODEOWNERS"} {
		if blob := s[p]; blob != "" {
			key := p + "\x00" + blob
			r.mu.Lock()
			f, ok := r.owned[key]
			r.mu.Unlock()
			if ok {
				return f, nil // parsed files are read, never changed
			}
			data, err := r.Source.Blob(blob)
			if err != nil {
				return nil, fmt.Errorf("trust: reading %s: %w", p, err)
			}
			f = codeowners.Parse(p, data)
			r.mu.Lock()
			if r.owned == nil {
				r.owned = map[string]*codeowners.File{}
			}
			r.owned[key] = f
			r.mu.Unlock()
			return f, nil
		}
	}
	return nil, nil
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}

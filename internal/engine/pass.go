package engine

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/approval"
	"github.com/gitgrant/gitgrant/internal/gitrepo"
	"github.com/gitgrant/gitgrant/internal/trust"
	"github.com/gitgrant/gitgrant/providers"
	"github.com/gitgrant/gitgrant/reconciler"
	"github.com/gitgrant/gitgrant/schema"
)

// Pass is one planned pass, ready to show or to apply.
type Pass struct {
	At       time.Time
	Snapshot *gitrepo.Snapshot
	// Report validates the request files on main against the verified
	// configuration (Report.ConfigFile) and the request files (Report.Requests).
	Report *schema.Report
	// Config is the verified configuration in force (nil without one).
	Config *gitgrant.Config
	// Requests are the request files on main, one record each, by path.
	Requests map[string]*Request
	Plan     gitgrant.Plan
	// Trust says which policy is in force and which changes on main are
	// not verified (rule 13).
	Trust trust.Report
	// PolicyErr is set when no verified, valid policy exists: the pass then
	// only revokes memberships the ledger says have ended (rule 15).
	PolicyErr error
	// MainConfig holds the problems of gitgrant.yaml as it is on main,
	// when that version is not the one in force.
	MainConfig gitgrant.Diagnostics
	// Ledger is what gitgrant holds responsibility for, as recorded.
	Ledger gitgrant.Ledger
	// Observed are the members the providers listed, by role; a role that
	// could not be listed is absent (Plan.Unobserved). Nil for a pass from
	// Desired, which asks no provider.
	Observed reconciler.Observed
	// Problems are systems that could not be read (a provider, GitHub);
	// the pass went on without them, fail-closed.
	Problems []error
	// Stale is set when the remote could not be fetched: the pass plans
	// from the last fetched main branch, and applying it only revokes
	// (rule 7): a request removed early might not be visible yet, and
	// grants wait for a fresh read.
	Stale error

	open map[string]providers.Provider
	// seen are first sightings to record before anything is granted, by
	// key (gitrepo.SeenCommitKey, SeenFileKey).
	seen map[string]sighting
	// firstSeen are the recorded first sightings.
	firstSeen map[string]time.Time
	// configs are the verified configurations at commits, once a pass.
	configs map[string]*gitgrant.Config
	// markers are the recorded follow-up issue nonces, by request path
	// and commit.
	markers map[string]string
	// notices are what people were already told (gitrepo.NoticeKey);
	// told are the records of what this pass told.
	notices map[string]bool
	told    []gitrepo.Note
	// usage is, for every span looked at for sessions (usageKey), the
	// most sessions seen.
	usage map[string]int
	// desiredOnly marks a pass from Desired, which must never be applied:
	// its expired requests were not seen revoked.
	desiredOnly bool
}

// Request is one request file on main as a pass knows it: how it got
// there, whether it parsed, whether its approval verified, and what the
// plan made of it.
type Request struct {
	Path string
	// Provenance is how the file's content reached main, from git.
	Provenance gitrepo.Provenance
	// File is its parse and validation; File.Request is nil when invalid.
	File schema.FileReport
	// Evidence is its verified approval; nil when not verified (no GitHub,
	// GitHub down, or the file is invalid).
	Evidence *gitgrant.Evidence
	// VerifyErr is why verifying it failed; nil when it verified or was
	// not tried.
	VerifyErr error
	// Entry is what the plan made of it.
	Entry gitgrant.Entry
}

// request is the record of path; a request file that is not on main (a
// ledger line's, since removed) has one with only its path.
func (p *Pass) request(path string) *Request {
	if r, ok := p.Requests[path]; ok {
		return r
	}
	return &Request{Path: path}
}

// PullRequest is the pull request that brought path, as verified, else
// as git's message says; 0 when none is known.
func (r *Request) PullRequest() int {
	if r.Evidence != nil && r.Evidence.PullRequest != 0 {
		return r.Evidence.PullRequest
	}
	return r.Provenance.PullRequest
}

// Close releases the providers the pass opened.
func (p *Pass) Close() {
	for _, pr := range p.open {
		pr.Close()
	}
}

// ErrInvalidConfig says no verified, valid gitgrant.yaml exists: the pass
// grants nothing and revokes only memberships whose recorded window ended
// (rules 9 and 15). It is Pass.PolicyErr's sentinel.
var ErrInvalidConfig = errors.New("no verified, valid gitgrant.yaml: nothing is granted; only access whose window ended is revoked")

// Plan reads the main branch, verifies approvals and observes providers.
// offline marks a dry run without GitHub: no-approval roles are planned
// from git's commit time. A failure to read the repository is an error,
// never an empty plan; a missing or unverified policy is Pass.PolicyErr.
func (e *Engine) Plan(ctx context.Context, offline bool) (*Pass, error) {
	return e.plan(ctx, offline, true)
}

// Desired is Plan without asking any provider: each request's status and
// window, and NextChange, for reports such as `gitgrant status`. The pass
// holds no actions and no open providers; it is not meant to be applied.
func (e *Engine) Desired(ctx context.Context, offline bool) (*Pass, error) {
	return e.plan(ctx, offline, false)
}

func (e *Engine) plan(ctx context.Context, offline, observe bool) (*Pass, error) {
	now := e.now()
	if e.Repo.Remote() {
		e.Repo.Fetch(ctx) // a failure is Stale: plan from the last fetch
	}
	snap, err := e.Repo.ReadRevision("")
	if err != nil {
		return nil, err
	}
	if src := e.pinTrust(ctx, snap.Commit); src != nil {
		defer src.pin(gitrepo.ZeroHash)
	}
	provenance, err := e.Repo.Provenances(ctx)
	if err != nil {
		return nil, err
	}
	records, err := e.Repo.Records(ctx)
	if err != nil {
		return nil, err
	}
	p := &Pass{At: now, Snapshot: snap, Requests: map[string]*Request{},
		Ledger: records.Ledger(), firstSeen: records.FirstSeen(), seen: map[string]sighting{}, markers: markers(records), notices: records.Notices(),
		usage: usageSeen(records), open: map[string]providers.Provider{}, Stale: e.Repo.Stale()}
	if p.Stale != nil {
		p.Problems = append(p.Problems, fmt.Errorf("main is as of the last fetch, the remote could not be fetched now (only revocations are applied): %w", p.Stale))
	}

	cfgFile, err := e.policy(ctx, p)
	if err != nil {
		return nil, err
	}
	// A request on main is judged as of when it got there: one whose
	// `expires` has passed since is expired (revoked as an expiry, then
	// cleaned up), not invalid.
	at := make(map[string]time.Time, len(provenance))
	for path, pv := range provenance {
		if !pv.MergedAt.IsZero() {
			at[path] = pv.MergedAt
		}
	}
	p.Report = schema.Validate(cfgFile, snap.Requests, schema.Options{Now: now, Cache: e.Parsed, At: at})
	for _, f := range p.Report.Requests() {
		p.Requests[f.Path] = &Request{Path: f.Path, File: f, Provenance: provenance[f.Path]}
	}
	defer func() {
		for _, en := range p.Plan.Entries {
			if r, ok := p.Requests[en.Path]; ok {
				r.Entry = en
			}
		}
	}()
	if p.PolicyErr == nil && p.Report.Config == nil {
		p.PolicyErr = fmt.Errorf("%w: the verified version does not load", ErrInvalidConfig)
	}
	if p.PolicyErr != nil {
		p = e.expiryOnly(ctx, p, observe)
		p.Plan.Policy = p.policyInForce()
		return p, nil
	}
	p.Config = p.Report.Config
	if r, err := e.resolver(ctx); err == nil {
		p.Config = standingUnderPending(p.Config, p.Trust, r.ConfigAtState)
	}
	defer func() {
		p.Plan.Policy = p.policyInForce()
		// Wake up for reminders too (serve schedules on NextChange).
		if ts := reminderTimes(p); len(ts) > 0 && (p.Plan.NextChange.IsZero() || ts[0].Before(p.Plan.NextChange)) {
			p.Plan.NextChange = ts[0]
		}
	}()

	sources, invalid := e.sources(ctx, p)
	if observe {
		observed := e.observe(ctx, p)
		p.Observed = observed
		p.Config = canonicalPrincipals(p.Config, p.open)
		for i := range sources {
			sources[i].Base = canonical(sources[i].Base, p.open)
			sources[i].MergedOnto = canonical(sources[i].MergedOnto, p.open)
		}
		entries := e.evaluate(p, sources, invalid, offline)
		p.Plan = reconciler.Diff(p.Config, entries, observed, e.ledgerFor(p), now)
	} else {
		entries := e.evaluate(p, sources, invalid, offline)
		p.Plan = reconciler.Diff(p.Config, entries, reconciler.Observed{}, e.ledgerFor(p), now)
		p.Plan.Actions, p.Plan.Unobserved, p.Plan.Record = nil, nil, nil // nothing was observed, so nothing can be decided
		p.desiredOnly = true
	}
	return p, nil
}

// policy resolves the verified policy in force and returns its
// gitgrant.yaml to validate the requests by; with none, p.PolicyErr says
// why and the file is main's own (only its diagnostics are used).
func (e *Engine) policy(ctx context.Context, p *Pass) (*schema.File, error) {
	r, err := e.resolver(ctx)
	if err != nil {
		return nil, err
	}
	rep, err := r.At(ctx, p.Snapshot.Commit.String())
	switch {
	case errors.Is(err, trust.ErrNoRoot):
		p.PolicyErr = fmt.Errorf("%w: %v", ErrInvalidConfig, err)
		return p.Snapshot.Config, nil
	case err != nil:
		// GitHub could not be asked about a policy change: nothing is
		// decided about it; the pass goes on with what is verified.
		return nil, err
	}
	p.Trust = rep
	if rep.Policy.Config == nil {
		p.PolicyErr = fmt.Errorf("%w: %v", ErrInvalidConfig, rep.Policy.Problems)
		return p.Snapshot.Config, nil
	}
	blob := rep.Policy.State[gitgrant.ConfigPath]
	if configCommit := rep.Policy.ConfigCommit; configCommit != rep.Policy.Commit {
		// The newest verified gitgrant.yaml is invalid: an older one is in
		// force. Its content is at the older commit's state.
		cands, err := r.Source.Candidates(ctx)
		if err != nil {
			return nil, err
		}
		for _, c := range cands {
			if c.Commit == configCommit {
				blob = c.State[gitgrant.ConfigPath]
			}
		}
	}
	data, err := e.Repo.ReadBlob(gitrepo.ParseHash(blob))
	if err != nil {
		return nil, err
	}
	if main := p.Snapshot.Config; main != nil && approval.BlobHash(main.Data) != blob {
		if _, diags := schema.LoadConfig(gitgrant.ConfigPath, main.Data); diags.HasErrors() {
			p.MainConfig = diags
		}
	}
	return &schema.File{Path: gitgrant.ConfigPath, Data: data, Size: int64(len(data))}, nil
}

// sources verifies every valid request and gathers what Evaluate needs:
// evidence, and the verified configurations at the pull request's base and
// at the commit it was merged onto (rule 1: the stricter wins).
func (e *Engine) sources(ctx context.Context, p *Pass) ([]reconciler.Source, []gitgrant.Entry) {
	vctx, cancel := e.gitHubContext(ctx)
	defer cancel()
	var sources []reconciler.Source
	var invalid []gitgrant.Entry
	for _, f := range p.Report.Requests() {
		rec := p.Requests[f.Path]
		prov := rec.Provenance
		if f.Request == nil {
			invalid = append(invalid, gitgrant.Entry{Path: f.Path, Status: gitgrant.StatusRejected, Reasons: texts(f.Diagnostics),
				Grants: []gitgrant.DesiredGrant{}, Blob: prov.Blob.String(), Commit: prov.Commit.String()})
			continue
		}
		src := reconciler.Source{Request: f.Request, CommittedAt: prov.MergedAt, Blob: prov.Blob.String(), Commit: prov.Commit.String()}
		if e.Verifier != nil {
			in := e.input(f.Request, prov)
			in.FirstSeen = p.sightCommit(prov.Commit)
			ev, err := e.Verifier.Verify(vctx, in)
			if err != nil {
				// Rule 7: GitHub unreachable pauses grants; the request is
				// unverified, and its expiry still revokes.
				p.Problems = append(p.Problems, fmt.Errorf("verifying %s: %w", f.Path, err))
				rec.VerifyErr = err
			} else {
				src.Evidence = &ev
				rec.Evidence = &ev
				src.Base = e.configAt(ctx, p, ev.BaseCommit)
				src.MergedOnto = e.configAt(ctx, p, ev.MergedOnto)
			}
		}
		sources = append(sources, src)
	}
	return sources, invalid
}

// configAt is the verified configuration in force at commit, nil when
// commit is empty; a commit nothing verified covers judges with an empty
// configuration, which grants nothing.
func (e *Engine) configAt(ctx context.Context, p *Pass, commit string) *gitgrant.Config {
	if commit == "" {
		return nil
	}
	// Many requests share a base commit: the policy there is resolved
	// once a pass (and a problem with it said once).
	if cfg, ok := p.configs[commit]; ok {
		return cfg
	}
	cfg := e.resolveConfigAt(ctx, p, commit)
	if p.configs == nil {
		p.configs = map[string]*gitgrant.Config{}
	}
	p.configs[commit] = cfg
	return cfg
}

func (e *Engine) resolveConfigAt(ctx context.Context, p *Pass, commit string) *gitgrant.Config {
	r, err := e.resolver(ctx)
	if err != nil {
		p.Problems = append(p.Problems, err)
		return &gitgrant.Config{}
	}
	pol, err := r.PolicyAt(ctx, commit)
	if err != nil || pol.Config == nil {
		if err != nil && !errors.Is(err, trust.ErrNoRoot) {
			p.Problems = append(p.Problems, fmt.Errorf("the verified policy at %s: %w", short(commit), err))
		}
		return &gitgrant.Config{}
	}
	return pol.Config
}

// NoGitHubReason is why a request is unverified when gitgrant has no GitHub
// credentials: reconcile grants nothing that it cannot verify (rules 5, 7).
const NoGitHubReason = "reconcile needs GitHub credentials to verify the approval (GITHUB_TOKEN or a GitHub App, and GITHUB_REPOSITORY): nothing is granted until then; expiry still revokes"

func (e *Engine) evaluate(p *Pass, sources []reconciler.Source, invalid []gitgrant.Entry, offline bool) []gitgrant.Entry {
	entries := reconciler.Evaluate(p.Config, sources, p.At, reconciler.Options{Offline: offline && e.Verifier == nil})
	if e.Verifier == nil {
		for i := range entries {
			if entries[i].Status == gitgrant.StatusUnverified {
				entries[i].Reasons = []string{NoGitHubReason}
			}
		}
	}
	entries = append(entries, invalid...)
	sort.Slice(entries, func(i, j int) bool { return entries[i].Path < entries[j].Path })
	return entries
}

// sighting is a first sighting to record: what was seen, on which commit.
type sighting struct {
	on   gitrepo.Hash
	what gitrepo.Sighting
}

// sightCommit is when gitgrant first saw commit: the earliest recorded
// time, or now (then recorded before anything is granted). A forged later
// record never helps; a forged earlier one only shortens a window.
//
// A recorded sighting up to approval.MaxClockStepBack in the future of
// now is this reconciler's own, from before its clock stepped back: it
// stands, and no earlier one is recorded over it, which would make an
// honest commit date look like one from the future.
func (p *Pass) sightCommit(commit gitrepo.Hash) time.Time {
	key := gitrepo.SeenCommitKey(commit.String())
	if t, ok := p.firstSeen[key]; ok && t.After(p.At) && t.Sub(p.At) <= approval.MaxClockStepBack {
		return t
	}
	return p.sight(key, sighting{on: commit, what: gitrepo.Sighting{Commit: commit.String()}})
}

// sightFile is when gitgrant first saw a request file's content.
func (p *Pass) sightFile(path, blob string, commit gitrepo.Hash) time.Time {
	return p.sight(gitrepo.SeenFileKey(path, blob), sighting{on: commit, what: gitrepo.Sighting{Path: path, Blob: blob}})
}

func (p *Pass) sight(key string, s sighting) time.Time {
	if t, ok := p.firstSeen[key]; ok && !t.After(p.At) {
		return t // (a record of this very instant needs no second one)
	}
	if _, ok := p.seen[key]; !ok {
		p.seen[key] = s
	}
	return p.At
}

// ledgerFor is the ledger the diff may trust. A holding keeps its member
// only while the request content that backs it could still be in its
// window: never past the time gitgrant first saw that content plus the
// role's longest grant, and not at all for content gitgrant never saw. A
// record forged into refs/notes/gitgrant can therefore not keep access
// alive (rule 15).
func (e *Engine) ledgerFor(p *Pass) gitgrant.Ledger {
	out := make(gitgrant.Ledger, len(p.Ledger))
	for k, h := range p.Ledger {
		seen, ok := p.firstSeen[gitrepo.SeenFileKey(h.Request, h.Blob)]
		switch {
		case !ok:
			if h.End.After(p.At) {
				h.End = p.At
			}
		case p.Config != nil:
			if limit := p.Config.EffectiveMaxDuration(h.Provider, h.Role); limit > 0 {
				if cap := seen.Add(time.Duration(limit)); h.End.After(cap) {
					h.End = cap
				}
			}
		}
		out[k] = h
	}
	return out
}

// expiryOnly is the pass without a usable policy: no request is trusted,
// nothing is granted or reported as drift, and the ledger's memberships
// whose recorded window ended are revoked, through providers opened with
// the verified settings they were granted under.
func (e *Engine) expiryOnly(ctx context.Context, p *Pass, observe bool) *Pass {
	ended := gitgrant.Ledger{}
	for k, h := range e.ledgerFor(p) {
		if !h.End.After(p.At) {
			ended[k] = h
		}
	}
	p.Config = &gitgrant.Config{Providers: map[string]gitgrant.ProviderConfig{}}
	p.Plan = reconciler.Diff(p.Config, nil, reconciler.Observed{}, ended, p.At)
	if !observe {
		p.Plan.Actions = nil
		p.desiredOnly = true
	}
	return p
}

func canonical(cfg *gitgrant.Config, open map[string]providers.Provider) *gitgrant.Config {
	if cfg == nil {
		return nil
	}
	return canonicalPrincipals(cfg, open)
}

// markers are the follow-up issue nonces recorded for emergencies, by
// request path and commit.
func markers(rs *gitrepo.Records) map[string]string {
	out := map[string]string{}
	for commit, recs := range rs.ByCommit() {
		for _, r := range recs {
			if r.Marker != "" && r.Request != "" {
				out[r.Request+"@"+commit.String()] = r.Marker
			}
		}
	}
	return out
}

// policyInForce is what the plan says about the policy it was made under.
func (p *Pass) policyInForce() *gitgrant.PolicyInForce {
	pol := p.Trust.Policy
	out := &gitgrant.PolicyInForce{Commit: pol.Commit, How: pol.How, Problems: pol.Problems}
	if pol.ConfigCommit != pol.Commit {
		out.ConfigCommit = pol.ConfigCommit
	}
	for _, u := range p.Trust.Unverified {
		out.Unverified = append(out.Unverified, gitgrant.UnverifiedPolicy{Commit: u.Commit, Files: u.Files, Reasons: u.Reasons})
	}
	if p.PolicyErr != nil {
		out.Error = p.PolicyErr.Error()
	}
	return out
}

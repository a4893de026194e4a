package report

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/audit"
	"github.com/gitgrant/gitgrant/internal/gitrepo"
	"github.com/gitgrant/gitgrant/schema"
)

// Options tune Build.
type Options struct {
	Filter
	// Now judges what has ended and bounds the period; zero: time.Now().
	Now time.Time
	// IndexDir is the audit index (audit.IndexDir); empty reads the whole
	// history.
	IndexDir string
	Logger   *slog.Logger
}

// Build computes the report of the repository's main branch from git
// alone: the audit trail, gitgrant's records and the verified policy
// states it recorded.
func Build(ctx context.Context, r *gitrepo.Repo, o Options) (*Report, error) {
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	trail, err := audit.Build(ctx, r, audit.Options{Now: o.Now, IndexDir: o.IndexDir, Logger: o.Logger})
	if err != nil {
		return nil, err
	}
	recs, err := r.Records(ctx) // cached: audit.Build read them
	if err != nil {
		return nil, err
	}
	in := input{trail: trail, records: recs.All(), byCommit: recs.ByCommit(), now: o.Now, filter: o.Filter}
	for _, n := range in.records {
		if (n.Record.Event == gitrepo.EventGranted || n.Record.Event == gitrepo.EventExtended) && len(n.Record.Holdings) > 0 {
			in.ledger = n.Record.RecordedAt
			break
		}
	}
	if in.policy, in.source, err = policies(r, recs); err != nil {
		return nil, err
	}
	return compute(in), nil
}

// policies are the configurations in force over time: the policy states
// gitgrant recorded as verified, each from when it recorded it; without
// any, gitgrant.yaml at the head of main (unverified, and said so).
func policies(r *gitrepo.Repo, recs *gitrepo.Records) ([]policyPoint, string, error) {
	configs := map[string]*gitgrant.Config{} // by blob
	load := func(blob string) (*gitgrant.Config, error) {
		if cfg, ok := configs[blob]; ok {
			return cfg, nil
		}
		data, err := r.ReadBlob(gitrepo.ParseHash(blob))
		if err != nil {
			return nil, err
		}
		cfg, _ := schema.LoadConfig(gitgrant.ConfigPath, data) // nil when invalid: no standing members known
		configs[blob] = cfg
		return cfg, nil
	}
	var out []policyPoint
	for _, pt := range recs.PolicyTrusts() {
		blob := pt.State[gitgrant.ConfigPath]
		if blob == "" {
			continue
		}
		cfg, err := load(blob)
		if err != nil {
			return nil, "", fmt.Errorf("reading the verified %s of %s: %w", gitgrant.ConfigPath, pt.Commit, err)
		}
		if cfg != nil {
			out = append(out, policyPoint{At: pt.RecordedAt, Commit: pt.Commit, Config: cfg})
		}
	}
	if len(out) > 0 {
		sort.SliceStable(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
		return out, "trusted", nil
	}
	snap, err := r.ReadRevision("")
	if err != nil {
		return nil, "", err
	}
	if snap.Config == nil {
		return nil, "none", nil
	}
	cfg, _ := schema.LoadConfig(snap.Config.Path, snap.Config.Data)
	if cfg == nil {
		return nil, "none", nil
	}
	return []policyPoint{{Commit: snap.Commit.String(), Config: cfg}}, "head", nil
}

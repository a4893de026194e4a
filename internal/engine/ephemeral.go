package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/gitrepo"
	"github.com/gitgrant/gitgrant/internal/handoff"
	"github.com/gitgrant/gitgrant/internal/render"
	"github.com/gitgrant/gitgrant/providers"
	"github.com/gitgrant/gitgrant/reconciler"
)

// nameAccounts gives every ephemeral account the plan creates its login:
// the provider's prefix for the role and a random suffix. The name is in
// the ledger line recorded before the account is created (rule 14), so a
// crash between the two leaves a line to drop, and an account created
// without a line is drift.
func (e *Engine) nameAccounts(p *Pass) error {
	for i, a := range p.Plan.Actions {
		if a.Op != gitgrant.OpGrant || a.Holding == nil || a.Holding.Owner == "" || a.Principal != "" {
			continue
		}
		if _, ok := p.open[a.Provider].(providers.Ephemeral); !ok {
			return fmt.Errorf("provider %s cannot make ephemeral accounts", a.Provider)
		}
		pc := p.Config.Providers[a.Provider]
		name := gitgrant.NewAccountName(pc.RoleAccountPrefix(a.Role))
		h := *a.Holding
		h.Principal = name
		p.Plan.Actions[i].Principal, p.Plan.Actions[i].Holding = name, &h
	}
	return nil
}

// checkRecipients drops the creation of accounts whose owner has no key to
// seal the secret to: the request is refused with the fix, and nothing is
// created that nobody could use.
func (e *Engine) checkRecipients(ctx context.Context, p *Pass) (map[string][]string, error) {
	keys := map[string][]string{}
	var errs []error
	var keep []gitgrant.Action
	for _, a := range p.Plan.Actions {
		if a.Op != gitgrant.OpGrant || a.Holding == nil || a.Holding.Owner == "" {
			keep = append(keep, a)
			continue
		}
		login := p.request(a.Request).Entry.Beneficiary()
		if _, ok := keys[login]; !ok {
			if e.GitHub == nil {
				errs = append(errs, fmt.Errorf("%s: ephemeral accounts need GitHub credentials to hand the secret over; nothing was created", a.Request))
				continue
			}
			_, id, _ := p.Config.Identity(login)
			ks, err := handoff.KeysFor(ctx, login, id, e.GitHub)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w; nothing was created", a.Request, err))
				if errors.Is(err, handoff.ErrNoKey) {
					e.tell(ctx, p, a.Request, "no-key", []string{err.Error()})
				}
				continue
			}
			keys[login] = ks
		}
		keep = append(keep, a)
	}
	p.Plan.Actions = keep
	return keys, errors.Join(errs...)
}

// handOff delivers the secret of every account created, and drops an
// account whose secret could not be delivered: no one could use it, and
// the next pass makes a new one.
func (e *Engine) handOff(ctx context.Context, p *Pass, res *reconciler.Result, keys map[string][]string) error {
	var errs []error
	for i, o := range res.Outcomes {
		if o.Err != nil || o.Account == nil {
			continue
		}
		acc := *o.Account
		res.Outcomes[i].Account = nil // the secret leaves memory with this pass
		req := p.request(o.Action.Request)
		// Under the GitHub budget: a GitHub that hangs must not hold the
		// pass, and the revocations after it (rule 15; simulation,
		// PostgreSQL seeds 1, 4 and 5).
		gctx, cancel := e.gitHubContext(ctx)
		err := e.deliver(gctx, req, o.Action, acc, keys[req.Entry.Beneficiary()])
		cancel()
		if err == nil {
			continue
		}
		errs = append(errs, fmt.Errorf("handing account %s over for %s: %w; it was dropped, the next pass makes a new one", acc.Name, req.Path, err))
		if ep, ok := p.open[o.Action.Provider].(providers.Ephemeral); ok {
			pc := p.Config.Providers[o.Action.Provider]
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), pc.Timeout())
			derr := ep.DropAccount(dctx, o.Action.Role, acc.Name)
			cancel()
			if derr != nil {
				errs = append(errs, derr)
				continue
			}
			// Its line ends like a revocation.
			res.Outcomes[i].Err = err
		}
	}
	return errors.Join(errs...)
}

// deliver seals acc to keys and posts it on the request's pull request
// (docs/ephemeral.md): the account's name and host in clear, the secret
// only inside the armor.
func (e *Engine) deliver(ctx context.Context, req *Request, a gitgrant.Action, acc providers.Account, keys []string) error {
	pr := req.PullRequest()
	if pr == 0 {
		return errors.New("no pull request to hand the secret over on")
	}
	n, err := handoff.NewNotice(handoff.Payload{Account: acc, Provider: a.Provider, Role: a.Role,
		Repository: e.GitHub.Owner + "/" + e.GitHub.Repo, PullRequest: pr, Request: req.Path, Until: a.Expires}, req.Entry.Beneficiary(), keys)
	if err != nil {
		return err
	}
	return e.GitHub.Comment(ctx, pr, n.Markdown(pr))
}

// tell says, once per request content and notice, why a merged request
// grants nothing (render.Refused); the record that it was said goes out
// with the pass's other records.
func (e *Engine) tell(ctx context.Context, p *Pass, path, notice string, reasons []string) {
	r := p.request(path)
	pr := r.PullRequest()
	blob := r.Provenance.Blob.String()
	if e.GitHub == nil || pr == 0 || p.notices[gitrepo.NoticeKey(path, blob, notice)] {
		return
	}
	var body strings.Builder
	render.Refused(&body, path, reasons)
	if err := e.GitHub.Comment(ctx, pr, body.String()); err != nil {
		return // said next pass
	}
	p.notices[gitrepo.NoticeKey(path, blob, notice)] = true
	p.told = append(p.told, gitrepo.Note{Commit: r.Provenance.Commit, Record: gitrepo.NoteRecord{Event: gitrepo.EventNotified, Request: path, Blob: blob, Notice: notice}})
}

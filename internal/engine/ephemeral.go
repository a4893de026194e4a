package engine

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/providers"
	"github.com/gitgrant/gitgrant/reconciler"
)

// Handoff hands an ephemeral account's secret to the person it was made
// for (docs/ephemeral.md): sealed to their public SSH keys and posted on
// the request's pull request. The secret goes nowhere else.
type Handoff interface {
	// Recipients are the public SSH keys to seal to for the GitHub login
	// (the identity's own list first, else GitHub's). None is an error
	// that says how to add one.
	Recipients(ctx context.Context, login string, id gitgrant.Identity) ([]string, error)
	// Deliver seals acc to recipients and posts it on pull request pr of
	// request path.
	Deliver(ctx context.Context, pr int, path string, acc providers.Account, recipients []string) error
}

// accountSuffix is the random part of an account's name: 10 characters of
// [a-z0-9], about 51 bits.
const accountSuffix = 10

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
		ep, ok := p.open[a.Provider].(providers.Ephemeral)
		if !ok {
			return fmt.Errorf("provider %s cannot make ephemeral accounts", a.Provider)
		}
		suffix, err := randomName(accountSuffix)
		if err != nil {
			return err
		}
		name := ep.AccountPrefix(a.Role) + suffix
		h := *a.Holding
		h.Principal = name
		p.Plan.Actions[i].Principal, p.Plan.Actions[i].Holding = name, &h
	}
	return nil
}

func randomName(n int) (string, error) {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b), nil
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
			if e.Handoff == nil {
				errs = append(errs, fmt.Errorf("%s: ephemeral accounts need GitHub credentials to hand the secret over; nothing was created", a.Request))
				continue
			}
			_, id, _ := p.Config.Identity(login)
			ks, err := e.Handoff.Recipients(ctx, login, id)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w; nothing was created", a.Request, err))
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
		err := errors.New("no pull request to hand the secret over on")
		if pr := req.PullRequest(); pr != 0 {
			err = e.Handoff.Deliver(ctx, pr, req.Path, acc, keys[req.Entry.Beneficiary()])
		}
		if err == nil {
			continue
		}
		errs = append(errs, fmt.Errorf("handing account %s over for %s: %w; it was dropped, the next pass makes a new one", acc.Name, req.Path, err))
		if ep, ok := p.open[o.Action.Provider].(providers.Ephemeral); ok {
			if derr := ep.DropAccount(context.WithoutCancel(ctx), o.Action.Role, acc.Name); derr != nil {
				errs = append(errs, derr)
				continue
			}
			// Its line ends like a revocation.
			res.Outcomes[i].Err = err
		}
	}
	return errors.Join(errs...)
}

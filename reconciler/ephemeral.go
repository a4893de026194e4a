package reconciler

import (
	"fmt"
	"sort"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/providers"
)

// ephemeral plans a role granted through accounts created for each
// request (mode: ephemeral). Members are account logins; a desire names
// the owner's principal. A desired window with no account of its request
// content gets a new one (Action.Principal is empty: the engine names it
// and records it before creating it); an account the ledger holds but
// nothing desires is dropped; an account with the role's prefix that the
// ledger does not explain is dropped as drift, whatever the drift mode
// (it can only come from a crash between creation and record, or from
// someone else).
func (d *differ) ephemeral(key RoleKey, members []providers.Member, listed bool) {
	present := make(map[string]bool, len(members))
	for _, m := range members {
		present[m.Principal] = true
	}
	pc := d.cfg.Providers[key.Provider]
	target := pc.RoleTarget(key.Role)
	var holdings []gitgrant.Holding
	for _, h := range d.ledger {
		if h.Provider == key.Provider && h.Role == key.Role {
			holdings = append(holdings, h)
		}
	}
	sort.Slice(holdings, func(i, j int) bool { return holdings[i].Principal < holdings[j].Principal })
	used := map[string]bool{}
	for k, want := range d.desired {
		if k.Provider != key.Provider || k.Role != key.Role {
			continue
		}
		e := want.entry
		var match *gitgrant.Holding
		for i, h := range holdings {
			if h.Owner == k.Principal && h.Request == e.Path && h.Blob == e.Blob && !used[h.Principal] {
				match = &holdings[i]
				break
			}
		}
		if match != nil && (!listed || present[match.Principal]) {
			used[match.Principal] = true
			if !match.End.Equal(want.end) {
				line := *match
				line.End = want.end
				d.record = append(d.record, line)
			}
			continue
		}
		if match != nil {
			// Its account is gone from the target (dropped by hand, or by
			// the target's own expiry): end the line, make a new account.
			used[match.Principal] = true
			d.revokes = append(d.revokes, holdingAction(*match, gitgrant.CauseWithdrawn,
				fmt.Sprintf("account %s is gone from %s/%s; a new one replaces it", match.Principal, key.Provider, key.Role)))
		}
		if !listed {
			continue // a new account waits until the role can be listed
		}
		line := gitgrant.Holding{MemberKey: gitgrant.MemberKey{Provider: key.Provider, Role: key.Role}, Owner: k.Principal, Target: target,
			End: want.end, Request: e.Path, Blob: e.Blob, Commit: e.Commit, GrantedAt: d.now, Emergency: e.Emergency}
		d.grants = append(d.grants, gitgrant.Action{Op: gitgrant.OpGrant, Provider: key.Provider, Role: key.Role,
			Expires: want.end, Reason: fmt.Sprintf("%s: a new account for %s until %s", e.Path, k.Principal, stamp(want.end)), Request: e.Path, Holding: &line})
	}
	for _, h := range holdings {
		if used[h.Principal] {
			continue
		}
		if d.keptEphemeral(h) {
			used[h.Principal] = true
			continue
		}
		d.revokeHolding(h)
		used[h.Principal] = true
	}
	if !listed {
		return
	}
	for _, m := range members {
		// Matched across the whole ledger: two providers on one server
		// with the same prefix list each other's accounts.
		if d.accountNames()[m.Principal] {
			continue
		}
		k := gitgrant.MemberKey{Provider: key.Provider, Role: key.Role, Principal: m.Principal}
		d.revokes = append(d.revokes, revoke(k, gitgrant.CauseDrift, "drift: an ephemeral account no ledger line explains (a crash between creating and recording it, or made outside gitgrant)", ""))
	}
}

// accountNames are the logins of every ephemeral account in the ledger.
func (d *differ) accountNames() map[string]bool {
	if d.accounts == nil {
		d.accounts = map[string]bool{}
		for _, h := range d.ledger {
			if h.Owner != "" {
				d.accounts[h.Principal] = true
			}
		}
	}
	return d.accounts
}

// keptEphemeral: an unverified entry keeps the account gitgrant created
// for the same file content until the end it was created for.
func (d *differ) keptEphemeral(h gitgrant.Holding) bool {
	e := d.byPath[h.Request]
	if e == nil || e.Status != gitgrant.StatusUnverified || e.Blob != h.Blob || !h.End.After(d.now) {
		return false
	}
	for _, g := range e.Grants {
		if g.Provider == h.Provider && g.Role == h.Role && g.Principal == h.Owner {
			return true
		}
	}
	return false
}

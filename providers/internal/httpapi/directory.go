package httpapi

import (
	"context"
	"errors"
	"strings"

	"github.com/gitgrant/gitgrant/providers"
)

// Directory is what the providers of a group directory (Okta, Entra ID)
// share: a role is a group, named by its id; a principal is a user the
// directory finds by name. Grant and Revoke resolve both through it, so
// that the rules about names hold alike in each: a grant refuses a user
// the directory spells otherwise, and a name no user has holds nothing.
type Directory[U any] struct {
	Client *Client
	// Provider is the provider entry's name; System names the directory
	// in errors ("Okta").
	Provider, System string
	// Group returns the id of role's group.
	Group func(role string) (string, error)
	// Lookup finds the user principal names; one that does not exist is
	// providers.ErrNotFound.
	Lookup func(ctx context.Context, principal string) (U, error)
	// Name is the user's name as Members reports it.
	Name func(U) string
}

// ForGrant returns the group of g.Role and the user g.Principal names,
// who must be spelt as the directory spells them: Members reports that
// spelling, and a grant under another would look like drift to revoke.
func (d *Directory[U]) ForGrant(ctx context.Context, g providers.Grant) (gid string, u U, err error) {
	if gid, err = d.Group(g.Role); err != nil {
		return "", u, err
	}
	if u, err = d.Lookup(ctx, g.Principal); err != nil {
		return "", u, d.Client.FailOn("grant", g.Role, gid, err)
	}
	if got := d.Name(u); got != g.Principal {
		return "", u, providers.SpeltOtherwise(d.Provider, g.Role, d.System, g.Principal, got)
	}
	return gid, u, nil
}

// Holder finds the user principal names, for a revoke from role's group
// gid. held is false when no user has that name: none exists, or the
// directory resolved a short name or an id to someone named otherwise.
// Such a principal holds nothing, so there is nothing to revoke.
func (d *Directory[U]) Holder(ctx context.Context, role, gid, principal string) (u U, held bool, err error) {
	u, err = d.Lookup(ctx, principal)
	switch {
	case errors.Is(err, providers.ErrNotFound):
		return u, false, nil
	case err != nil:
		return u, false, d.Client.FailOn("revoke", role, gid, err)
	}
	return u, strings.EqualFold(d.Name(u), principal), nil
}

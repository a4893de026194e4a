package google

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/providers"
	"github.com/gitgrant/gitgrant/providers/internal/httpapi"
)

const (
	// Cloud Identity serves at most 500 memberships a page in the FULL
	// view, which carries each role's expiryDetail.
	membershipsPageSize = 500
	// visibleWait bounds how long a grant waits for a new membership to
	// show up in lookups and lists (Cloud Identity is eventually
	// consistent), so that the next Members sees what was granted.
	visibleWait = 10 * time.Second
)

// groupCache remembers the resource name (groups/ID) of each group email.
type groupCache struct {
	mu    sync.Mutex
	names map[string]string
}

type membershipRole struct {
	Name         string        `json:"name"`
	ExpiryDetail *expiryDetail `json:"expiryDetail,omitempty"`
}

type expiryDetail struct {
	ExpireTime string `json:"expireTime,omitempty"`
}

type entityKey struct {
	ID        string `json:"id"`
	Namespace string `json:"namespace,omitempty"`
}

type membership struct {
	Name               string           `json:"name,omitempty"`
	PreferredMemberKey entityKey        `json:"preferredMemberKey"`
	Roles              []membershipRole `json:"roles"`
	Type               string           `json:"type,omitempty"`
}

// group returns the group resource name of role's target: groups/ID as
// written, or looked up once by the group's email.
func (p *Provider) group(ctx context.Context, role string) (string, error) {
	target, err := p.declared(role)
	if err != nil {
		return "", err
	}
	if groupIDPattern.MatchString(target) {
		return target, nil
	}
	if !validEmail(target) {
		return "", p.invalid("a group email or groups/ID", target)
	}
	p.groups.mu.Lock()
	name, ok := p.groups.names[target]
	p.groups.mu.Unlock()
	if ok {
		return name, nil
	}
	var resp struct {
		Name string `json:"name"`
	}
	err = p.do(ctx, http.MethodGet, "v1/groups:lookup", url.Values{"groupKey.id": {target}}, nil, &resp)
	if err != nil {
		return "", p.api.Fail(fmt.Sprintf("role %s: look up group %s", role, target), err)
	}
	if !groupIDPattern.MatchString(resp.Name) {
		return "", fmt.Errorf("provider %s: role %s: Cloud Identity answered group name %q", p.cfg.Name, role, resp.Name)
	}
	p.groups.mu.Lock()
	p.groups.names[target] = resp.Name
	p.groups.mu.Unlock()
	return resp.Name, nil
}

func (p *Provider) member(principal string) error {
	if !validEmail(principal) {
		return p.invalid("an email address of a user, group or service account", principal)
	}
	return nil
}

// groupMembers lists the group's direct memberships, every page, with
// the expiry of each one's MEMBER role.
func (p *Provider) groupMembers(ctx context.Context, role string) ([]providers.Member, error) {
	group, err := p.group(ctx, role)
	if err != nil {
		return nil, err
	}
	var members []providers.Member
	q := url.Values{"view": {"FULL"}, "pageSize": {fmt.Sprint(membershipsPageSize)}}
	for {
		var page struct {
			Memberships   []membership `json:"memberships"`
			NextPageToken string       `json:"nextPageToken"`
		}
		if err := p.do(ctx, http.MethodGet, "v1/"+group+"/memberships", q, nil, &page); err != nil {
			return nil, p.api.Fail(fmt.Sprintf("list members of %s (%s)", role, group), err)
		}
		for _, m := range page.Memberships {
			until, err := memberExpiry(m)
			if err != nil {
				return nil, fmt.Errorf("provider %s: role %s: membership %s: %w", p.cfg.Name, role, m.Name, err)
			}
			members = append(members, providers.Member{Principal: m.PreferredMemberKey.ID, Until: until})
		}
		if page.NextPageToken == "" {
			break
		}
		q.Set("pageToken", page.NextPageToken)
	}
	return providers.SortMembers(members), nil
}

func memberExpiry(m membership) (time.Time, error) {
	for _, r := range m.Roles {
		if r.Name == "MEMBER" && r.ExpiryDetail != nil && r.ExpiryDetail.ExpireTime != "" {
			t, err := time.Parse(time.RFC3339Nano, r.ExpiryDetail.ExpireTime)
			if err != nil {
				return time.Time{}, fmt.Errorf("expireTime %q is not RFC 3339", r.ExpiryDetail.ExpireTime)
			}
			return t, nil
		}
	}
	return time.Time{}, nil
}

func memberRole(until time.Time) membershipRole {
	r := membershipRole{Name: "MEMBER"}
	if !until.IsZero() {
		r.ExpiryDetail = &expiryDetail{ExpireTime: until.UTC().Format(time.RFC3339Nano)}
	}
	return r
}

// groupGrant creates the membership with its expiry; an existing one gets
// the new expiry (or none, for a standing grant) instead.
func (p *Provider) groupGrant(ctx context.Context, g providers.Grant) error {
	group, err := p.group(ctx, g.Role)
	if err != nil {
		return err
	}
	if err := p.member(g.Principal); err != nil {
		return err
	}
	what := fmt.Sprintf("grant %s (%s) to %s", g.Role, group, g.Principal)
	body := membership{PreferredMemberKey: entityKey{ID: g.Principal}, Roles: []membershipRole{memberRole(g.Until)}}
	deadline := p.clock.Now().Add(visibleWait)
	for {
		err = p.do(ctx, http.MethodPost, "v1/"+group+"/memberships", nil, body, nil)
		switch code, status := statusOf(err); {
		case err == nil:
			return p.waitVisible(ctx, group, g.Principal, what)
		case code == http.StatusConflict || status == "ALREADY_EXISTS":
			err = p.updateExpiry(ctx, group, g, what)
			if !errors.Is(err, errMembershipGone) {
				return err
			}
			// It exists, yet the lookup does not see it yet (or it was
			// just deleted): try again shortly, within bounds.
			if p.clock.Now().After(deadline) {
				return providers.Unavailable(p.system(), what, errors.New("the membership exists but cannot be looked up; Cloud Identity is still catching up"))
			}
			if err := gitgrant.Sleep(ctx, p.clock, 250*time.Millisecond); err != nil {
				return err
			}
		case code == http.StatusNotFound || (code == http.StatusBadRequest && memberMissing(err)):
			// The group was found a moment ago: it is the member that
			// Google does not know.
			return fmt.Errorf("provider %s: %s: Google knows no user, group or service account %q: %w", p.cfg.Name, what, g.Principal, providers.ErrNotFound)
		default:
			return p.api.Fail(what, err)
		}
	}
}

func memberMissing(err error) bool {
	var e *httpapi.StatusError
	if !errors.As(err, &e) {
		return false
	}
	m := strings.ToLower(e.Message)
	return strings.Contains(m, "member") && (strings.Contains(m, "not found") || strings.Contains(m, "cannot find") || strings.Contains(m, "does not exist"))
}

// updateExpiry sets the expiry of an existing membership's MEMBER role.
// A field mask without a value clears it: a standing grant.
func (p *Provider) updateExpiry(ctx context.Context, group string, g providers.Grant, what string) error {
	name, err := p.lookupMembership(ctx, group, g.Principal)
	if errors.Is(err, errMembershipGone) {
		return err
	}
	if err != nil {
		return p.api.Fail(what, err)
	}
	body := map[string]any{"updateRolesParams": []any{map[string]any{
		"fieldMask":      "expiryDetail.expireTime",
		"membershipRole": memberRole(g.Until),
	}}}
	if err := p.do(ctx, http.MethodPost, "v1/"+name+":modifyMembershipRoles", nil, body, nil); err != nil {
		return p.api.Fail(what+": update the expiry", err)
	}
	return nil
}

var errMembershipGone = errors.New("no such membership")

// lookupMembership finds the membership of member in group by its key.
func (p *Provider) lookupMembership(ctx context.Context, group, member string) (string, error) {
	var resp struct {
		Name string `json:"name"`
	}
	err := p.do(ctx, http.MethodGet, "v1/"+group+"/memberships:lookup", url.Values{"memberKey.id": {member}}, nil, &resp)
	if code, _ := statusOf(err); code == http.StatusNotFound {
		return "", errMembershipGone
	}
	if err != nil {
		return "", err
	}
	if !strings.HasPrefix(resp.Name, group+"/memberships/") || strings.ContainsAny(resp.Name[len(group):], "?#") {
		return "", fmt.Errorf("cloud identity answered membership name %q", resp.Name)
	}
	return resp.Name, nil
}

// waitVisible waits, pausing for at most visibleWait in all, until a new
// membership can be looked up, so that Members right after a grant sees
// it. Google has created it either way: a slow index is logged, not failed.
func (p *Provider) waitVisible(ctx context.Context, group, member, what string) error {
	shown, err := httpapi.Settle(ctx, p.clock, httpapi.Backoff{First: 100 * time.Millisecond, Max: 2 * time.Second}, visibleWait, func() (bool, error) {
		_, err := p.lookupMembership(ctx, group, member)
		if errors.Is(err, errMembershipGone) {
			return false, nil
		}
		return err == nil, err
	})
	if err != nil {
		return p.api.Fail(what+": read back", err)
	}
	if !shown {
		p.log.WarnContext(ctx, "google: a new membership is not visible yet", "group", group, "member", member)
	}
	return nil
}

// groupRevoke deletes the membership; none is success.
func (p *Provider) groupRevoke(ctx context.Context, role, principal string) error {
	group, err := p.group(ctx, role)
	if err != nil {
		return err
	}
	if err := p.member(principal); err != nil {
		return err
	}
	what := fmt.Sprintf("revoke %s (%s) from %s", role, group, principal)
	name, err := p.lookupMembership(ctx, group, principal)
	if errors.Is(err, errMembershipGone) {
		return nil
	}
	if err != nil {
		return p.api.Fail(what, err)
	}
	return p.api.Fail(what, httpapi.Gone(p.do(ctx, http.MethodDelete, "v1/"+name, nil, nil, nil)))
}

// groupCheck resolves every managed group and reads one page of it.
func (p *Provider) groupCheck(ctx context.Context) error {
	return providers.CheckRoles(p.cfg, providers.RoleChecks{Role: func(role string) error {
		group, err := p.group(ctx, role)
		if err != nil {
			return err
		}
		q := url.Values{"pageSize": {"1"}}
		if err := p.do(ctx, http.MethodGet, "v1/"+group+"/memberships", q, nil, nil); err != nil {
			return p.api.Fail(fmt.Sprintf("read members of %s (%s)", role, group), err)
		}
		return nil
	}})
}

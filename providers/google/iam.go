package google

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/providers"
	"github.com/gitgrant/gitgrant/providers/internal/httpapi"
)

const (
	// titlePrefix marks the bindings gitgrant wrote; only those are ever
	// changed, apart from removing a revoked member from an
	// unconditional binding.
	titlePrefix = "gitgrant:"
	// maxTitleLen is IAM's limit on a condition title.
	maxTitleLen = 100
	// maxConflictRetries bounds read-modify-write rounds lost to
	// concurrent writers of the same policy.
	maxConflictRetries = 10
)

// revocableOnly are members Members may report (someone bound them by
// hand) that gitgrant never grants but can remove as drift: a domain,
// a deleted account, everyone, federated identities.
var revocableOnly = regexp.MustCompile(`^(domain:[a-z0-9.-]{1,253}|deleted:(user|group|serviceAccount):[A-Za-z0-9._+'@-]{1,254}\?uid=[0-9]{1,30}|allUsers|allAuthenticatedUsers|principal(Set)?://[A-Za-z0-9._:@/-]{1,400})$`)

var expiryExpr = regexp.MustCompile(`^request\.time < timestamp\("([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z)"\)$`)

type binding struct {
	Role      string     `json:"role"`
	Members   []string   `json:"members"`
	Condition *condition `json:"condition,omitempty"`
}

type condition struct {
	Title       string `json:"title,omitempty"`
	Description string `json:"description,omitempty"`
	Expression  string `json:"expression"`
	Location    string `json:"location,omitempty"`
}

// policy is an IAM policy as read, keeping every field gitgrant does not
// know (auditConfigs, etag) for the write back.
type policy struct {
	raw      map[string]json.RawMessage
	bindings []binding
}

// expiry returns when a binding's condition ends access, if it is a plain
// request.time expiry.
func (c *condition) expiry() (time.Time, bool) {
	if c == nil {
		return time.Time{}, false
	}
	m := expiryExpr.FindStringSubmatch(c.Expression)
	if m == nil {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, m[1])
	return t, err == nil
}

// ours reports whether gitgrant wrote the binding.
func (b *binding) ours() bool {
	if b.Condition == nil || !strings.HasPrefix(b.Condition.Title, titlePrefix) {
		return false
	}
	_, ok := b.Condition.expiry()
	return ok
}

// iamRole returns role's IAM role name.
func (p *Provider) iamRole(role string) (string, error) {
	target, err := p.declared(role)
	if err != nil {
		return "", err
	}
	if len(target) > maxNameLen || !iamRolePattern.MatchString(target) {
		return "", p.invalid("an IAM role such as roles/viewer", target)
	}
	return target, nil
}

// iamMember turns a principal into an IAM member: a plain email is a
// user; groups and service accounts are written with their prefix.
func (p *Provider) iamMember(principal string) (string, error) {
	kind, email, found := strings.Cut(principal, ":")
	switch {
	case !found && validEmail(principal):
		return "user:" + principal, nil
	case found && (kind == "group" || kind == "serviceAccount") && validEmail(email):
		return principal, nil
	case found && kind == "user" && validEmail(email):
		return "", fmt.Errorf("provider %s: write the user %q without its user: prefix (Members reports users as plain emails): %w", p.cfg.Name, email, providers.ErrInvalidName)
	}
	return "", p.invalid("an email, group:EMAIL or serviceAccount:EMAIL", principal)
}

func principalOf(member string) string {
	if email, ok := strings.CutPrefix(member, "user:"); ok {
		return email
	}
	return member
}

func (p *Provider) getPolicy(ctx context.Context) (*policy, error) {
	var raw map[string]json.RawMessage
	body := map[string]any{"options": map[string]any{"requestedPolicyVersion": 3}}
	if err := p.do(ctx, http.MethodPost, "v3/"+p.resource+":getIamPolicy", nil, body, &raw); err != nil {
		return nil, err
	}
	pol := &policy{raw: raw}
	if b, ok := raw["bindings"]; ok {
		if err := json.Unmarshal(b, &pol.bindings); err != nil {
			return nil, fmt.Errorf("reading the policy's bindings: %w", err)
		}
	}
	return pol, nil
}

func (p *Provider) setPolicy(ctx context.Context, pol *policy) error {
	raw := map[string]json.RawMessage{}
	for k, v := range pol.raw {
		raw[k] = v
	}
	b, err := json.Marshal(pol.bindings)
	if err != nil {
		return err
	}
	raw["bindings"] = b
	// Conditions need version 3; the etag (kept from the read) makes a
	// concurrent change fail instead of being overwritten.
	raw["version"] = json.RawMessage("3")
	return p.do(ctx, http.MethodPost, "v3/"+p.resource+":setIamPolicy", nil, map[string]any{"policy": raw}, nil)
}

// modify runs a read-modify-write of the policy: change edits the
// bindings and reports whether it changed anything. A write that loses to
// a concurrent one (409 ABORTED, the etag moved) is redone on a fresh read.
func (p *Provider) modify(ctx context.Context, change func(*policy) bool) error {
	select {
	case p.iamLock <- struct{}{}:
		defer func() { <-p.iamLock }()
	case <-ctx.Done():
		return ctx.Err()
	}
	for attempt := 1; ; attempt++ {
		pol, err := p.getPolicy(ctx)
		if err != nil {
			return err
		}
		if !change(pol) {
			return nil
		}
		err = p.setPolicy(ctx, pol)
		code, status := statusOf(err)
		if err == nil || (code != http.StatusConflict && status != "ABORTED") || attempt == maxConflictRetries {
			return err
		}
		p.log.InfoContext(ctx, "google: the IAM policy changed meanwhile; reading it again", "resource", p.resource, "attempt", attempt)
		backoff := time.Duration(50*attempt)*time.Millisecond + rand.N(100*time.Millisecond)
		if err := gitgrant.Sleep(ctx, p.clock, backoff); err != nil {
			return err
		}
	}
}

func (p *Provider) iamMembers(ctx context.Context, role string) ([]providers.Member, error) {
	target, err := p.iamRole(role)
	if err != nil {
		return nil, err
	}
	pol, err := p.getPolicy(ctx)
	if err != nil {
		return nil, p.api.Fail(fmt.Sprintf("list members of %s (%s on %s)", role, target, p.resource), err)
	}
	now := p.clock.Now()
	until := map[string]time.Time{} // zero: no expiry
	for _, b := range pol.bindings {
		if b.Role != target {
			continue
		}
		end, expires := b.Condition.expiry()
		if expires && !end.After(now) {
			continue // expired: Google no longer grants it
		}
		for _, m := range b.Members {
			pr := principalOf(m)
			prev, seen := until[pr]
			switch {
			case !seen:
				until[pr] = end
			case prev.IsZero() || !expires:
				until[pr] = time.Time{}
			case end.After(prev):
				until[pr] = end
			}
		}
	}
	members := make([]providers.Member, 0, len(until))
	for pr, u := range until {
		members = append(members, providers.Member{Principal: pr, Until: u})
	}
	return providers.SortMembers(members), nil
}

// iamGrant binds the member to the role with a condition that ends at
// g.Until, replacing an earlier gitgrant binding of theirs; a standing
// grant (zero Until) joins the role's unconditional binding.
func (p *Provider) iamGrant(ctx context.Context, g providers.Grant) error {
	target, err := p.iamRole(g.Role)
	if err != nil {
		return err
	}
	member, err := p.iamMember(g.Principal)
	if err != nil {
		return err
	}
	what := fmt.Sprintf("grant %s (%s on %s) to %s", g.Role, target, p.resource, g.Principal)
	now := p.clock.Now()
	err = p.modify(ctx, func(pol *policy) bool {
		if g.Until.IsZero() {
			changed := dropOurs(pol, target, member, now)
			return addUnconditional(pol, target, member) || changed
		}
		want := expiryCondition(member, g.Until)
		for _, b := range pol.bindings {
			if b.Role == target && b.ours() && *b.Condition == *want && slices.Contains(b.Members, member) && len(b.Members) == 1 {
				dropped := dropOurs(pol, target, member, now, b.Condition.Expression)
				return dropped
			}
		}
		dropOurs(pol, target, member, now)
		pol.bindings = append(pol.bindings, binding{Role: target, Members: []string{member}, Condition: want})
		return true
	})
	switch code, _ := statusOf(err); {
	case err == nil:
		return nil
	case code == http.StatusBadRequest && principalMissing(err):
		return fmt.Errorf("provider %s: %s: Google knows no such principal: %w", p.cfg.Name, what, providers.ErrNotFound)
	}
	return p.api.Fail(what, err)
}

func principalMissing(err error) bool {
	var e *httpapi.StatusError
	return errors.As(err, &e) && strings.Contains(strings.ToLower(e.Message), "does not exist")
}

func expiryCondition(member string, until time.Time) *condition {
	title := titlePrefix + principalOf(member)
	if len(title) > maxTitleLen {
		title = title[:maxTitleLen]
	}
	at := until.UTC().Format(time.RFC3339Nano)
	return &condition{
		Title:       title,
		Description: "Temporary access granted by gitgrant; Google ends it at " + at + ".",
		Expression:  `request.time < timestamp("` + at + `")`,
	}
}

// dropOurs removes member from gitgrant's bindings of role (except one
// whose expression is keep), and drops gitgrant's bindings of role that
// are empty or expired: they are ours, and grant nothing any more.
func dropOurs(pol *policy, role, member string, now time.Time, keep ...string) bool {
	changed := false
	out := pol.bindings[:0]
	for _, b := range pol.bindings {
		if b.Role != role || !b.ours() {
			out = append(out, b)
			continue
		}
		if !slices.Contains(keep, b.Condition.Expression) {
			if i := slices.Index(b.Members, member); i >= 0 {
				b.Members = slices.Delete(slices.Clone(b.Members), i, i+1)
				changed = true
			}
		}
		if end, _ := b.Condition.expiry(); len(b.Members) == 0 || !end.After(now) {
			changed = true
			continue
		}
		out = append(out, b)
	}
	pol.bindings = out
	return changed
}

func addUnconditional(pol *policy, role, member string) bool {
	for i, b := range pol.bindings {
		if b.Role == role && b.Condition == nil {
			if slices.Contains(b.Members, member) {
				return false
			}
			pol.bindings[i].Members = append(slices.Clone(b.Members), member)
			return true
		}
	}
	pol.bindings = append(pol.bindings, binding{Role: role, Members: []string{member}})
	return true
}

// iamRevoke removes the member from gitgrant's bindings of the role and
// from its unconditional binding. A binding with a condition gitgrant did
// not write is left alone, and reported: only a person can judge it.
func (p *Provider) iamRevoke(ctx context.Context, role, principal string) error {
	target, err := p.iamRole(role)
	if err != nil {
		return err
	}
	member, err := p.iamMember(principal)
	if err != nil && revocableOnly.MatchString(principal) {
		member, err = principal, nil
	}
	if err != nil {
		return err
	}
	what := fmt.Sprintf("revoke %s (%s on %s) from %s", role, target, p.resource, principal)
	now := p.clock.Now()
	var foreign []string
	err = p.modify(ctx, func(pol *policy) bool {
		foreign = nil
		changed := dropOurs(pol, target, member, now)
		out := pol.bindings[:0]
		for _, b := range pol.bindings {
			if b.Role == target && slices.Contains(b.Members, member) {
				if b.Condition != nil {
					if end, ok := b.Condition.expiry(); !ok || end.After(now) {
						foreign = append(foreign, b.Condition.Title)
					}
				} else {
					b.Members = slices.DeleteFunc(slices.Clone(b.Members), func(m string) bool { return m == member })
					changed = true
					if len(b.Members) == 0 {
						continue
					}
				}
			}
			out = append(out, b)
		}
		pol.bindings = out
		return changed
	})
	if err != nil {
		return p.api.Fail(what, err)
	}
	if len(foreign) > 0 {
		return fmt.Errorf("provider %s: %s: still bound through conditions gitgrant did not write (titles %q); remove those bindings by hand or list the principal as standing", p.cfg.Name, what, foreign)
	}
	return nil
}

// iamCheck asks testIamPermissions whether gitgrant may read and set the
// resource's policy, and fails naming what is missing.
func (p *Provider) iamCheck(ctx context.Context) error {
	kind, _, _ := strings.Cut(p.resource, "/")
	want := []string{"resourcemanager." + kind + ".getIamPolicy", "resourcemanager." + kind + ".setIamPolicy"}
	var resp struct {
		Permissions []string `json:"permissions"`
	}
	err := p.do(ctx, http.MethodPost, "v3/"+p.resource+":testIamPermissions", nil, map[string]any{"permissions": want}, &resp)
	if err != nil {
		return p.api.Fail("test permissions on "+p.resource, err)
	}
	var missing []string
	for _, w := range want {
		if !slices.Contains(resp.Permissions, w) {
			missing = append(missing, w)
		}
	}
	if len(missing) > 0 {
		return &gitgrant.SystemError{System: p.system(), Op: "check " + p.resource,
			Err: fmt.Errorf("the credentials lack %s", strings.Join(missing, ", "))}
	}
	return nil
}

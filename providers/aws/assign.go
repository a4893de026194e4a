package aws

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/identitystore"
	"github.com/aws/aws-sdk-go-v2/service/identitystore/document"
	istypes "github.com/aws/aws-sdk-go-v2/service/identitystore/types"
	"github.com/aws/aws-sdk-go-v2/service/ssoadmin"
	"github.com/aws/aws-sdk-go-v2/service/ssoadmin/types"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/providers"
)

var (
	// Identity Center user names: letters, digits and +=,.@-_ (at most
	// 128). Emails fit too.
	userPattern = regexp.MustCompile(`^[A-Za-z0-9+=,.@_-]{1,128}$`)
	// Group display names may hold spaces; nothing that is not printable.
	groupPattern = regexp.MustCompile(`^group:([A-Za-z0-9+=,.@_-][A-Za-z0-9 +=,.@_-]{0,127})$`)
	// A principal known only by id: Members reports a user or group the
	// directory no longer describes (deleted) this way, so it can still be
	// revoked.
	idPattern = regexp.MustCompile(`^(user|group)-id:([A-Za-z0-9-]{1,47})$`)
)

// resolve finds the principal's id in the identity store: a user by user
// name (or primary email with match_by: email), a group written as
// group:<display name>. Results are cached for the provider's lifetime.
func (p *Provider) resolve(ctx context.Context, name string) (principal, error) {
	p.mu.Lock()
	r, ok := p.byName[name]
	p.mu.Unlock()
	if ok {
		return r, nil
	}
	var attr, value string
	switch m := groupPattern.FindStringSubmatch(name); {
	case m != nil:
		r.kind, attr, value = string(types.PrincipalTypeGroup), "displayName", m[1]
	case idPattern.MatchString(name):
		m := idPattern.FindStringSubmatch(name)
		return principal{id: m[2], kind: strings.ToUpper(m[1])}, nil
	case userPattern.MatchString(name):
		r.kind, attr, value = string(types.PrincipalTypeUser), "userName", name
		if p.matchBy == MatchEmail {
			attr = "emails.value"
		}
	default:
		return principal{}, fmt.Errorf("provider %s: %q is not a user name, group:<display name> or user-id:/group-id:<id>: %w", p.cfg.Name, name, providers.ErrInvalidName)
	}
	id := &istypes.AlternateIdentifierMemberUniqueAttribute{Value: istypes.UniqueAttribute{
		AttributePath: aws.String(attr), AttributeValue: document.NewLazyDocument(value),
	}}
	err := p.call(ctx, func() error {
		if r.kind == string(types.PrincipalTypeGroup) {
			out, err := p.ids.GetGroupId(ctx, &identitystore.GetGroupIdInput{IdentityStoreId: &p.store, AlternateIdentifier: id})
			if err == nil {
				r.id = aws.ToString(out.GroupId)
			}
			return err
		}
		out, err := p.ids.GetUserId(ctx, &identitystore.GetUserIdInput{IdentityStoreId: &p.store, AlternateIdentifier: id})
		if err == nil {
			r.id = aws.ToString(out.UserId)
		}
		return err
	})
	if errorCode(err) == "ResourceNotFoundException" {
		return principal{}, fmt.Errorf("provider %s: identity store %s has no %s with %s %q: %w", p.cfg.Name, p.store, strings.ToLower(r.kind), attr, value, providers.ErrNotFound)
	}
	if err != nil {
		return principal{}, p.wrap("look up "+name, err)
	}
	p.remember(name, r)
	return r, nil
}

func (p *Provider) remember(name string, r principal) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.byName[name] = r
	p.byID[r.id] = name
}

// nameOf turns an assignment's principal id into the name Grant takes.
func (p *Provider) nameOf(ctx context.Context, id string, kind types.PrincipalType) (string, error) {
	p.mu.Lock()
	name, ok := p.byID[id]
	p.mu.Unlock()
	if ok {
		return name, nil
	}
	err := p.call(ctx, func() error {
		if kind == types.PrincipalTypeGroup {
			out, err := p.ids.DescribeGroup(ctx, &identitystore.DescribeGroupInput{IdentityStoreId: &p.store, GroupId: &id})
			if err == nil {
				name = "group:" + aws.ToString(out.DisplayName)
			}
			return err
		}
		out, err := p.ids.DescribeUser(ctx, &identitystore.DescribeUserInput{IdentityStoreId: &p.store, UserId: &id})
		if err == nil {
			name = aws.ToString(out.UserName)
			if p.matchBy == MatchEmail {
				name = primaryEmail(out.Emails)
			}
		}
		return err
	})
	valid := groupPattern.MatchString(name) || (kind != types.PrincipalTypeGroup && userPattern.MatchString(name))
	if errorCode(err) == "ResourceNotFoundException" || (err == nil && !valid) {
		// Deleted from the directory, without the attribute matched by,
		// or named with characters gitgrant does not accept: still an
		// assignment, reported and revocable by id.
		return strings.ToLower(string(kind)) + "-id:" + id, nil
	}
	if err != nil {
		return "", p.wrap("describe principal "+id, err)
	}
	p.remember(name, principal{id: id, kind: string(kind)})
	return name, nil
}

func primaryEmail(emails []istypes.Email) string {
	for _, e := range emails {
		if e.Primary {
			return aws.ToString(e.Value)
		}
	}
	if len(emails) > 0 {
		return aws.ToString(emails[0].Value)
	}
	return ""
}

// Members lists who holds the permission set in the account, every page.
func (p *Provider) Members(ctx context.Context, role string) ([]providers.Member, error) {
	ps, account, err := p.target(role)
	if err != nil {
		return nil, err
	}
	what := fmt.Sprintf("list members of %s (%s in %s)", role, ps, account)
	in := &ssoadmin.ListAccountAssignmentsInput{InstanceArn: &p.instance, AccountId: &account, PermissionSetArn: &ps, MaxResults: aws.Int32(listPageSize)}
	var members []providers.Member
	for {
		var out *ssoadmin.ListAccountAssignmentsOutput
		err := p.call(ctx, func() error {
			var err error
			out, err = p.admin.ListAccountAssignments(ctx, in)
			return err
		})
		if err != nil {
			return nil, p.wrap(what, err)
		}
		for _, a := range out.AccountAssignments {
			name, err := p.nameOf(ctx, aws.ToString(a.PrincipalId), a.PrincipalType)
			if err != nil {
				return nil, err
			}
			members = append(members, providers.Member{Principal: name})
		}
		if aws.ToString(out.NextToken) == "" {
			break
		}
		in.NextToken = out.NextToken
	}
	return providers.SortMembers(members), nil
}

// Grant assigns the permission set in the account to the principal and
// waits until Identity Center reports the assignment done. g.Until is
// not enforced by AWS: the reconciler revokes.
func (p *Provider) Grant(ctx context.Context, g providers.Grant) error {
	ps, account, err := p.target(g.Role)
	if err != nil {
		return err
	}
	who, err := p.resolve(ctx, g.Principal)
	if err != nil {
		return err
	}
	what := fmt.Sprintf("grant %s (%s in %s) to %s", g.Role, ps, account, g.Principal)
	unlock, err := p.lock(ctx, ps+"|"+account+"|"+who.id)
	if err != nil {
		return err
	}
	defer unlock()
	in := &ssoadmin.CreateAccountAssignmentInput{
		InstanceArn: &p.instance, PermissionSetArn: &ps, TargetId: &account, TargetType: types.TargetTypeAwsAccount,
		PrincipalId: &who.id, PrincipalType: types.PrincipalType(who.kind),
	}
	return p.assign(ctx, what, func() (*types.AccountAssignmentOperationStatus, error) {
		out, err := p.admin.CreateAccountAssignment(ctx, in)
		if err != nil {
			return nil, err
		}
		return out.AccountAssignmentCreationStatus, nil
	}, func(id string) (*types.AccountAssignmentOperationStatus, error) {
		out, err := p.admin.DescribeAccountAssignmentCreationStatus(ctx, &ssoadmin.DescribeAccountAssignmentCreationStatusInput{
			InstanceArn: &p.instance, AccountAssignmentCreationRequestId: &id})
		if err != nil {
			return nil, err
		}
		return out.AccountAssignmentCreationStatus, nil
	})
}

// Revoke deletes the assignment and waits until it is gone. A principal
// the directory does not know, or an assignment that does not exist, is
// success.
func (p *Provider) Revoke(ctx context.Context, role, name string) error {
	ps, account, err := p.target(role)
	if err != nil {
		return err
	}
	who, err := p.resolve(ctx, name)
	if errors.Is(err, providers.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	what := fmt.Sprintf("revoke %s (%s in %s) from %s", role, ps, account, name)
	unlock, err := p.lock(ctx, ps+"|"+account+"|"+who.id)
	if err != nil {
		return err
	}
	defer unlock()
	in := &ssoadmin.DeleteAccountAssignmentInput{
		InstanceArn: &p.instance, PermissionSetArn: &ps, TargetId: &account, TargetType: types.TargetTypeAwsAccount,
		PrincipalId: &who.id, PrincipalType: types.PrincipalType(who.kind),
	}
	err = p.assign(ctx, what, func() (*types.AccountAssignmentOperationStatus, error) {
		out, err := p.admin.DeleteAccountAssignment(ctx, in)
		if err != nil {
			return nil, err
		}
		return out.AccountAssignmentDeletionStatus, nil
	}, func(id string) (*types.AccountAssignmentOperationStatus, error) {
		out, err := p.admin.DescribeAccountAssignmentDeletionStatus(ctx, &ssoadmin.DescribeAccountAssignmentDeletionStatusInput{
			InstanceArn: &p.instance, AccountAssignmentDeletionRequestId: &id})
		if err != nil {
			return nil, err
		}
		return out.AccountAssignmentDeletionStatus, nil
	})
	if errors.Is(err, errNoAssignment) {
		return nil
	}
	return err
}

var errNoAssignment = errors.New("no such assignment")

// lock serialises this provider's own changes of one assignment, so that
// they do not run into each other as ConflictExceptions.
func (p *Provider) lock(ctx context.Context, key string) (func(), error) {
	for {
		p.mu.Lock()
		busy, ok := p.busy[key]
		if !ok {
			done := make(chan struct{})
			p.busy[key] = done
			p.mu.Unlock()
			return func() {
				p.mu.Lock()
				delete(p.busy, key)
				p.mu.Unlock()
				close(done)
			}, nil
		}
		p.mu.Unlock()
		select {
		case <-busy:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// assign starts an asynchronous assignment change and polls its status
// until SUCCEEDED or FAILED, within maxWait. A ConflictException (another
// change of the same assignment is under way) is waited out the same way.
func (p *Provider) assign(ctx context.Context, what string, start func() (*types.AccountAssignmentOperationStatus, error),
	describe func(requestID string) (*types.AccountAssignmentOperationStatus, error)) error {
	deadline := p.clock.Now().Add(p.maxWait)
	delay := 100 * time.Millisecond
	pause := func() error {
		if p.clock.Now().Add(delay).After(deadline) {
			return providers.Unavailable(p.system(), what, fmt.Errorf("not done after %v; Identity Center may still finish it", p.maxWait))
		}
		err := gitgrant.Sleep(ctx, p.clock, delay)
		delay = min(2*delay, 2*time.Second)
		return err
	}
	var status *types.AccountAssignmentOperationStatus
	for {
		err := p.call(ctx, func() error {
			var err error
			status, err = start()
			return err
		})
		if errorCode(err) == "ConflictException" {
			if err := pause(); err != nil {
				return err
			}
			continue
		}
		if errorCode(err) == "ResourceNotFoundException" && strings.HasPrefix(what, "revoke") {
			return errNoAssignment
		}
		if err != nil {
			return p.wrap(what, err)
		}
		break
	}
	delay = 100 * time.Millisecond
	for status.Status == types.StatusValuesInProgress {
		if err := pause(); err != nil {
			return err
		}
		id := aws.ToString(status.RequestId)
		err := p.call(ctx, func() error {
			var err error
			status, err = describe(id)
			return err
		})
		if err != nil {
			return p.wrap(what+": read the status of request "+id, err)
		}
	}
	if status.Status == types.StatusValuesFailed {
		reason := aws.ToString(status.FailureReason)
		if strings.HasPrefix(what, "revoke") && assignmentMissing(reason) {
			return errNoAssignment
		}
		return &gitgrant.SystemError{System: p.system(), Op: what, Err: fmt.Errorf("identity center request %s failed: %s", aws.ToString(status.RequestId), reason)}
	}
	return nil
}

func assignmentMissing(reason string) bool {
	r := strings.ToLower(reason)
	return strings.Contains(r, "not found") || strings.Contains(r, "does not exist") || strings.Contains(r, "no assignment")
}

// Check lists one page of each managed role's assignments, which proves
// the credentials, the instance and every permission set and account,
// without changing anything.
func (p *Provider) Check(ctx context.Context) error {
	return providers.CheckRoles(p.cfg, providers.RoleChecks{Last: providers.Unreachable, Role: func(role string) error {
		ps, account, err := p.target(role)
		if err != nil {
			return err
		}
		err = p.call(ctx, func() error {
			_, err := p.admin.ListAccountAssignments(ctx, &ssoadmin.ListAccountAssignmentsInput{
				InstanceArn: &p.instance, AccountId: &account, PermissionSetArn: &ps, MaxResults: aws.Int32(1)})
			return err
		})
		if err != nil {
			return p.wrap(fmt.Sprintf("read assignments of %s (%s in %s)", role, ps, account), err)
		}
		return nil
	}})
}

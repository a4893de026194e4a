package entra

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gitgrant/gitgrant/providers"
	"github.com/gitgrant/gitgrant/providers/internal/httpapi"
)

// PIM for Groups: a grant is an active ("assigned") membership whose
// schedule ends at the grant's Until, so that Entra removes the member by
// itself even if gitgrant never runs again.
const (
	pimRequests  = "identityGovernance/privilegedAccess/group/assignmentScheduleRequests"
	pimInstances = "identityGovernance/privilegedAccess/group/assignmentScheduleInstances"
)

// instance is an active assignment (privilegedAccessGroupAssignmentScheduleInstance).
type instance struct {
	ID          string     `json:"id"`
	PrincipalID string     `json:"principalId"`
	GroupID     string     `json:"groupId"`
	AccessID    string     `json:"accessId"`
	MemberType  string     `json:"memberType"`
	EndDateTime *time.Time `json:"endDateTime"`
}

// end is when Entra ends the assignment; zero for no end.
func (in instance) end() time.Time {
	if in.EndDateTime == nil {
		return time.Time{}
	}
	return *in.EndDateTime
}

// assignments lists the active member assignments of the group, of one
// principal when uid is set. Owner assignments and memberships inherited
// through another group are not gitgrant's.
func (p *Provider) assignments(ctx context.Context, gid, uid string) ([]instance, error) {
	filter := fmt.Sprintf("groupId eq '%s'", gid)
	if uid != "" {
		filter += fmt.Sprintf(" and principalId eq '%s'", uid)
	}
	all, err := list[instance](ctx, p, pimInstances+"?$filter="+strings.ReplaceAll(url.QueryEscape(filter), "+", "%20"))
	if err != nil {
		return nil, err
	}
	p.pimAnswered.Store(true)
	return slices.DeleteFunc(all, func(in instance) bool {
		return in.AccessID != "member" || (in.MemberType != "" && in.MemberType != "direct")
	}), nil
}

func sameEnd(a, b time.Time) bool {
	if a.IsZero() || b.IsZero() {
		return a.IsZero() == b.IsZero()
	}
	return a.Sub(b).Abs() < time.Second
}

// grantPIM creates the assignment, or moves the end of an existing one,
// and waits until the schedule shows the end asked for.
func (p *Provider) grantPIM(ctx context.Context, g providers.Grant, gid, uid string) error {
	cur, err := p.assignments(ctx, gid, uid)
	if err != nil {
		return p.api.FailOn("grant", g.Role, gid, err)
	}
	action := "adminAssign"
	if len(cur) > 0 {
		if sameEnd(cur[0].end(), g.Until) {
			return nil
		}
		action = "adminUpdate"
	}
	err = p.request(ctx, action, gid, uid, g.Until)
	// Someone else (another gitgrant, an admin) got there between the
	// read and the request: do the other one.
	switch {
	case action == "adminAssign" && isCode(err, "RoleAssignmentExists"):
		err = p.request(ctx, "adminUpdate", gid, uid, g.Until)
	case action == "adminUpdate" && isCode(err, "RoleAssignmentDoesNotExist"):
		err = p.request(ctx, "adminAssign", gid, uid, g.Until)
	}
	if err != nil {
		return p.api.FailOn("grant", g.Role, gid, err)
	}
	return p.confirm(ctx, g.Role, gid, func() (bool, error) {
		cur, err := p.assignments(ctx, gid, uid)
		return slices.ContainsFunc(cur, func(in instance) bool { return sameEnd(in.end(), g.Until) }), err
	})
}

// removePIM ends the principal's active assignment; none is success.
func (p *Provider) removePIM(ctx context.Context, gid, uid string) error {
	err := p.request(ctx, "adminRemove", gid, uid, time.Time{})
	if isCode(err, "RoleAssignmentDoesNotExist") {
		return nil
	}
	return err
}

// request posts an assignment schedule request.
func (p *Provider) request(ctx context.Context, action, gid, uid string, until time.Time) error {
	body := map[string]any{
		"accessId":      "member",
		"principalId":   uid,
		"groupId":       gid,
		"action":        action,
		"justification": p.justification,
	}
	if action != "adminRemove" {
		expiration := map[string]any{"type": "noExpiration"}
		if !until.IsZero() {
			expiration = map[string]any{"type": "afterDateTime", "endDateTime": until.UTC().Format(time.RFC3339)}
		}
		body["scheduleInfo"] = map[string]any{
			"startDateTime": p.clock.Now().UTC().Format(time.RFC3339),
			"expiration":    expiration,
		}
	}
	var res struct {
		Status string `json:"status"`
	}
	if err := p.do(ctx, http.MethodPost, pimRequests, body, &res); err != nil {
		return err
	}
	p.pimAnswered.Store(true)
	switch res.Status {
	case "Provisioned", "Granted", "PendingProvisioning", "ScheduleCreated", "PendingScheduleCreation", "Revoked", "":
		return nil
	}
	return &httpapi.StatusError{Status: http.StatusConflict, Code: "Request" + res.Status,
		Message: fmt.Sprintf("PIM answered the %s request with status %s", action, res.Status)}
}

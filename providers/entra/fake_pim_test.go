package entra

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"
)

// handlePIMRequest applies adminAssign, adminUpdate and adminRemove of
// member assignments at once (status Provisioned), as PIM does for an
// admin's active assignment without approval.
func (f *fakeGraph) handlePIMRequest(w http.ResponseWriter, r *http.Request) {
	var req struct {
		AccessID      string `json:"accessId"`
		PrincipalID   string `json:"principalId"`
		GroupID       string `json:"groupId"`
		Action        string `json:"action"`
		Justification string `json:"justification"`
		ScheduleInfo  *struct {
			StartDateTime time.Time `json:"startDateTime"`
			Expiration    struct {
				Type        string     `json:"type"`
				EndDateTime *time.Time `json:"endDateTime"`
			} `json:"expiration"`
		} `json:"scheduleInfo"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.AccessID != "member" {
		writeGraphError(w, http.StatusBadRequest, "InvalidRequest", "The request is invalid.")
		return
	}
	g, ok := f.groups[req.GroupID]
	if !ok {
		notFound(w, req.GroupID)
		return
	}
	u, ok := f.users[req.PrincipalID]
	if !ok {
		notFound(w, req.PrincipalID)
		return
	}
	cur, exists := g.pim[u.id]
	switch req.Action {
	case "adminAssign", "adminUpdate":
		if req.Action == "adminAssign" && exists {
			writeGraphError(w, http.StatusBadRequest, "RoleAssignmentExists", "The Role assignment already exists.")
			return
		}
		if req.Action == "adminUpdate" && !exists {
			writeGraphError(w, http.StatusBadRequest, "RoleAssignmentDoesNotExist", "The Role assignment does not exist.")
			return
		}
		si := req.ScheduleInfo
		if si == nil || si.StartDateTime.IsZero() {
			writeGraphError(w, http.StatusBadRequest, "InvalidScheduleInfo", "scheduleInfo is required.")
			return
		}
		var end time.Time
		switch si.Expiration.Type {
		case "noExpiration":
		case "afterDateTime":
			if si.Expiration.EndDateTime == nil || !si.Expiration.EndDateTime.After(f.Clock.Now()) {
				writeGraphError(w, http.StatusBadRequest, "InvalidScheduleInfo", "The expiration must be in the future.")
				return
			}
			end = *si.Expiration.EndDateTime
		default:
			writeGraphError(w, http.StatusBadRequest, "InvalidScheduleInfo", "Unsupported expiration type.")
			return
		}
		if exists {
			cur.end = end
		} else {
			g.pim[u.id] = &fakeSchedule{end: end, lag: f.lag, user: u.upn}
			if _, ok := g.members[u.id]; !ok {
				g.members[u.id] = f.lag
			}
		}
		f.ends = append(f.ends, u.upn+" "+end.Format(time.RFC3339))
	case "adminRemove":
		if !exists {
			writeGraphError(w, http.StatusBadRequest, "RoleAssignmentDoesNotExist", "The Role assignment does not exist.")
			return
		}
		delete(g.pim, u.id)
		delete(g.members, u.id)
	default:
		writeGraphError(w, http.StatusBadRequest, "InvalidRequest", "Unsupported action.")
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{
		"id": fmt.Sprintf("req-%d", len(f.ends)), "status": "Provisioned", "action": req.Action,
		"accessId": "member", "principalId": u.id, "groupId": req.GroupID, "justification": req.Justification,
	})
}

// handlePIMInstances serves $filter=groupId eq '...' [and principalId eq '...'].
func (f *fakeGraph) handlePIMInstances(w http.ResponseWriter, r *http.Request) {
	filter := r.URL.Query().Get("$filter")
	var gid, pid string
	for _, clause := range strings.Split(filter, " and ") {
		k, v, ok := strings.Cut(clause, " eq ")
		if !ok || len(v) < 2 || v[0] != '\'' || v[len(v)-1] != '\'' {
			writeGraphError(w, http.StatusBadRequest, "BadRequest", "Invalid filter clause.")
			return
		}
		switch v = v[1 : len(v)-1]; k {
		case "groupId":
			gid = v
		case "principalId":
			pid = v
		default:
			writeGraphError(w, http.StatusBadRequest, "BadRequest", "Unsupported filter.")
			return
		}
	}
	g, ok := f.groups[gid]
	if !ok {
		writeJSON(w, http.StatusOK, map[string]any{"value": []any{}})
		return
	}
	value := []any{}
	for _, id := range slices.Sorted(maps.Keys(g.pim)) {
		s := g.pim[id]
		if (pid != "" && id != pid) || !seen(&s.lag) {
			continue
		}
		in := map[string]any{
			"id": "inst-" + id, "principalId": id, "groupId": gid, "accessId": "member",
			"assignmentType": "assigned", "memberType": "direct", "startDateTime": "2026-11-23T08:00:00Z", "endDateTime": nil,
		}
		if !s.end.IsZero() {
			in["endDateTime"] = s.end.UTC().Format(time.RFC3339)
		}
		value = append(value, in)
	}
	writeJSON(w, http.StatusOK, map[string]any{"value": value})
}

package google

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// The Resource Manager v3 half of the fake: getIamPolicy, setIamPolicy
// (etag-checked, version 3 for conditions, members must exist) and
// testIamPermissions.

func (p *fakePolicy) json() map[string]any {
	bindings := p.bindings
	if bindings == nil {
		bindings = []binding{}
	}
	return map[string]any{
		"version":      3,
		"etag":         base64.StdEncoding.EncodeToString([]byte("etag-" + strconv.Itoa(p.etag))),
		"bindings":     bindings,
		"auditConfigs": p.audit,
	}
}

func (f *fakeGoogle) getIamPolicy(w http.ResponseWriter, r *http.Request, resource string) {
	var body struct {
		Options struct {
			RequestedPolicyVersion int `json:"requestedPolicyVersion"`
		} `json:"options"`
	}
	json.NewDecoder(r.Body).Decode(&body)
	pol, ok := f.policies[resource]
	if !ok {
		writeError(w, http.StatusForbidden, "PERMISSION_DENIED", "The caller does not have permission")
		return
	}
	if body.Options.RequestedPolicyVersion != 3 {
		writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "this test fake only serves version 3 policies")
		return
	}
	writeJSON(w, http.StatusOK, pol.json())
}

var memberPattern = regexp.MustCompile(`^(user|group|serviceAccount):(.+)$`)

func (f *fakeGoogle) setIamPolicy(w http.ResponseWriter, r *http.Request, resource string) {
	var body struct {
		Policy struct {
			Version      int             `json:"version"`
			Etag         string          `json:"etag"`
			Bindings     []binding       `json:"bindings"`
			AuditConfigs json.RawMessage `json:"auditConfigs"`
		} `json:"policy"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "Invalid JSON payload received.")
		return
	}
	pol, ok := f.policies[resource]
	if !ok {
		writeError(w, http.StatusForbidden, "PERMISSION_DENIED", "The caller does not have permission")
		return
	}
	if f.conflicts > 0 {
		f.conflicts--
		pol.etag++ // someone else wrote meanwhile
	}
	in := body.Policy
	if in.Etag != pol.json()["etag"] {
		writeError(w, http.StatusConflict, "ABORTED", "There were concurrent policy changes. Please retry the whole read-modify-write with exponential backoff.")
		return
	}
	seen := map[string]bool{}
	for _, b := range in.Bindings {
		if b.Condition != nil {
			if in.Version != 3 {
				writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "Conditions require policy version 3.")
				return
			}
			if b.Condition.Expression == "" || b.Condition.Title == "" || len(b.Condition.Title) > 100 {
				writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "Condition is invalid: it needs a title of at most 100 characters and an expression.")
				return
			}
		}
		key := b.Role
		if b.Condition != nil {
			key += "|" + b.Condition.Title + "|" + b.Condition.Expression
		}
		if seen[key] || len(b.Members) == 0 {
			writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "Duplicate or empty binding.")
			return
		}
		seen[key] = true
		for _, m := range b.Members {
			if revocableOnly.MatchString(m) {
				continue // kept as written, as Google does
			}
			mm := memberPattern.FindStringSubmatch(m)
			if mm == nil || !f.principals[strings.ToLower(mm[2])] {
				writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", fmt.Sprintf("User %s does not exist.", strings.TrimPrefix(m, "user:")))
				return
			}
		}
	}
	if string(in.AuditConfigs) != string(pol.audit) {
		writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "test fake: auditConfigs were not kept")
		return
	}
	pol.bindings = in.Bindings
	pol.etag++
	writeJSON(w, http.StatusOK, pol.json())
}

// testIamPermissions answers the subset of the asked permissions the
// caller holds: all of them but those denied.
func (f *fakeGoogle) testIamPermissions(w http.ResponseWriter, r *http.Request, resource string) {
	var body struct {
		Permissions []string `json:"permissions"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || len(body.Permissions) == 0 {
		writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "permissions are required")
		return
	}
	if _, ok := f.policies[resource]; !ok {
		writeError(w, http.StatusForbidden, "PERMISSION_DENIED", "The caller does not have permission")
		return
	}
	held := []string{}
	for _, p := range body.Permissions {
		if !slices.Contains(f.denied, p) {
			held = append(held, p)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"permissions": held})
}

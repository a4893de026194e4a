package aws

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/gitgrant/gitgrant/providers/internal/httpapitest"
)

const (
	testInstance = "arn:aws:sso:::instance/ssoins-0123456789abcdef"
	testStore    = "d-0123456789"
	testRegion   = "eu-west-1"
)

// fakeAWS serves the JSON 1.1 shapes of the IAM Identity Center admin API
// (X-Amz-Target SWBExternalService.*) and of the identity store
// (AWSIdentityStore.*) from memory, behind SigV4: every request's
// signature is recomputed with the secret of the access key it names.
type fakeAWS struct {
	t   testing.TB
	url string

	// Handlers run with Mu held; so does the state below. Throttled
	// counts the ThrottlingExceptions.
	httpapitest.Fake
	// keys are the access keys the fake accepts, with their secrets and
	// (non-zero) expiry.
	keys map[string]fakeKey
	// users: id -> user; groups: id -> display name.
	users  map[string]fakeUser
	groups map[string]string
	// permission sets and accounts that exist.
	permissionSets map[string]bool
	accounts       map[string]bool
	// assignments: "ps|account|principalId" -> principal type.
	assignments map[string]string
	requests    map[string]*fakeRequest
	nextID      int
	// pollsToFinish is how many status reads see IN_PROGRESS before a
	// request finishes; the change is applied (and listed) only then.
	pollsToFinish int
	// throttle answers the next requests with ThrottlingException.
	throttle int
	// quota caps requests per service and second.
	quota httpapitest.Quota
}

type fakeKey struct {
	secret, token string
	expires       time.Time
}

type fakeUser struct{ name, email string }

type fakeRequest struct {
	kind   string // creation or deletion
	key    string
	status map[string]any
	polls  int
	apply  func()
}

func newFakeAWS(t testing.TB) *fakeAWS {
	f := &fakeAWS{t: t, keys: map[string]fakeKey{}, users: map[string]fakeUser{}, groups: map[string]string{},
		permissionSets: map[string]bool{}, accounts: map[string]bool{}, assignments: map[string]string{},
		requests: map[string]*fakeRequest{}, pollsToFinish: 1, quota: httpapitest.Quota{Window: time.Second}}
	srv := httptest.NewServer(f.Serve(f.serve))
	t.Cleanup(srv.Close)
	f.url = srv.URL
	return f
}

func (f *fakeAWS) addKey(id, secret, token string, expires time.Time) {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	f.keys[id] = fakeKey{secret: secret, token: token, expires: expires}
}

// expireKeys makes the fake refuse every key it has issued so far.
func (f *fakeAWS) expireKeys() {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	for id, k := range f.keys {
		k.expires = time.Unix(1, 0)
		f.keys[id] = k
	}
}

func (f *fakeAWS) addUser(name, email string) string {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	f.nextID++
	id := fmt.Sprintf("9067a5e1d2-%08x-4d2c-9b1e-%012d", f.nextID, f.nextID)
	f.users[id] = fakeUser{name: name, email: email}
	return id
}

func (f *fakeAWS) addGroup(name string) string {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	f.nextID++
	id := fmt.Sprintf("a4e8b2c1d0-%08x-4a1b-8c2d-%012d", f.nextID, f.nextID)
	f.groups[id] = name
	return id
}

// assigned lists "principalId" of the assignments of ps in account.
func (f *fakeAWS) assigned(ps, account string) []string {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	var out []string
	for k := range f.assignments {
		if strings.HasPrefix(k, ps+"|"+account+"|") {
			out = append(out, strings.TrimPrefix(k, ps+"|"+account+"|"))
		}
	}
	slices.Sort(out)
	return out
}

func writeAWS(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-Requestid", "0b1d2c3e-0000-4000-8000-000000000000")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func writeAWSError(w http.ResponseWriter, code int, typ, msg string) {
	w.Header().Set("X-Amzn-Errortype", typ)
	writeAWS(w, code, map[string]string{"__type": typ, "Message": msg})
}

var credentialRE = regexp.MustCompile(`^AWS4-HMAC-SHA256 Credential=([A-Z0-9]+)/([0-9]{8})/([a-z0-9-]+)/([a-z]+)/aws4_request, SignedHeaders=([^,]+), Signature=[0-9a-f]{64}$`)

// authenticate recomputes the request's SigV4 signature with the secret
// of the access key it names, as AWS does, and checks the key's expiry.
func (f *fakeAWS) authenticate(r *http.Request, body []byte) (string, string) {
	m := credentialRE.FindStringSubmatch(r.Header.Get("Authorization"))
	if m == nil {
		return "MissingAuthenticationTokenException", "Missing Authentication Token"
	}
	key, ok := f.keys[m[1]]
	if !ok {
		return "UnrecognizedClientException", "The security token included in the request is invalid."
	}
	if !key.expires.IsZero() && time.Now().After(key.expires) {
		return "ExpiredTokenException", "The security token included in the request is expired"
	}
	if r.Header.Get("X-Amz-Security-Token") != key.token {
		return "UnrecognizedClientException", "The security token included in the request is invalid."
	}
	at, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return "IncompleteSignatureException", "X-Amz-Date is missing"
	}
	clone := r.Clone(context.Background())
	clone.URL.Scheme, clone.URL.Host = "http", r.Host
	// Only the headers the client signed count, as on AWS: the
	// transport adds some (Accept-Encoding) after signing.
	signed := strings.Split(m[5], ";")
	for name := range clone.Header {
		if !slices.Contains(signed, strings.ToLower(name)) {
			clone.Header.Del(name)
		}
	}
	clone.Body = io.NopCloser(bytes.NewReader(body))
	sum := sha256.Sum256(body)
	creds := sdkaws.Credentials{AccessKeyID: m[1], SecretAccessKey: key.secret, SessionToken: key.token}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, clone, hex.EncodeToString(sum[:]), m[4], m[3], at); err != nil {
		return "IncompleteSignatureException", err.Error()
	}
	if clone.Header.Get("Authorization") != r.Header.Get("Authorization") {
		return "InvalidSignatureException", "The request signature we calculated does not match the signature you provided."
	}
	return "", ""
}

func (f *fakeAWS) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	target := r.Header.Get("X-Amz-Target")
	service, op, _ := strings.Cut(target, ".")
	if r.Method != http.MethodPost || r.URL.Path != "/" || r.Header.Get("Content-Type") != "application/x-amz-json-1.1" ||
		(service != "SWBExternalService" && service != "AWSIdentityStore") {
		f.t.Errorf("fake AWS: unexpected request %s %s target %q", r.Method, r.URL, target)
		writeAWSError(w, http.StatusBadRequest, "UnknownOperationException", "")
		return
	}
	if typ, msg := f.authenticate(r, body); typ != "" {
		writeAWSError(w, http.StatusForbidden, typ, msg)
		return
	}
	f.Called(op)
	if f.throttle > 0 {
		f.throttle--
		f.Throttled++
		writeAWSError(w, http.StatusTooManyRequests, "ThrottlingException", "Rate exceeded")
		return
	}
	if ok, _, _ := f.quota.Take(service, 1, time.Now()); !ok {
		f.Throttled++
		writeAWSError(w, http.StatusTooManyRequests, "ThrottlingException", "Rate exceeded")
		return
	}
	var in map[string]any
	if err := json.Unmarshal(body, &in); err != nil {
		writeAWSError(w, http.StatusBadRequest, "SerializationException", "")
		return
	}
	str := func(k string) string { s, _ := in[k].(string); return s }
	if service == "AWSIdentityStore" {
		if str("IdentityStoreId") != testStore {
			writeAWSError(w, http.StatusBadRequest, "ResourceNotFoundException", "Identity store not found")
			return
		}
		f.identityStore(w, op, in, str)
		return
	}
	if str("InstanceArn") != testInstance {
		writeAWSError(w, http.StatusBadRequest, "ValidationException", "The instance ARN is invalid")
		return
	}
	switch op {
	case "CreateAccountAssignment", "DeleteAccountAssignment":
		f.change(w, op, str)
	case "DescribeAccountAssignmentCreationStatus", "DescribeAccountAssignmentDeletionStatus":
		id := str("AccountAssignmentCreationRequestId") + str("AccountAssignmentDeletionRequestId")
		req, ok := f.requests[id]
		if !ok {
			writeAWSError(w, http.StatusBadRequest, "ResourceNotFoundException", "Request not found")
			return
		}
		if req.status["Status"] == "IN_PROGRESS" {
			req.polls++
			if req.polls >= f.pollsToFinish {
				req.apply()
			}
		}
		writeAWS(w, http.StatusOK, map[string]any{"AccountAssignment" + req.kind + "Status": req.status})
	case "ListAccountAssignments":
		f.list(w, in, str)
	default:
		f.t.Errorf("fake AWS: unexpected operation %s", target)
		writeAWSError(w, http.StatusBadRequest, "UnknownOperationException", "")
	}
}

// change starts an asynchronous creation or deletion. The assignment
// changes, and shows in lists, only when a status read finishes it.
func (f *fakeAWS) change(w http.ResponseWriter, op string, str func(string) string) {
	ps, account, pid, ptype := str("PermissionSetArn"), str("TargetId"), str("PrincipalId"), str("PrincipalType")
	if !f.permissionSets[ps] {
		writeAWSError(w, http.StatusBadRequest, "ResourceNotFoundException", "Permission set not found")
		return
	}
	if !f.accounts[account] || str("TargetType") != "AWS_ACCOUNT" {
		writeAWSError(w, http.StatusBadRequest, "ValidationException", "The target is invalid")
		return
	}
	_, isUser := f.users[pid]
	_, isGroup := f.groups[pid]
	// Deleting the assignment of a principal since removed from the
	// directory is allowed; creating one is not.
	if op == "CreateAccountAssignment" && ((ptype == "USER" && !isUser) || (ptype == "GROUP" && !isGroup)) {
		writeAWSError(w, http.StatusBadRequest, "ValidationException", "The principal is invalid")
		return
	}
	key := ps + "|" + account + "|" + pid
	for _, req := range f.requests {
		if req.key == key && req.status["Status"] == "IN_PROGRESS" {
			writeAWSError(w, http.StatusBadRequest, "ConflictException", "An operation on this assignment is already in progress.")
			return
		}
	}
	f.nextID++
	id := fmt.Sprintf("5d5c8a2e-%04x-4f5b-9a7c-%012d", f.nextID%0xffff, f.nextID)
	status := map[string]any{"Status": "IN_PROGRESS", "RequestId": id, "PermissionSetArn": ps, "TargetId": account,
		"TargetType": "AWS_ACCOUNT", "PrincipalId": pid, "PrincipalType": ptype, "CreatedDate": float64(time.Now().Unix())}
	req := &fakeRequest{kind: "Creation", key: key, status: status}
	req.apply = func() {
		status["Status"] = "SUCCEEDED"
		f.assignments[key] = ptype
	}
	if op == "DeleteAccountAssignment" {
		req.kind = "Deletion"
		req.apply = func() {
			if _, ok := f.assignments[key]; !ok {
				status["Status"] = "FAILED"
				status["FailureReason"] = "Received a 404 status error: The account assignment does not exist."
				return
			}
			status["Status"] = "SUCCEEDED"
			delete(f.assignments, key)
		}
	}
	f.requests[id] = req
	if f.pollsToFinish == 0 {
		req.apply()
	}
	writeAWS(w, http.StatusOK, map[string]any{"AccountAssignment" + req.kind + "Status": status})
}

// list pages assignments by principal id, MaxResults at most 100.
func (f *fakeAWS) list(w http.ResponseWriter, in map[string]any, str func(string) string) {
	ps, account := str("PermissionSetArn"), str("AccountId")
	if !f.permissionSets[ps] || !f.accounts[account] {
		writeAWSError(w, http.StatusBadRequest, "ResourceNotFoundException", "Permission set or account not found")
		return
	}
	size := 100
	if n, ok := in["MaxResults"].(float64); ok && n >= 1 && n <= 100 {
		size = int(n)
	}
	start := 0
	if tok := str("NextToken"); tok != "" {
		b, _ := base64.StdEncoding.DecodeString(tok)
		n, err := strconv.Atoi(string(b))
		if err != nil {
			writeAWSError(w, http.StatusBadRequest, "ValidationException", "Invalid NextToken")
			return
		}
		start = n
	}
	var keys []string
	for k := range f.assignments {
		if strings.HasPrefix(k, ps+"|"+account+"|") {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	end := min(start+size, len(keys))
	out := []any{}
	for _, k := range keys[min(start, len(keys)):end] {
		parts := strings.Split(k, "|")
		out = append(out, map[string]any{"AccountId": account, "PermissionSetArn": ps, "PrincipalId": parts[2], "PrincipalType": f.assignments[k]})
	}
	resp := map[string]any{"AccountAssignments": out}
	if end < len(keys) {
		resp["NextToken"] = base64.StdEncoding.EncodeToString([]byte(strconv.Itoa(end)))
	}
	writeAWS(w, http.StatusOK, resp)
}

func (f *fakeAWS) identityStore(w http.ResponseWriter, op string, in map[string]any, str func(string) string) {
	unique := func() (string, string) {
		alt, _ := in["AlternateIdentifier"].(map[string]any)
		u, _ := alt["UniqueAttribute"].(map[string]any)
		path, _ := u["AttributePath"].(string)
		value, _ := u["AttributeValue"].(string)
		return path, value
	}
	switch op {
	case "GetUserId":
		path, value := unique()
		for id, u := range f.users {
			if (path == "userName" && strings.EqualFold(u.name, value)) || (path == "emails.value" && strings.EqualFold(u.email, value)) {
				writeAWS(w, http.StatusOK, map[string]string{"UserId": id, "IdentityStoreId": testStore})
				return
			}
		}
		if path != "userName" && path != "emails.value" {
			writeAWSError(w, http.StatusBadRequest, "ValidationException", "Unsupported attribute path")
			return
		}
		writeAWSError(w, http.StatusBadRequest, "ResourceNotFoundException", "USER not found.")
	case "GetGroupId":
		path, value := unique()
		for id, name := range f.groups {
			if path == "displayName" && name == value {
				writeAWS(w, http.StatusOK, map[string]string{"GroupId": id, "IdentityStoreId": testStore})
				return
			}
		}
		writeAWSError(w, http.StatusBadRequest, "ResourceNotFoundException", "GROUP not found.")
	case "DescribeUser":
		u, ok := f.users[str("UserId")]
		if !ok {
			writeAWSError(w, http.StatusBadRequest, "ResourceNotFoundException", "USER not found.")
			return
		}
		writeAWS(w, http.StatusOK, map[string]any{"UserId": str("UserId"), "IdentityStoreId": testStore, "UserName": u.name,
			"Emails": []any{map[string]any{"Value": u.email, "Type": "work", "Primary": true}}})
	case "DescribeGroup":
		name, ok := f.groups[str("GroupId")]
		if !ok {
			writeAWSError(w, http.StatusBadRequest, "ResourceNotFoundException", "GROUP not found.")
			return
		}
		writeAWS(w, http.StatusOK, map[string]any{"GroupId": str("GroupId"), "IdentityStoreId": testStore, "DisplayName": name})
	default:
		f.t.Errorf("fake AWS: unexpected operation AWSIdentityStore.%s", op)
		writeAWSError(w, http.StatusBadRequest, "UnknownOperationException", "")
	}
}

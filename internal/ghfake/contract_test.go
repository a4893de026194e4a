package ghfake_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gitgrant/gitgrant/internal/testing/fakeclock"

	"github.com/xeipuuv/gojsonschema"

	"github.com/gitgrant/gitgrant/internal/approval"
	"github.com/gitgrant/gitgrant/internal/ghapi"
	"github.com/gitgrant/gitgrant/internal/ghfake"
	"github.com/gitgrant/gitgrant/providers"
	"github.com/gitgrant/gitgrant/providers/githubteam"
	"github.com/gitgrant/gitgrant/providers/providertest"
	"github.com/gitgrant/gitgrant/schema"
)

// The contract is an extract of GitHub's published OpenAPI description
// (the npm package @octokit/openapi, generated/api.github.com.deref.json)
// for the operations gitgrant uses. Regenerate it with
//
//	npm pack @octokit/openapi && tar xzf octokit-openapi-*.tgz
//	go test ./internal/ghfake -run TestContract -update-contract -openapi package/generated/api.github.com.deref.json
var (
	updateContract = flag.Bool("update-contract", false, "regenerate testdata/contract.json from -openapi")
	openapiPath    = flag.String("openapi", "", "path to GitHub's dereferenced OpenAPI description")
)

// operations gitgrant's client calls, as the OpenAPI description names them.
var operations = []string{
	"GET /repos/{owner}/{repo}",
	"GET /repos/{owner}/{repo}/commits/{commit_sha}/pulls",
	"GET /repos/{owner}/{repo}/commits/{ref}",
	"GET /repos/{owner}/{repo}/pulls",
	"POST /repos/{owner}/{repo}/pulls",
	"GET /repos/{owner}/{repo}/pulls/{pull_number}",
	"PATCH /repos/{owner}/{repo}/pulls/{pull_number}",
	"GET /repos/{owner}/{repo}/pulls/{pull_number}/commits",
	"GET /repos/{owner}/{repo}/pulls/{pull_number}/reviews",
	"GET /repos/{owner}/{repo}/pulls/{pull_number}/files",
	"GET /repos/{owner}/{repo}/contents/{path}",
	"GET /repos/{owner}/{repo}/issues",
	"POST /repos/{owner}/{repo}/issues",
	"GET /repos/{owner}/{repo}/issues/{issue_number}/comments",
	"POST /repos/{owner}/{repo}/issues/{issue_number}/comments",
	"PATCH /repos/{owner}/{repo}/issues/comments/{comment_id}",
	"POST /repos/{owner}/{repo}/check-runs",
	"POST /repos/{owner}/{repo}/statuses/{sha}",
	"GET /orgs/{org}/teams/{team_slug}",
	"GET /orgs/{org}/teams/{team_slug}/memberships/{username}",
	// the github-team provider
	"GET /orgs/{org}",
	"GET /orgs/{org}/teams/{team_slug}/members",
	"GET /orgs/{org}/teams/{team_slug}/teams",
	"PUT /orgs/{org}/teams/{team_slug}/memberships/{username}",
	"DELETE /orgs/{org}/teams/{team_slug}/memberships/{username}",
	"GET /users/{username}",
	"POST /app/installations/{installation_id}/access_tokens",
	"GET /app",
	"GET /user",
	"GET /users/{username}/keys",
}

type operation struct {
	Method string   `json:"method"`
	Path   string   `json:"path"`
	Query  []string `json:"query"`
	// Request is the JSON Schema of the request body, if any.
	Request any `json:"request,omitempty"`
	// Status and Response: the documented success answer.
	Status   string `json:"status"`
	Response any    `json:"response,omitempty"`
}

func TestContract(t *testing.T) {
	if *updateContract {
		generateContract(t)
	}
	t.Parallel()
	data, err := os.ReadFile("testdata/contract.json")
	if err != nil {
		t.Fatal(err)
	}
	var ops []operation
	if err := json.Unmarshal(data, &ops); err != nil {
		t.Fatal(err)
	}
	gh := workload(t)
	used := map[string]int{}
	for _, r := range gh.Requests() {
		op := match(ops, r.Method, r.Path)
		if op == nil {
			t.Errorf("%s %s: not an operation of GitHub's REST API (or not in the contract)", r.Method, r.Path)
			continue
		}
		used[op.Method+" "+op.Path]++
		q, _ := url.ParseQuery(r.Query)
		for k := range q {
			if !contains(op.Query, k) {
				t.Errorf("%s %s: query parameter %q is not documented (documented: %v)", r.Method, r.Path, k, op.Query)
			}
		}
		if op.Request != nil && len(r.Body) > 0 {
			validate(t, fmt.Sprintf("%s %s request", r.Method, r.Path), op.Request, r.Body)
		}
		if op.Response != nil && fmt.Sprint(r.Status) == op.Status {
			validate(t, fmt.Sprintf("%s %s response", r.Method, r.Path), op.Response, r.Response)
		}
	}
	for _, name := range operations {
		if used[name] == 0 {
			t.Errorf("the workload never called %s: extend it", name)
		}
	}
}

func match(ops []operation, method, path string) *operation {
	for i, op := range ops {
		if op.Method != method {
			continue
		}
		// QuoteMeta escaped the braces; {path} may span segments.
		re := regexp.MustCompile(`\\\{[a-z_]+\\\}`).ReplaceAllStringFunc(regexp.QuoteMeta(op.Path), func(p string) string {
			if p == `\{path\}` {
				return ".+"
			}
			return "[^/]+"
		})
		if regexp.MustCompile("^" + re + "$").MatchString(path) {
			return &ops[i]
		}
	}
	return nil
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func validate(t *testing.T, what string, schemaDoc any, body []byte) {
	t.Helper()
	res, err := gojsonschema.Validate(gojsonschema.NewGoLoader(schemaDoc), gojsonschema.NewBytesLoader(body))
	if err != nil {
		t.Errorf("%s: %v", what, err)
		return
	}
	for _, e := range res.Errors() {
		t.Errorf("%s: %s", what, e)
	}
}

// workload drives the real client through everything gitgrant does with
// GitHub, against the fake, and returns the fake with its request log.
func workload(t *testing.T) *ghfake.Server {
	t.Helper()
	clk := t0
	gh := ghfake.New(func() time.Time { return clk })
	t.Cleanup(gh.Close)
	repo := gh.AddRepo("acme", "access", "main")
	cfg := "version: 1\npolicy:\n  break_glass:\n    members: [\"@acme/oncall\"]\nidentities:\n  alice: {principals: {db: alice}}\nproviders:\n  db:\n    type: postgres\n    dsn_env: DSN\n    roles:\n      rw: {approvals: 1}\n"
	root := gh.AddCommit(repo, ghfake.Commit{Author: "admin", Committer: "admin", Date: t0}, map[string]string{"gitgrant.yaml": cfg, "CODEOWNERS": "/requests/ @acme/dba\n"})
	gh.AddTeamMember("acme", "dba", "bob")
	gh.AddTeamMember("acme", "oncall", "alice")
	const p = "requests/db/alice.yaml"
	content := "requester: alice\ngrants:\n  - provider: db\n    role: rw\nduration: 1h\nreason: fix things\n"
	head := gh.AddCommit(repo, ghfake.Commit{Parents: []string{root.SHA}, Author: "alice", Committer: "alice", Date: t0}, map[string]string{p: content})
	merge := gh.AddCommit(repo, ghfake.Commit{Parents: []string{root.SHA, head.SHA}, Author: "alice", Committer: "web-flow", Date: t0}, map[string]string{p: content})
	pr := gh.AddPull(repo, ghfake.Pull{User: "alice", HeadSHA: head.SHA, BaseSHA: root.SHA, MergedAt: t0, MergeCommitSHA: merge.SHA, Commits: []string{head.SHA}})
	gh.Associate(repo, merge.SHA, pr.Number)
	gh.AddReview(repo, pr.Number, ghfake.Review{User: "bob", State: "APPROVED", CommitID: head.SHA, SubmittedAt: t0})
	// carol is in no team: her 404 membership is checked against the team.
	gh.AddReview(repo, pr.Number, ghfake.Review{User: "carol", State: "APPROVED", CommitID: head.SHA, SubmittedAt: t0})
	emergency := gh.AddCommit(repo, ghfake.Commit{Parents: []string{merge.SHA}, Author: "alice", Committer: "alice", Date: t0},
		map[string]string{"requests/db/alice-2.yaml": content + "emergency: true\n"})

	key := testKey(t)
	gh.AddApp(1, &key.PublicKey, 2, time.Hour)
	cl, err := ghapi.New(ghapi.Config{APIURL: gh.BaseURL(), Repository: "acme/access", AppID: 1, InstallationID: 2, PrivateKey: pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})},
		ghapi.Options{Clock: fakeclock.New(clk)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	v := &approval.Verifier{GitHub: cl, Org: "acme"}
	for _, in := range []struct{ path, commit, content string }{{p, merge.SHA, content}, {"requests/db/alice-2.yaml", emergency.SHA, content + "emergency: true\n"}} {
		req, diags := schema.LoadRequest(in.path, []byte(in.content))
		if req == nil {
			t.Fatal(diags)
		}
		vin := approval.Input{Path: in.path, Blob: ghfake.BlobSHA([]byte(in.content)), Commit: in.commit, Request: req}
		ev, err := v.Verify(ctx, vin)
		if err != nil || !ev.Approved {
			t.Fatalf("%s: %+v %v", in.path, ev, err)
		}
		if ev.Emergency { // the App's identity (GET /app), then the issue
			if _, err := v.EnsureFollowUp(ctx, vin, ev, "0123456789abcdef0123"); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A token's identity is GET /user's.
	gh.AddUserToken("user-token", "gitgrant-bot")
	tc, err := ghapi.New(ghapi.Config{APIURL: gh.BaseURL(), Repository: "acme/access", Token: "user-token"}, ghapi.Options{Clock: fakeclock.New(clk)})
	if err != nil {
		t.Fatal(err)
	}
	if login, err := tc.Identity(ctx); err != nil || login != "gitgrant-bot" {
		t.Fatalf("identity of a user token: %q, %v", login, err)
	}
	if _, _, err := cl.UpsertComment(ctx, pr.Number, "<!-- gitgrant:plan -->", "plan"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := cl.UpsertComment(ctx, pr.Number, "<!-- gitgrant:plan -->", "plan 2"); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.CheckRun(ctx, head.SHA, "gitgrant", "success", "ok", "all good"); err != nil {
		t.Fatal(err)
	}
	if err := cl.SetStatus(ctx, head.SHA, "success", "gitgrant", "ok"); err != nil {
		t.Fatal(err)
	}
	for _, title := range []string{"cleanup 1", "cleanup 2"} {
		if _, _, err := cl.EnsurePullRequest(ctx, "gitgrant/cleanup", "main", title, "body"); err != nil {
			t.Fatal(err)
		}
	}
	// gitgrant request --open-pr opens a person's pull request once.
	if n, u, err := cl.CreatePullRequest(ctx, "access/alice-readwrite", "main", "Request orders-db readwrite", "why"); err != nil || n == 0 || !strings.Contains(u, fmt.Sprintf("/pull/%d", n)) {
		t.Fatalf("create pull request: #%d %q %v", n, u, err)
	}
	// The hand-off of an ephemeral account: the requester's keys, and
	// gitgrant credentials reading the pull request's comments.
	gh.SetUserKeys("alice", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl alice@laptop")
	if keys, err := cl.UserSSHKeys(ctx, "alice"); err != nil || len(keys) != 1 || !strings.HasPrefix(keys[0], "ssh-ed25519 AAAA") {
		t.Fatalf("alice's keys: %q, %v", keys, err)
	}
	if comments, err := cl.Comments(ctx, pr.Number); err != nil || len(comments) != 1 || comments[0].Body != "<!-- gitgrant:plan -->\nplan 2" {
		t.Fatalf("comments of #%d: %+v, %v", pr.Number, comments, err)
	}
	if _, err := cl.PullRequest(ctx, pr.Number); err != nil {
		t.Fatal(err)
	}
	// validate --pr lists what a pull request changes.
	if files, err := cl.PullRequestFiles(ctx, pr.Number); err != nil || len(files) != 1 || files[0].Path != p || files[0].Status != "added" {
		t.Fatalf("files of #%d = %+v, %v", pr.Number, files, err)
	}
	teamProvider(t, gh, clk)
	return gh
}

// teamProvider runs the github-team provider against gh: its checks, a
// team's members, a grant (which looks the user up) and a revoke.
func teamProvider(t *testing.T, gh *ghfake.Server, clk time.Time) {
	t.Helper()
	gh.AddToken("team-token")
	gh.AddUser("dave", "acme")
	gh.AddTeam("acme", "deployers")
	gh.SetChildTeams("acme", "deployers", "release")
	gh.AddTeamMember("acme", "deployers", "erin")
	open := func(roles map[string]string) *githubteam.Provider {
		cfg := providertest.Config(githubteam.Type, "github", roles, map[string]any{"org": "acme", "api_url": gh.BaseURL(), "token_env": "TEAM_TOKEN"})
		p, err := githubteam.Open(t.Context(), cfg, providertest.Deps(map[string]string{"TEAM_TOKEN": "team-token"}, nil, fakeclock.New(clk)))
		if err != nil {
			t.Fatal(err)
		}
		return p.(*githubteam.Provider)
	}
	ctx := t.Context()
	// With no role yet, the check reads the organisation.
	if err := open(nil).Check(ctx); err != nil {
		t.Fatalf("github-team check without roles: %v", err)
	}
	p := open(map[string]string{"deploy": "deployers"})
	// A team with child teams is refused: GitHub lists their members as
	// its own.
	if err := p.Check(ctx); err == nil || !strings.Contains(err.Error(), "child teams (release)") {
		t.Fatalf("github-team check of a parent team: %v", err)
	}
	gh.SetChildTeams("acme", "deployers")
	if err := p.Check(ctx); err != nil {
		t.Fatalf("github-team check: %v", err)
	}
	if err := p.Grant(ctx, providers.Grant{Role: "deploy", Principal: "dave", Until: clk.Add(time.Hour)}); err != nil {
		t.Fatalf("github-team grant: %v", err)
	}
	if m, err := p.Members(ctx, "deploy"); err != nil || len(m) != 2 {
		t.Fatalf("github-team members: %+v, %v", m, err)
	}
	if err := p.Revoke(ctx, "deploy", "dave"); err != nil {
		t.Fatalf("github-team revoke: %v", err)
	}
}

// generateContract extracts the operations from the OpenAPI description,
// turning OpenAPI 3.0 schemas into JSON Schema: nullable becomes a null
// type; prose and examples are dropped. Response schemas lose "required"
// (the fake serves the fields gitgrant reads, not all of them) and forbid
// undocumented properties, so that every field the fake serves is one
// GitHub documents, with its documented type.
func generateContract(t *testing.T) {
	data, err := os.ReadFile(*openapiPath)
	if err != nil {
		t.Fatalf("-openapi: %v", err)
	}
	var spec struct {
		Paths map[string]map[string]struct {
			Parameters []struct {
				Name string `json:"name"`
				In   string `json:"in"`
			} `json:"parameters"`
			RequestBody struct {
				Content map[string]struct {
					Schema any `json:"schema"`
				} `json:"content"`
			} `json:"requestBody"`
			Responses map[string]struct {
				Content map[string]struct {
					Schema any `json:"schema"`
				} `json:"content"`
			} `json:"responses"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(data, &spec); err != nil {
		t.Fatal(err)
	}
	var out []operation
	for _, name := range operations {
		method, path, _ := strings.Cut(name, " ")
		o, ok := spec.Paths[path][strings.ToLower(method)]
		if !ok {
			t.Fatalf("%s is not in the OpenAPI description", name)
		}
		op := operation{Method: method, Path: path, Query: []string{}}
		for _, p := range o.Parameters {
			if p.In == "query" {
				op.Query = append(op.Query, p.Name)
			}
		}
		sort.Strings(op.Query)
		if c, ok := o.RequestBody.Content["application/json"]; ok {
			op.Request = convert(c.Schema, false)
		}
		for _, status := range []string{"200", "201"} {
			if r, ok := o.Responses[status]; ok {
				op.Status = status
				if c, ok := r.Content["application/json"]; ok {
					op.Response = convert(c.Schema, true)
				}
				break
			}
		}
		out = append(out, op)
	}
	b, err := json.MarshalIndent(out, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile("testdata/contract.json", append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

func convert(v any, response bool) any {
	switch x := v.(type) {
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = convert(e, response)
		}
		return out
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			switch {
			case k == "description" || k == "title" || k == "example" || k == "examples" || strings.HasPrefix(k, "x-"):
			case k == "nullable" || k == "readOnly" || k == "writeOnly" || k == "deprecated":
			case k == "required" && response:
			case k == "properties":
				props := map[string]any{}
				for pk, pv := range e.(map[string]any) {
					props[pk] = convert(pv, response)
				}
				out[k] = props
			default:
				out[k] = convert(e, response)
			}
		}
		if n, _ := x["nullable"].(bool); n {
			if typ, ok := out["type"].(string); ok {
				out["type"] = []any{typ, "null"}
			}
			if e, ok := out["enum"].([]any); ok {
				out["enum"] = append(e, nil)
			}
		}
		if oneOf, ok := out["oneOf"]; ok && response {
			delete(out, "oneOf")
			out["anyOf"] = oneOf
		}
		if _, ok := out["properties"]; ok && response {
			if _, set := out["additionalProperties"]; !set {
				out["additionalProperties"] = false
			}
		}
		return out
	}
	return v
}

func testKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

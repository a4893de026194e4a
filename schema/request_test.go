package schema

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gitgrant/gitgrant"
)

var testNow = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

// testConfigFile is testdata/gitgrant.yaml as the config file of a tree.
func testConfigFile(t testing.TB) *File {
	t.Helper()
	return &File{Path: "gitgrant.yaml", Data: readTestFile(t, "testdata/gitgrant.yaml")}
}

func testConfig(t testing.TB) *gitgrant.Config {
	t.Helper()
	data, err := os.ReadFile("testdata/gitgrant.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, diags := LoadConfig("gitgrant.yaml", data)
	if cfg == nil {
		t.Fatalf("test config does not load:\n%v", diags)
	}
	return cfg
}

const validRequest = `requester: alice
grants:
  - provider: orders-db
    role: readwrite
duration: 4h
reason: Repair stuck orders
ticket: INC-1234
`

// expiringRequest is validRequest with an end an hour after testNow
// instead of a duration.
var expiringRequest = strings.Replace(validRequest, "duration: 4h", "expires: 2026-11-22T13:00:00Z", 1)

// expiringPath is where the tests of time-based rules put expiringRequest.
const expiringPath = "requests/orders-db/c.yaml"

func TestValidRequest(t *testing.T) {
	t.Parallel()
	req, diags := LoadRequest("requests/orders-db/a.yaml", []byte(validRequest))
	if req == nil || len(diags) > 0 {
		t.Fatalf("valid request rejected: %v", diags)
	}
	want := &gitgrant.Request{
		Path: "requests/orders-db/a.yaml", Version: 1, Requester: "alice",
		Grants:   []gitgrant.GrantRef{{Provider: "orders-db", Role: "readwrite"}},
		Duration: gitgrant.Duration(4 * time.Hour), Reason: "Repair stuck orders", Ticket: "INC-1234",
	}
	if diff := cmp.Diff(want, req, cmp.FilterPath(func(p cmp.Path) bool { return p.String() == "Positions" }, cmp.Ignore())); diff != "" {
		t.Errorf("request (-want +got):\n%s", diff)
	}
	if got := req.Pos("grants.0.role"); got != (gitgrant.Position{File: req.Path, Line: 4, Column: 11}) {
		t.Errorf("position of grants.0.role = %v, want line 4 column 11", got)
	}
	if diags := NewPolicy(testConfig(t), testNow).Check(req); len(diags) > 0 {
		t.Errorf("valid request fails policy: %v", diags)
	}
}

// badCase is one hostile or broken request file and the first diagnostic
// it must produce: where, which field, and words of the message.
type badCase struct {
	name    string
	path    string // default requests/orders-db/x.yaml
	content string
	line    int
	col     int
	field   string
	message string // substring of the message
	hint    string // substring of the hint, optional
}

func TestBadRequests(t *testing.T) {
	t.Parallel()
	big := "requester: alice\nreason: " + strings.Repeat("x", gitgrant.MaxFileSize) + "\n"
	replace := func(old, new string) string { return strings.Replace(validRequest, old, new, 1) }
	cases := []badCase{
		// broken YAML and hostile files
		{name: "syntax error", content: "requester: alice\ngrants: [\n", line: 2, message: "YAML syntax error"},
		{name: "tab indentation", content: "requester: alice\n\tgrants: x\n", line: 2, message: "YAML syntax error", hint: "spaces, not tabs"},
		{name: "unclosed quote", content: "requester: \"alice\nreason: x\n", line: 3, message: "YAML syntax error"},
		{name: "empty file", content: "", line: 1, col: 1, message: "file is empty"},
		{name: "only comments", content: "# nothing\n", line: 1, col: 1, message: "file is empty"},
		{name: "null document", content: "~\n", line: 1, col: 1, message: "file is empty"},
		{name: "list at top", content: "- a\n- b\n", line: 1, col: 1, message: "must be a mapping"},
		{name: "scalar at top", content: "hello\n", line: 1, col: 1, message: "must be a mapping"},
		{name: "two documents", content: validRequest + "---\nrequester: bob\n", line: 8, col: 1, message: "more than one YAML document"},
		{name: "duplicate key", content: replace("duration: 4h\n", "duration: 4h\nduration: 8h\n"), line: 6, col: 1, field: "duration", message: `duplicate key "duration" (first at line 5)`},
		{name: "anchor", content: replace("reason: Repair", "reason: &r Repair"), line: 6, col: 9, field: "reason", message: "anchor &r is not allowed"},
		{name: "alias", content: "requester: &a alice\nsubject: *a\n" + strings.SplitN(validRequest, "\n", 2)[1], line: 1, col: 12, field: "requester", message: "anchor &a"},
		{name: "alias bomb", content: "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n", line: 1, col: 4, field: "a", message: "anchor &a is not allowed"},
		{name: "merge key", content: "<<: {requester: alice}\n", line: 1, col: 5, message: "merge key << is not allowed"},
		{name: "too large", content: big, message: "over the 64 KiB limit"},
		{name: "not utf-8", content: "requester: al\xffice\n", line: 1, col: 14, message: "not valid UTF-8"},
		{name: "latin-1 reason", content: replace("Repair stuck", "R\xe9paration"), line: 6, col: 10, message: "not valid UTF-8"},
		{name: "custom tag", content: replace("reason: Repair stuck orders", "reason: !secret Repair"), line: 6, col: 9, field: "reason", message: "tag !secret is not supported"},
		{name: "binary tag", content: replace("reason: Repair stuck orders", "reason: !!binary aGVsbG8="), line: 6, col: 9, field: "reason", message: "tag !!binary is not supported"},
		{name: "complex key", content: "? [a, b]\n: c\n", line: 1, col: 3, message: "key must be a plain name"},
		// schema
		{name: "missing requester", content: strings.Replace(validRequest, "requester: alice\n", "", 1), line: 1, col: 1, field: "requester", message: `missing required field "requester"`},
		{name: "missing grants", content: "requester: alice\nduration: 4h\nreason: Repair it\nticket: INC-1\n", line: 1, col: 1, field: "grants", message: `missing required field "grants"`},
		{name: "missing reason", content: strings.Replace(validRequest, "reason: Repair stuck orders\n", "", 1), line: 1, col: 1, field: "reason", message: `missing required field "reason"`},
		{name: "unknown key typo", content: replace("duration:", "duraton:"), line: 1, col: 1, message: "missing duration or expires"},
		{name: "unknown key suggestion", content: replace("ticket:", "tiket:"), line: 7, col: 1, field: "tiket", message: `unknown field "tiket"`, hint: `did you mean "ticket"?`},
		{name: "unknown grant key", content: replace("    role: readwrite", "    role: readwrite\n    rol: x"), line: 5, col: 5, field: "grants.0.rol", message: `unknown field "rol"`, hint: `did you mean "role"?`},
		{name: "unknown key far", content: replace("ticket:", "zzz: 1\nticket:"), line: 7, col: 1, field: "zzz", message: `unknown field "zzz"`, hint: "known fields here"},
		{name: "grants not a list", content: replace("grants:\n  - provider: orders-db\n    role: readwrite", "grants: orders-db"), line: 2, col: 9, field: "grants", message: "must be a list, not a string"},
		{name: "empty grants", content: replace("grants:\n  - provider: orders-db\n    role: readwrite", "grants: []"), line: 2, col: 9, field: "grants", message: "needs at least 1 item"},
		{name: "grant missing role", content: replace("    role: readwrite\n", ""), line: 3, col: 5, field: "grants.0.role", message: `missing required field "role"`},
		{name: "numeric requester", content: replace("requester: alice", "requester: 1234"), line: 1, col: 12, field: "requester", message: "must be a string, not a whole number", hint: "quotes"},
		{name: "empty requester", content: replace("requester: alice", "requester:"), line: 1, col: 11, field: "requester", message: "must be a string, not empty"},
		{name: "cyrillic requester", content: replace("requester: alice", "requester: аlice"), line: 1, col: 12, field: "requester", message: "U+0430 CYRILLIC SMALL LETTER A", hint: `looks like "alice"`},
		{name: "fullwidth requester", content: replace("requester: alice", "requester: ａlice"), line: 1, col: 12, field: "requester", message: "FULLWIDTH LATIN SMALL LETTER A", hint: `looks like "alice"`},
		{name: "greek omicron subject", content: replace("requester: alice", "requester: alice\nsubject: bοb"), line: 2, col: 10, field: "subject", message: "GREEK SMALL LETTER OMICRON", hint: `looks like "bob"`},
		{name: "zero width space", content: replace("requester: alice", "requester: al\u200bice"), line: 1, col: 12, field: "requester", message: "U+200B ZERO WIDTH SPACE"},
		{name: "bad login syntax", content: replace("requester: alice", "requester: -alice"), line: 1, col: 12, field: "requester", message: `"-alice" is not valid`, hint: "GitHub login"},
		{name: "emergency yes", content: replace("ticket:", "emergency: yes\nticket:"), line: 7, col: 12, field: "emergency", message: "must be true or false, not a string"},
		{name: "bad duration unit", content: replace("duration: 4h", "duration: 4 hours"), line: 5, col: 11, field: "duration", message: `"4 hours" is not valid`, hint: "30m, 4h, 2d, 1w"},
		{name: "zero duration", content: replace("duration: 4h", "duration: 0h"), line: 5, col: 11, field: "duration", message: "not positive"},
		{name: "negative duration", content: replace("duration: 4h", "duration: -4h"), line: 5, col: 11, field: "duration", message: `"-4h" is not valid`},
		{name: "repeated unit", content: replace("duration: 4h", "duration: 1h1h"), line: 5, col: 11, field: "duration", message: "names unit"},
		{name: "huge duration", content: replace("duration: 4h", "duration: 99999999999999999w"), line: 5, col: 11, field: "duration", message: "too long a duration"},
		{name: "both duration and expires", content: replace("duration: 4h", "duration: 4h\nexpires: 2026-11-23T00:00:00Z"), line: 6, col: 10, field: "expires", message: "both duration and expires"},
		{name: "neither duration nor expires", content: replace("duration: 4h\n", ""), line: 1, col: 1, message: "missing duration or expires"},
		{name: "expires without zone", content: replace("duration: 4h", "expires: 2026-11-23T10:00:00"), line: 5, col: 10, field: "expires", message: "is not valid", hint: "with a zone"},
		{name: "expires date only", content: replace("duration: 4h", "expires: 2026-11-23"), line: 5, col: 10, field: "expires", message: "is not valid"},
		{name: "expires impossible date", content: replace("duration: 4h", "expires: 2026-13-45T10:00:00Z"), line: 5, col: 10, field: "expires", message: "is not a real time"},
		{name: "starts after expires", content: replace("duration: 4h", "starts: 2026-11-23T12:00:00Z\nexpires: 2026-11-23T10:00:00Z"), line: 6, col: 10, field: "expires", message: "is not after starts"},
		{name: "duplicate grant", content: replace("    role: readwrite", "    role: readwrite\n  - provider: orders-db\n    role: readwrite"), line: 5, col: 5, field: "grants.1", message: "requested twice"},
		{name: "short reason", content: replace("reason: Repair stuck orders", "reason: ok"), line: 6, col: 9, field: "reason", message: "too short"},
		{name: "blank reason", content: replace("reason: Repair stuck orders", `reason: "     "`), line: 6, col: 9, field: "reason", message: "reason has no words", hint: "say why"},
		{name: "punctuation reason", content: replace("reason: Repair stuck orders", `reason: "... -- !!"`), line: 6, col: 9, field: "reason", message: "reason has no words"},
		{name: "future version", content: "version: 2\n" + validRequest, line: 1, col: 10, field: "version", message: "newer than this gitgrant understands"},
		// policy
		{name: "folder mismatch", path: "requests/ldap/x.yaml", content: validRequest, line: 3, col: 15, field: "grants.0.provider", message: `does not match the folder requests/ldap/`},
		{name: "undeclared provider", path: "requests/order-db/x.yaml", content: replace("provider: orders-db", "provider: order-db"), line: 3, col: 15, field: "grants.0.provider", message: `provider "order-db" is not declared`, hint: `did you mean "orders-db"?`},
		{name: "undeclared role", content: replace("role: readwrite", "role: readwrit"), line: 4, col: 11, field: "grants.0.role", message: `role "readwrit" is not declared`, hint: `did you mean "readwrite"?`},
		{name: "duration over role max", content: replace("duration: 4h", "duration: 5h"), line: 5, col: 11, field: "duration", message: "duration 5h exceeds the 4h maximum of orders-db/readwrite"},
		{name: "expires over role max", content: replace("duration: 4h", "expires: 2026-11-23T12:00:00Z"), line: 5, col: 10, field: "expires", message: "over the 4h maximum of orders-db/readwrite"},
		{name: "expires in the past", content: replace("duration: 4h", "expires: 2026-11-22T11:00:00Z"), line: 5, col: 10, field: "expires", message: "is in the past"},
		{name: "missing ticket", content: replace("ticket: INC-1234\n", ""), line: 1, col: 1, field: "ticket", message: "a ticket is required by policy"},
		{name: "reason under policy minimum", content: replace("reason: Repair stuck orders", "reason: fix orders."), line: 6, col: 9, field: "reason", message: "reason is 11 characters; policy.min_reason_length asks for at least 12", hint: "say why"},
		{name: "reason padded to the minimum", content: replace("reason: Repair stuck orders", `reason: "fix          orders"`), line: 6, col: 9, field: "reason", message: "reason is 10 characters"},
		{name: "ticket pattern", content: replace("ticket: INC-1234", "ticket: JIRA-1"), line: 7, col: 9, field: "ticket", message: "does not match the policy pattern"},
		{name: "ticket pattern is anchored", content: replace("ticket: INC-1234", "ticket: xINC-1234"), line: 7, col: 9, field: "ticket", message: "does not match the policy pattern"},
		{name: "unknown requester", content: replace("requester: alice", "requester: mallory"), line: 1, col: 12, field: "requester", message: `requester "mallory" is not in identities`},
		{name: "requester without principal", content: replace("requester: alice", "requester: carol"), line: 3, col: 15, field: "grants.0.provider", message: "carol has no principal on orders-db"},
		{name: "on behalf not allowed", content: replace("requester: alice", "requester: alice\nsubject: bob"), line: 2, col: 10, field: "subject", message: "on behalf of someone else is not allowed"},
		{name: "emergency by non member", content: replace("requester: alice", "requester: bob") + "emergency: true\n", line: 8, col: 12, field: "emergency", message: "bob is not a break-glass member"},
		{name: "emergency over break-glass max", content: replace("duration: 4h", "duration: 2h") + "emergency: true\n", line: 5, col: 11, field: "duration", message: "exceeds the 1h maximum of orders-db/readwrite for emergencies"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := tc.path
			if path == "" {
				path = "requests/orders-db/x.yaml"
			}
			rep := Validate(testConfigFile(t),
				[]File{{Path: path, Data: []byte(tc.content), Size: int64(len(tc.content))}}, Options{Now: testNow})
			if rep.Config == nil {
				t.Fatalf("config invalid: %v", rep.Files[0].Diagnostics)
			}
			ds := rep.Files[1].Diagnostics
			if !ds.HasErrors() {
				t.Fatalf("accepted, want error %q", tc.message)
			}
			if rep.Files[1].Request != nil {
				t.Errorf("invalid file still yields a request")
			}
			for _, d := range ds {
				if d.File != path {
					t.Errorf("diagnostic names file %q, want %q", d.File, path)
				}
				if d.Message == "" {
					t.Errorf("diagnostic without message: %+v", d)
				}
			}
			wantDiag(t, ds, tc.message, tc.line, tc.col, tc.field, tc.hint)
		})
	}
	if len(cases) < 40 {
		t.Errorf("only %d bad inputs; the table must cover at least 40", len(cases))
	}
}

// wantDiag fails the test unless ds holds a diagnostic whose message
// contains message, at line:col of field (line 0: anywhere), with a hint
// that contains hint.
func wantDiag(t *testing.T, ds gitgrant.Diagnostics, message string, line, col int, field, hint string) {
	t.Helper()
	got := findDiag(ds, message)
	if got == nil {
		t.Fatalf("no diagnostic containing %q; got:\n%v", message, ds)
	}
	if line != 0 && (got.Line != line || got.Column != col || got.Field != field) {
		t.Errorf("%q at %d:%d field %q, want %d:%d field %q", got.Message, got.Line, got.Column, got.Field, line, col, field)
	}
	if !strings.Contains(got.Hint, hint) {
		t.Errorf("hint %q does not contain %q", got.Hint, hint)
	}
}

// loadGrantRequest loads a one-hour request for role on provider whose
// file starts with head (requester:, emergency:) and gives reason; it
// must load.
func loadGrantRequest(t *testing.T, head, provider, role, reason string) *gitgrant.Request {
	t.Helper()
	req, ds := LoadRequest("requests/"+provider+"/x.yaml", []byte(head+"grants: [{provider: "+provider+", role: "+role+"}]\nduration: 1h\nreason: "+reason+"\n"))
	if req == nil {
		t.Fatal(ds)
	}
	return req
}

func findDiag(ds gitgrant.Diagnostics, substr string) *gitgrant.Diagnostic {
	for i := range ds {
		if strings.Contains(ds[i].Message, substr) {
			return &ds[i]
		}
	}
	return nil
}

func readTestFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A provider that names people by email needs no principals entry: the
// identity's email is the principal.
func TestEmailPrincipal(t *testing.T) {
	t.Parallel()
	cfg, ds := LoadConfig("gitgrant.yaml", []byte(`identities:
  alice: {email: alice@example.com}
  bob: {}
providers:
  idp:
    type: okta
    org_url: https://example.okta.com
    api_token_env: OKTA_TOKEN
    principal: email
    roles:
      admins: {approvals: 1}
`))
	if cfg == nil {
		t.Fatal(ds)
	}
	c := NewPolicy(cfg, testNow)
	for who, wantErr := range map[string]bool{"alice": false, "bob": true} {
		got := c.Check(loadGrantRequest(t, "requester: "+who+"\n", "idp", "admins", "okta admin work"))
		if (findDiag(got, "has no principal on idp") != nil) != wantErr {
			t.Errorf("%s: %v (want an error: %v)", who, got, wantErr)
		}
	}
}

package audit

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/gitgrant/gitgrant"
)

// encodingJSON is what AppendJSON must equal: the standard encoder as
// cmd/gitgrant's writeJSONList used it.
func encodingJSON(e Event, prefix string) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent(prefix, "  ")
	if err := enc.Encode(e); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func checkEventJSON(t *testing.T, e Event, prefix string) {
	t.Helper()
	want, wantErr := encodingJSON(e, prefix)
	got, err := e.AppendJSON([]byte("kept"), prefix)
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("AppendJSON error %v, encoding/json error %v, for %#v", err, wantErr, e)
	}
	if err != nil {
		return
	}
	if !bytes.HasPrefix(got, []byte("kept")) {
		t.Fatalf("AppendJSON did not append: %q", got)
	}
	if got := got[len("kept"):]; !bytes.Equal(got, want) {
		t.Fatalf("AppendJSON differs from encoding/json for %#v\n got: %s\nwant: %s", e, got, want)
	}
}

func TestEventJSON(t *testing.T) {
	at := time.Date(2026, 11, 22, 9, 0, 0, 123, time.UTC)
	full := Event{Time: at, Event: Granted, Request: "requests/db/a.yaml", Requester: "alice", Beneficiary: "svc-bot",
		Grants: []gitgrant.GrantRef{{Provider: "db", Role: "ro"}, {Provider: "okta", Role: "admins"}}, Commit: "0123abcd", PullRequest: 42,
		Actor: "bob", ApprovedBy: []string{"carol", "dave"}, Until: at.Add(time.Hour).In(time.FixedZone("x", 3600)), Source: FromNote, Detail: "ok"}
	for name, e := range map[string]Event{
		"every field":         full,
		"omitted fields":      {Time: at, Event: Expired, Request: "requests/db/a.yaml", Source: FromInferred},
		"no grants":           {Time: at, Grants: []gitgrant.GrantRef{}, ApprovedBy: []string{}},
		"zero":                {},
		"escapes":             {Requester: "a\"b\\c", Detail: "a.yaml -> b.yaml & <c>\n\t\x01", Actor: "Zoë \u2028", Commit: "\xff\xfe", Source: "é"},
		"year out of range":   {Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
		"until out of range":  {Time: at, Until: time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)},
		"zone with seconds":   {Time: at.In(time.FixedZone("odd", 3600+30))},
		"negative pr":         {PullRequest: -7},
		"empty approver name": {ApprovedBy: []string{""}},
	} {
		t.Run(name, func(t *testing.T) {
			for _, prefix := range []string{"", "    "} {
				checkEventJSON(t, e, prefix)
			}
		})
	}
}

// FuzzEventJSON compares AppendJSON with encoding/json on events built
// from fuzzed strings, numbers and times.
func FuzzEventJSON(f *testing.F) {
	f.Add("alice", "requests/db/a.yaml", "db/ro okta/admins", "carol dave", "detail <&>", int64(1795000000), int64(5), 42, 3600)
	f.Add("\x00\"\\", "\u2028\u2029", "", "", "\xff", int64(-62135596801), int64(0), 0, -1)
	f.Add("é", "x", "a/b", " ", "", int64(253402300800), int64(999999999), -1, 86399)
	f.Fuzz(func(t *testing.T, who, path, grants, approvers, detail string, sec, nsec int64, pr, offset int) {
		at := time.Unix(sec, nsec).In(time.FixedZone("z", offset))
		e := Event{Time: at, Event: Kind(detail), Request: path, Requester: who, Beneficiary: who + path, Commit: detail,
			PullRequest: pr, Actor: who, Source: path, Detail: detail}
		if offset%2 == 0 {
			e.Until = at.Add(time.Duration(nsec))
		}
		if grants != "" {
			e.Grants = []gitgrant.GrantRef{}
			for _, g := range strings.Fields(grants) {
				p, r, _ := strings.Cut(g, "/")
				e.Grants = append(e.Grants, gitgrant.GrantRef{Provider: p, Role: r})
			}
		}
		if approvers != "" {
			e.ApprovedBy = strings.Split(approvers, " ")
		}
		checkEventJSON(t, e, "    ")
	})
}

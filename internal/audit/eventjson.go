package audit

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"
)

// AppendJSON appends e as `audit --output json` prints an event: the bytes
// encoding/json writes with SetEscapeHTML(false) and SetIndent(prefix, "  "),
// without the trailing newline. A cold audit of a long history prints
// tens of thousands of events, and reflection plus the second pass that
// indenting takes were a fifth of its time; FuzzEventJSON holds this to
// encoding/json byte for byte.
func (e *Event) AppendJSON(b []byte, prefix string) ([]byte, error) {
	w := jsonWriter{b: b, prefix: prefix}
	w.b = append(w.b, '{')
	w.key("time")
	w.time(e.Time)
	w.key("event")
	w.string(string(e.Event))
	w.key("request")
	w.string(e.Request)
	w.key("requester")
	w.string(e.Requester)
	w.key("beneficiary")
	w.string(e.Beneficiary)
	w.key("grants")
	switch {
	case e.Grants == nil:
		w.b = append(w.b, "null"...)
	case len(e.Grants) == 0:
		w.b = append(w.b, "[]"...)
	default:
		w.b = append(w.b, '[')
		for i, g := range e.Grants {
			if i > 0 {
				w.b = append(w.b, ',')
			}
			w.newline(2)
			w.b = append(w.b, '{')
			w.newline(3)
			w.b = append(w.b, `"provider": `...)
			w.string(g.Provider)
			w.b = append(w.b, ',')
			w.newline(3)
			w.b = append(w.b, `"role": `...)
			w.string(g.Role)
			w.newline(2)
			w.b = append(w.b, '}')
		}
		w.newline(1)
		w.b = append(w.b, ']')
	}
	w.key("commit")
	w.string(e.Commit)
	if e.PullRequest != 0 {
		w.key("pull_request")
		w.b = strconv.AppendInt(w.b, int64(e.PullRequest), 10)
	}
	if e.Actor != "" {
		w.key("actor")
		w.string(e.Actor)
	}
	if len(e.ApprovedBy) > 0 {
		w.key("approved_by")
		w.b = append(w.b, '[')
		for i, s := range e.ApprovedBy {
			if i > 0 {
				w.b = append(w.b, ',')
			}
			w.newline(2)
			w.string(s)
		}
		w.newline(1)
		w.b = append(w.b, ']')
	}
	if !e.Until.IsZero() {
		w.key("until")
		w.time(e.Until)
	}
	w.key("source")
	w.string(e.Source)
	if e.Detail != "" {
		w.key("detail")
		w.string(e.Detail)
	}
	w.newline(0)
	w.b = append(w.b, '}')
	return w.b, w.err
}

// jsonWriter appends one indented JSON object's members.
type jsonWriter struct {
	b       []byte
	prefix  string
	members int
	err     error
}

func (w *jsonWriter) newline(depth int) {
	w.b = append(w.b, '\n')
	w.b = append(w.b, w.prefix...)
	for range depth {
		w.b = append(w.b, "  "...)
	}
}

// key starts a member of the top-level object.
func (w *jsonWriter) key(name string) {
	if w.members > 0 {
		w.b = append(w.b, ',')
	}
	w.members++
	w.newline(1)
	w.b = append(w.b, '"')
	w.b = append(w.b, name...)
	w.b = append(w.b, `": `...)
}

// time writes t as time.Time's MarshalJSON does, failing as it does for a
// year outside 0–9999 (a forged commit date can hold one).
func (w *jsonWriter) time(t time.Time) {
	w.b = append(w.b, '"')
	b, err := t.AppendText(w.b)
	if err != nil && w.err == nil {
		w.err = err
	}
	if err == nil {
		w.b = b
	}
	w.b = append(w.b, '"')
}

// string writes s quoted. Printable ASCII without quotes or backslashes,
// which is nearly every name, path and hash, is copied; anything else
// goes through encoding/json, so escaping (control characters, U+2028,
// invalid UTF-8) is exactly its own.
func (w *jsonWriter) string(s string) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			if err := enc.Encode(s); err != nil && w.err == nil {
				w.err = err
			}
			w.b = append(w.b, bytes.TrimSuffix(buf.Bytes(), []byte("\n"))...)
			return
		}
	}
	w.b = append(w.b, '"')
	w.b = append(w.b, s...)
	w.b = append(w.b, '"')
}

package providers_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"testing"

	"github.com/gitgrant/gitgrant/providers"
)

// No way of printing or encoding an Account shows its password.
func TestAccountNeverShowsItsSecret(t *testing.T) {
	t.Parallel()
	const secret = "S3cretPassw0rdThatMustNotLeak0123456789"
	a := providers.Account{Name: "gg_reader_abc", Secret: secret,
		Connect: providers.Connection{Host: "db.internal", Port: 5432, Database: "orders", Kind: "postgres"}}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("created", "account", a)
	slog.New(slog.NewTextHandler(&logged, nil)).Info("created", "account", a)
	js, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{"slog": logged.String(), "json": string(js)}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d", "%T %v"} {
		outputs[verb] = fmt.Sprintf(verb, a)
		outputs[verb+" of a pointer"] = fmt.Sprintf(verb, &a)
		outputs[verb+" in a slice"] = fmt.Sprintf(verb, []providers.Account{a})
		outputs[verb+" in a struct"] = fmt.Sprintf(verb, struct{ A providers.Account }{a})
	}
	for what, out := range outputs {
		if strings.Contains(out, secret) {
			t.Errorf("%s shows the secret: %s", what, out)
		}
	}
	if !strings.Contains(outputs["%v"], "gg_reader_abc") || !strings.Contains(outputs["%v"], "db.internal:5432/orders") {
		t.Errorf("%%v = %q, want the name and where it connects", outputs["%v"])
	}
	if !strings.Contains(outputs["json"], `"name":"gg_reader_abc"`) {
		t.Errorf("JSON = %s, want the name", outputs["json"])
	}
}

func TestNewPassword(t *testing.T) {
	t.Parallel()
	valid := regexp.MustCompile(`^[A-Za-z0-9]{40}$`)
	seen := map[string]bool{}
	counts := map[rune]int{}
	for range 2000 {
		p := providers.NewPassword()
		if !valid.MatchString(p) || seen[p] {
			t.Fatalf("NewPassword = %q (seen before: %v)", p, seen[p])
		}
		seen[p] = true
		for _, r := range p {
			counts[r]++
		}
	}
	// 80,000 characters over 62 symbols: about 1,290 each. A symbol never
	// drawn, or drawn twice as often, is a broken generator.
	if len(counts) != 62 {
		t.Errorf("%d distinct characters, want 62", len(counts))
	}
	for r, n := range counts {
		if n < 900 || n > 1700 {
			t.Errorf("%q drawn %d times, want about 1,290", r, n)
		}
	}
}

func TestScrub(t *testing.T) {
	t.Parallel()
	base := errors.New("syntax error near 'IDENTIFIED BY \"hunter2\"'")
	got := providers.Scrub(fmt.Errorf("create: %w", base), "hunter2")
	if strings.Contains(got.Error(), "hunter2") || !strings.Contains(got.Error(), "[redacted]") {
		t.Errorf("Scrub = %q", got)
	}
	if errors.Is(got, base) {
		t.Error("the scrubbed error still wraps the one with the secret")
	}
	clean := errors.New("connection refused")
	if providers.Scrub(clean, "hunter2") != clean {
		t.Error("an error without the secret was replaced")
	}
	if providers.Scrub(nil, "x") != nil {
		t.Error("Scrub(nil) is not nil")
	}
}

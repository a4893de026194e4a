package gitgrant

import (
	"errors"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in   string
		want time.Duration
		err  bool
	}{
		{"30m", 30 * time.Minute, false},
		{"4h", 4 * time.Hour, false},
		{"2d", 48 * time.Hour, false},
		{"1w", 7 * 24 * time.Hour, false},
		{"1h30m", 90 * time.Minute, false},
		{"1w2d3h4m", (7*24+2*24+3)*time.Hour + 4*time.Minute, false},
		{"0m", 0, false},
		{"", 0, true},
		{"4", 0, true},
		{"h", 0, true},
		{"4s", 0, true},
		{"4H", 0, true},
		{"-4h", 0, true},
		{"1h1h", 0, true},
		{"4h ", 0, true},
		{"99999999999999999999w", 0, true},
		{"15251w", 0, true}, // over 292 years: overflows time.Duration
	}
	for _, tc := range cases {
		got, err := ParseDuration(tc.in)
		if (err != nil) != tc.err {
			t.Errorf("ParseDuration(%q) error = %v, want error %v", tc.in, err, tc.err)
			continue
		}
		if time.Duration(got) != tc.want {
			t.Errorf("ParseDuration(%q) = %v, want %v", tc.in, time.Duration(got), tc.want)
		}
	}
	if _, err := ParseDuration("4x"); !errors.Is(err, ErrDurationSyntax) {
		t.Errorf("syntax errors wrap ErrDurationSyntax, got %v", err)
	}
}

func TestDurationString(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"30m", "4h", "2d", "1w", "1h30m", "1w2d3h4m"} {
		d, err := ParseDuration(s)
		if err != nil {
			t.Fatal(err)
		}
		if d.String() != s {
			t.Errorf("ParseDuration(%q).String() = %q", s, d.String())
		}
	}
}

func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"30m", "4h", "1w2d3h4m", "99999999999w", "", "-1h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err != nil {
			return
		}
		if d < 0 {
			t.Fatalf("ParseDuration(%q) = %d, negative", s, d)
		}
		again, err := ParseDuration(d.String())
		if d > 0 && (err != nil || again != d) {
			t.Fatalf("round trip of %q: %q -> %v, %v", s, d.String(), again, err)
		}
	})
}

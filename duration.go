package gitgrant

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Duration is a length of access written as in request files: one or more
// <number><unit> parts with units m (minutes), h (hours), d (days) and w
// (weeks), such as 30m, 4h, 2d, 1w or 1h30m. Days are 24 hours: access is
// measured in elapsed time, not calendar days.
type Duration time.Duration

const (
	Day  = 24 * time.Hour
	Week = 7 * Day
)

var durationUnits = map[byte]time.Duration{'m': time.Minute, 'h': time.Hour, 'd': Day, 'w': Week}

// ErrDurationSyntax is wrapped by every ParseDuration error.
var ErrDurationSyntax = errors.New(`write a duration as a number and a unit: 30m, 4h, 2d, 1w (units m, h, d, w; parts may be combined, as in 1h30m)`)

// ParseDuration parses the request-file duration syntax.
func ParseDuration(s string) (Duration, error) {
	if s == "" {
		return 0, fmt.Errorf("empty duration: %w", ErrDurationSyntax)
	}
	var total time.Duration
	seen := map[byte]bool{}
	for i := 0; i < len(s); {
		j := i
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		if j == i || j == len(s) {
			return 0, fmt.Errorf("%q is not a duration: %w", s, ErrDurationSyntax)
		}
		unit, ok := durationUnits[s[j]]
		if !ok {
			return 0, fmt.Errorf("%q has unknown unit %q: %w", s, s[j], ErrDurationSyntax)
		}
		if seen[s[j]] {
			return 0, fmt.Errorf("%q names unit %q twice: %w", s, s[j], ErrDurationSyntax)
		}
		seen[s[j]] = true
		n, err := strconv.ParseInt(s[i:j], 10, 64)
		if err != nil || n > int64((1<<63-1)/unit) || total > time.Duration(1<<63-1)-time.Duration(n)*unit {
			return 0, fmt.Errorf("%q is too long a duration", s)
		}
		total += time.Duration(n) * unit
		i = j + 1
	}
	return Duration(total), nil
}

// String formats d in the request-file syntax, largest units first.
func (d Duration) String() string {
	if d == 0 {
		return "0m"
	}
	left := time.Duration(d)
	var b strings.Builder
	if left < 0 {
		b.WriteByte('-')
		left = -left
	}
	for _, u := range []struct {
		unit time.Duration
		name byte
	}{{Week, 'w'}, {Day, 'd'}, {time.Hour, 'h'}, {time.Minute, 'm'}} {
		if n := left / u.unit; n > 0 {
			b.WriteString(strconv.FormatInt(int64(n), 10))
			b.WriteByte(u.name)
			left -= n * u.unit
		}
	}
	if left > 0 { // sub-minute remainders only arise from arithmetic, not parsing
		b.WriteString(left.String())
	}
	return b.String()
}

// MarshalJSON writes the duration in the request-file syntax.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads the request-file syntax.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := ParseDuration(s)
	*d = v
	return err
}

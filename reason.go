package gitgrant

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// A reason is what approvers read and what the audit trail keeps about
// why access was needed, so it must say something: at least one letter or
// digit (a reason of spaces or dashes says nothing), and as many
// characters as policy.min_reason_length asks, counted by ReasonLength.

// ReasonHasWords reports whether reason holds a letter or a digit.
func ReasonHasWords(reason string) bool {
	return strings.IndexFunc(reason, func(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }) >= 0
}

// ReasonLength counts the characters of reason as policy.min_reason_length
// does: white space at either end does not count, and a run of white space
// inside counts as one, so that padding cannot make a short reason long.
func ReasonLength(reason string) int {
	fields := strings.Fields(reason)
	n := 0
	for _, f := range fields {
		n += utf8.RuneCountInString(f)
	}
	if len(fields) > 1 {
		n += len(fields) - 1
	}
	return n
}

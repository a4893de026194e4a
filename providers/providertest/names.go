package providertest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
)

// UniquePrefix is a prefix for the names one test makes on a shared
// server ("gg" and eight hex digits), so that parallel tests and earlier
// runs never meet.
func UniquePrefix() string {
	b := make([]byte, 4)
	rand.Read(b)
	return "gg" + hex.EncodeToString(b)
}

// Numbered is n principal names, format filled with 0, 1, ... n-1
// ("dev%02d@example.com"), and then extra.
func Numbered(format string, n int, extra ...string) []string {
	out := make([]string, 0, n+len(extra))
	for i := range n {
		out = append(out, fmt.Sprintf(format, i))
	}
	return append(out, extra...)
}

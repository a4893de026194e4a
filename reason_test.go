package gitgrant

import "testing"

func TestReasonRules(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		reason string
		words  bool
		length int
	}{
		{"Repair stuck orders", true, 19},
		{"  fix \n\t  it  ", true, 6},
		{"     ", false, 0},
		{"... -- !!", false, 9},
		{"INC-1", true, 5},
		{"réparer", true, 7},
		{"修复订单", true, 4},
		{"", false, 0},
	} {
		if got := ReasonHasWords(tt.reason); got != tt.words {
			t.Errorf("ReasonHasWords(%q) = %v, want %v", tt.reason, got, tt.words)
		}
		if got := ReasonLength(tt.reason); got != tt.length {
			t.Errorf("ReasonLength(%q) = %d, want %d", tt.reason, got, tt.length)
		}
	}
}

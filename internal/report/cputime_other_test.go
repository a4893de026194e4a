//go:build !unix

package report

import "time"

// cpuTime is unknown here: the CPU ratios read NaN.
func cpuTime() time.Duration { return 0 }

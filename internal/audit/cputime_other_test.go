//go:build !unix

package audit

import "time"

// cpuTime is not measured here: the CPU ratio reads 0.
func cpuTime() time.Duration { return 0 }

//go:build !unix

package overhead

import "time"

// processCPU is not measured here: Result.CPU stays 0.
func processCPU() (time.Duration, bool) { return 0, false }

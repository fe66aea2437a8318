//go:build !linux

package gclab

import "os"

// peakRSS is 0 (unknown) outside Linux: ru_maxrss is in bytes on some
// systems, KiB on others, absent on Windows.
func peakRSS(*os.ProcessState) int64 { return 0 }

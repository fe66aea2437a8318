//go:build !linux

package gclab

// peakRSS is 0 (unknown) outside Linux: no /proc/self/status VmHWM.
func peakRSS() int64 { return 0 }

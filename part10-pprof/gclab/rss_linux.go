package gclab

import (
	"os"
	"syscall"
)

// peakRSS is the ended process's ru_maxrss, which Linux reports in KiB.
func peakRSS(ps *os.ProcessState) int64 {
	if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
		return ru.Maxrss << 10
	}
	return 0
}

package gclab

import (
	"os"
	"strconv"
	"strings"
)

// peakRSS is this process's largest resident set in bytes, VmHWM of
// /proc/self/status (0 if unreadable). The child reads it itself: getrusage's
// ru_maxrss for a child (os.ProcessState.SysUsage) is at least the parent's
// peak, since Linux carries the memory the child was started from (the
// parent's, shared until exec) into the figure.
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "VmHWM:" && f[2] == "kB" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

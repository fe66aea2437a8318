package gclab

import (
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// PeakRSS is the child's own, read by the child (VmHWM). getrusage's
// ru_maxrss for a child, which the parent read before, is at least the
// parent's peak: Linux counts into it the memory the child was started from,
// the parent's until exec.
func TestPeakRSSIsTheChildsOwn(t *testing.T) {
	ballast := make([]byte, 128<<20)
	for i := range ballast {
		ballast[i] = 1
	}
	runtime.KeepAlive(ballast)
	exe, err := os.Executable()
	require.NoError(t, err)
	r, err := Exec(t.Context(), exe, Setting{}, Workload{AllocMiB: 1, LiveMiB: 1})
	require.NoError(t, err)
	assert.Positive(t, r.Stats.PeakRSS)
	assert.Less(t, r.Stats.PeakRSS, int64(64<<20), "a 1 MiB child, its parent past 128 MiB resident")

	cmd := exec.CommandContext(t.Context(), exe) // a child that exits at once (TestMain)
	cmd.Env = append(os.Environ(), envFakeChild+"=")
	require.NoError(t, cmd.Run())
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	require.True(t, ok)
	maxrss := int64(ru.Maxrss) << 10 // KiB on Linux
	assert.GreaterOrEqual(t, maxrss, int64(128<<20), "ru_maxrss of a child that exits at once: the parent's peak")
	t.Logf("1 MiB child, its own peak (VmHWM): %.1f MiB; a child that exits at once, by getrusage: %.1f MiB (the parent touched 128 MiB)",
		float64(r.Stats.PeakRSS)/(1<<20), float64(maxrss)/(1<<20))
}

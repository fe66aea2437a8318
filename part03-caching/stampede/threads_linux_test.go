package stampede

import (
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestBlockingSyscallHoldsAnOSThread is the control for TestBlockedCallersHoldNoOSThread:
// it shows the thread count does move when goroutines really hold OS threads. A
// goroutine blocked in a raw read(2) keeps its thread, and the scheduler starts new
// ones to run the rest. The runtime keeps idle threads for reuse, so the test blocks
// as many goroutines as there are threads already, plus 20: at least 20 new threads.
func TestBlockingSyscallHoldsAnOSThread(t *testing.T) {
	n := liveThreads(t) + 20
	threads := pprof.Lookup("threadcreate")
	before := threads.Count()
	var wg sync.WaitGroup
	writers := make([]int, n)
	for i := range n {
		var fds [2]int
		require.NoError(t, syscall.Pipe(fds[:]))
		writers[i] = fds[1]
		wg.Go(func() {
			defer syscall.Close(fds[0])
			var b [1]byte
			_, _ = syscall.Read(fds[0], b[:]) // blocks this OS thread until the write below
		})
	}
	require.Eventually(t, func() bool { return threads.Count()-before >= 20 }, 10*time.Second, time.Millisecond,
		"goroutines blocked in read(2) did not hold OS threads")
	t.Logf("%d goroutines blocked in read(2): %d OS threads created", n, threads.Count()-before)
	for _, w := range writers {
		_, _ = syscall.Write(w, []byte{1})
		_ = syscall.Close(w)
	}
	wg.Wait()
}

// liveThreads reads the process's thread count from /proc/self/status.
func liveThreads(t *testing.T) int {
	b, err := os.ReadFile("/proc/self/status")
	require.NoError(t, err)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Threads:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			require.NoError(t, err)
			return n
		}
	}
	t.Fatal("no Threads: line in /proc/self/status")
	return 0
}

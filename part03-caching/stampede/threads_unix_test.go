//go:build unix

package stampede

import (
	"runtime/pprof"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestBlockingSyscallHoldsAnOSThread is the control for TestBlockedCallersHoldNoOSThread:
// it shows the thread count does move when goroutines really hold OS threads. A
// goroutine blocked in a raw read(2) keeps its thread, and the scheduler starts new
// ones to run the rest, so 20 such goroutines create about 20 threads.
func TestBlockingSyscallHoldsAnOSThread(t *testing.T) {
	const n = 20
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
	require.Eventually(t, func() bool { return threads.Count()-before >= n/2 }, 10*time.Second, time.Millisecond,
		"goroutines blocked in read(2) did not hold OS threads")
	t.Logf("%d goroutines blocked in read(2): %d OS threads created", n, threads.Count()-before)
	for _, w := range writers {
		_, _ = syscall.Write(w, []byte{1})
		_ = syscall.Close(w)
	}
	wg.Wait()
}

package zerocopy

import (
	"io"
	"net"
	"os"
	"runtime"
	"syscall"
	"testing"
)

// threadCPU is the calling thread's user and system CPU time so far, in ns
// (getrusage RUSAGE_THREAD, Linux).
func threadCPU() (user, sys int64) {
	const rusageThread = 1 // RUSAGE_THREAD in <sys/resource.h>
	var ru syscall.Rusage
	_ = syscall.Getrusage(rusageThread, &ru)
	return ru.Utime.Nano(), ru.Stime.Nano()
}

// sent is one file sent: its bytes and the sending thread's CPU time.
type sent struct {
	n         int64
	user, sys int64
	err       error
}

// serveMeasured accepts connections on ln and sends each the file with
// send, from a goroutine locked to its thread, so that thread's CPU time
// is the sender's alone (the receiver, the scheduler's other work and the
// other tests do not count).
func serveMeasured(ln net.Listener, send func(net.Conn) (int64, error), out chan<- sent) {
	for {
		c, err := ln.Accept()
		if err != nil {
			close(out)
			return
		}
		go func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			u0, s0 := threadCPU()
			n, err := send(c)
			u1, s1 := threadCPU()
			_ = c.Close()
			out <- sent{n, u1 - u0, s1 - s0, err}
		}()
	}
}

// BenchmarkServeFile sends a 64 MiB file from the page cache (read once
// before the clock starts; 64 MiB is far below the machine's memory) over
// loopback to a receiver that reads it into a 1 MiB buffer and drops it.
// The figure that matters is the sender's CPU time: sender-cpu-ns/op, and
// its user and system parts, measured on the sending thread alone
// (getrusage RUSAGE_THREAD); receiver-cpu-ns/op is the receiving thread's,
// measured the same way. ns/op is the wall time of the whole transfer,
// which on loopback is bounded by the receiver's copy out of the socket and,
// on a shared 2-core machine, by who else runs: it says little about the
// sender.
//
//	impl=ours              io.Copy(conn, file): sendfile(2)
//	impl=readwrite         read(2) into a 32 KiB buffer (io.Copy's), write(2) it out
//	impl=readwrite-1MiB    the same loop with a 1 MiB buffer: 32 times fewer system calls
func BenchmarkServeFile(b *testing.B) {
	const size = 64 << 20
	path, _ := file(b, size)
	warm, err := os.ReadFile(path) // into the page cache
	if err != nil || len(warm) != size {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		send func(net.Conn) (int64, error)
	}{
		{"impl=ours/size=64MiB", func(c net.Conn) (int64, error) { return Send(c, path, Sendfile) }},
		{"impl=readwrite/size=64MiB", func(c net.Conn) (int64, error) { return Send(c, path, ReadWrite) }},
		{"impl=readwrite-1MiB/size=64MiB", func(c net.Conn) (int64, error) { return SendBuffer(c, path, make([]byte, 1<<20)) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			results := make(chan sent, 1)
			go serveMeasured(ln, c.send, results)
			defer func() {
				_ = ln.Close()
				for range results { // until serveMeasured returns
				}
			}()
			buf := make([]byte, 1<<20)
			var user, sys, recv int64
			runtime.LockOSThread() // the receiver's CPU time too, for comparison
			defer runtime.UnlockOSThread()
			b.SetBytes(size)
			for b.Loop() {
				conn, err := net.Dial("tcp", ln.Addr().String())
				if err != nil {
					b.Fatal(err)
				}
				u0, s0 := threadCPU()
				n, err := io.CopyBuffer(struct{ io.Writer }{io.Discard}, conn, buf) // the wrapper keeps io.Discard's own 8 KiB reads out
				u1, s1 := threadCPU()
				recv += u1 - u0 + s1 - s0
				_ = conn.Close()
				s := <-results
				if err != nil || s.err != nil || n != size || s.n != size {
					b.Fatalf("received %d, sent %d bytes of %d: %v, %v", n, s.n, size, err, s.err)
				}
				user += s.user
				sys += s.sys
			}
			b.ReportMetric(float64(user+sys)/float64(b.N), "sender-cpu-ns/op")
			b.ReportMetric(float64(user)/float64(b.N), "sender-user-ns/op")
			b.ReportMetric(float64(sys)/float64(b.N), "sender-sys-ns/op")
			b.ReportMetric(float64(recv)/float64(b.N), "receiver-cpu-ns/op")
		})
	}
}

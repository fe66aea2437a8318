// Package leakcheck is goleak with a settle window. goleak retries for about
// 0.4 s before it calls a goroutine leaked, and some teardown is asynchronous
// (a closed client's connection goroutines, a stopped server's handlers, a
// killed child's pipe readers); on a loaded 2-core CI machine that can take
// longer. A goroutine still running after the window is a leak; one that ends
// within it is not, so the window loses no leak: it only stops reporting slow
// teardown as one. etcd's own leak check (client/pkg/testutil) waits the same way.
package leakcheck

import (
	"fmt"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// Settle is how long Find waits for goroutines to end before it reports them.
const Settle = 5 * time.Second

// Find returns goleak's report of the goroutines still running after settle,
// or nil as soon as none are left.
func Find(settle time.Duration, opts ...goleak.Option) error {
	deadline := time.Now().Add(settle)
	for {
		err := goleak.Find(opts...)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// VerifyNone fails t if goroutines are still running after Settle; call it
// deferred at the start of a test.
func VerifyNone(t testing.TB, opts ...goleak.Option) {
	t.Helper()
	if err := Find(Settle, opts...); err != nil {
		t.Error(err)
	}
}

// VerifyTestMain runs the tests and, if they passed, fails the run when
// goroutines are still running after Settle: TestMain(m) { leakcheck.VerifyTestMain(m) }.
func VerifyTestMain(m *testing.M, opts ...goleak.Option) {
	code := m.Run()
	if code == 0 {
		if err := Find(Settle, opts...); err != nil {
			fmt.Fprintln(os.Stderr, "goleak: Errors on successful test run:", err)
			code = 1
		}
	}
	os.Exit(code)
}

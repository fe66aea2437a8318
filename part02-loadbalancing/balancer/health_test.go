package balancer

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeProbe answers each backend's probe from a switch the test flips.
type fakeProbe struct {
	mu   sync.Mutex
	down map[string]bool
	hang map[string]bool
}

func (f *fakeProbe) set(name string, down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down[name] = down
}

func (f *fakeProbe) probe(ctx context.Context, b *Backend) error {
	f.mu.Lock()
	down, hang := f.down[b.Name], f.hang[b.Name]
	f.mu.Unlock()
	if hang {
		<-ctx.Done()
		return ctx.Err()
	}
	if down {
		return errors.New("connection refused")
	}
	return nil
}

// With interval 1 s, rise 2 and fall 3 (in fake time): a backend that stops
// answering is ejected at the third failed probe and readmitted at the
// second good one, and OnChange sees both.
func TestCheckerEjectsAndReadmits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bs := backends(1, 1, 1)
		p := newPool(t, new(RoundRobin), bs...)
		f := &fakeProbe{down: map[string]bool{}, hang: map[string]bool{}}
		var changes []string
		c := &Checker{Pool: p, Probe: f.probe, Interval: time.Second, Rise: 2, Fall: 3,
			OnChange: func(b *Backend, healthy bool) {
				changes = append(changes, b.Name+map[bool]string{true: " up", false: " down"}[healthy])
			}}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { defer close(done); c.Run(ctx) }()

		synctest.Wait() // round 0 at t=0: all good
		f.set("b2", true)
		for round := 1; round <= 2; round++ {
			time.Sleep(time.Second)
			synctest.Wait()
			assert.True(t, bs[1].Healthy(), "round %d: %d failure(s) < fall 3", round, round)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		assert.False(t, bs[1].Healthy(), "third failure: ejected")
		assert.Equal(t, []*Backend{bs[0], bs[2]}, p.Healthy())

		f.set("b2", false)
		time.Sleep(time.Second)
		synctest.Wait()
		assert.False(t, bs[1].Healthy(), "one good probe < rise 2")
		time.Sleep(time.Second)
		synctest.Wait()
		assert.True(t, bs[1].Healthy(), "second good probe: readmitted")

		cancel()
		<-done
		assert.Equal(t, []string{"b2 down", "b2 up"}, changes)
	})
}

// A probe that hangs counts as a failure after Timeout and holds no other
// backend's verdict.
func TestCheckerHangingProbe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bs := backends(1, 1, 1)
		p := newPool(t, new(RoundRobin), bs...)
		f := &fakeProbe{down: map[string]bool{}, hang: map[string]bool{"b3": true}}
		c := &Checker{Pool: p, Probe: f.probe, Interval: time.Second, Timeout: 100 * time.Millisecond, Rise: 3, Fall: 2}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { defer close(done); c.Run(ctx) }()
		time.Sleep(200 * time.Millisecond) // round 0 is over (b3's probe took its 100 ms)
		synctest.Wait()
		assert.True(t, bs[2].Healthy(), "one failure < fall 2")
		time.Sleep(time.Second)
		synctest.Wait()
		assert.False(t, bs[2].Healthy(), "b3's probe timed out twice: ejected")
		assert.True(t, bs[0].Healthy())
		assert.True(t, bs[1].Healthy())
		cancel()
		<-done
	})
}

// A passive ejection lasts its time and ends by itself (no checker needed);
// the checker's verdict is separate and keeps a backend out past it.
func TestPassiveEjection(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bs := backends(1, 1)
		p := newPool(t, new(RoundRobin), bs...)
		assert.True(t, p.Eject(bs[0], time.Second))
		assert.False(t, p.Eject(bs[0], time.Second), "already ejected")
		assert.False(t, p.Eject(bs[1], 0), "no duration, no ejection")
		assert.Equal(t, []*Backend{bs[1]}, p.Healthy())
		time.Sleep(time.Second)
		synctest.Wait()
		assert.True(t, bs[0].Healthy(), "back after 1 s")
		assert.Len(t, p.Healthy(), 2)

		p.SetHealthy(bs[0], false) // the checker's verdict
		p.Eject(bs[0], time.Second)
		time.Sleep(2 * time.Second)
		synctest.Wait()
		assert.False(t, bs[0].Healthy(), "the ejection ended, the checker's verdict holds")
		p.SetHealthy(bs[0], true)
		assert.True(t, bs[0].Healthy())
	})
}

// Passive ejection never empties the pool: at most MaxEjectionPercent of
// the backends (at least one) is ejected at once, never the last one taking
// requests, and when nothing else is left Pick falls back to the ejected
// backends the checker has not ruled out.
func TestEjectionNeverEmptiesThePool(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		one := backends(1)
		assert.False(t, newPool(t, new(RoundRobin), one...).Eject(one[0], time.Hour), "the only backend")

		two := backends(1, 1)
		p := newPool(t, new(RoundRobin), two...)
		require.True(t, p.Eject(two[0], time.Hour))
		assert.False(t, p.Eject(two[1], time.Hour), "the last one taking requests")
		got, err := p.Pick("", two[1])
		require.NoError(t, err)
		assert.Same(t, two[0], got, "a retry after b2 refused goes to the ejected b1 rather than fail")
		p.SetHealthy(two[0], false)
		_, err = p.Pick("", two[1])
		assert.ErrorIs(t, err, ErrNoBackend, "not to a backend the checker ruled out")

		twenty := backends(slices.Repeat([]int{1}, 20)...)
		p = newPool(t, new(RoundRobin), twenty...)
		ejected := 0
		for _, b := range twenty {
			if p.Eject(b, time.Hour) {
				ejected++
			}
		}
		assert.Equal(t, 20*MaxEjectionPercent/100, ejected, "MaxEjectionPercent of 20")
		time.Sleep(time.Hour)
		synctest.Wait()
	})
}

// An ejection ends early when a health probe passes or a request to the
// backend succeeds (Readmit); the timer of a lifted ejection does not end
// a later one.
func TestEjectionIsLiftedByAPassingProbe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bs := backends(1, 1, 1)
		p := newPool(t, new(RoundRobin), bs...)
		require.True(t, p.Eject(bs[0], 10*time.Second))
		ctx, cancel := context.WithCancel(t.Context())
		f := &fakeProbe{down: map[string]bool{}, hang: map[string]bool{}}
		done := make(chan struct{})
		go func() {
			defer close(done)
			(&Checker{Pool: p, Probe: f.probe, Interval: time.Second}).Run(ctx)
		}()
		synctest.Wait()
		assert.True(t, bs[0].Healthy(), "the first probe passed: back at once, not after 10 s")
		cancel()
		<-done

		require.True(t, p.Eject(bs[0], 10*time.Second))
		assert.True(t, p.Readmit(bs[0]))
		assert.False(t, p.Readmit(bs[0]), "not ejected any more")
		time.Sleep(5 * time.Second)
		require.True(t, p.Eject(bs[0], 10*time.Second))
		time.Sleep(6 * time.Second) // the first ejection's timer fires here
		synctest.Wait()
		assert.False(t, bs[0].Healthy(), "the second ejection lasts its own 10 s")
		time.Sleep(5 * time.Second)
		synctest.Wait()
		assert.True(t, bs[0].Healthy())
	})
}

func TestRefused(t *testing.T) {
	op := func(err error) error {
		return &net.OpError{Op: "dial", Net: "tcp", Err: &os.SyscallError{Syscall: "connect", Err: err}}
	}
	for _, tt := range []struct {
		err  error
		want bool
	}{
		{op(syscall.ECONNREFUSED), true},
		{op(syscall.EHOSTUNREACH), true},
		{op(syscall.ECONNRESET), true},
		{fmt.Errorf("b1: %w", op(syscall.ECONNREFUSED)), true},
		{&net.OpError{Op: "dial", Err: os.ErrDeadlineExceeded}, true},
		{op(syscall.EADDRNOTAVAIL), false}, // out of local ports: not the backend's fault
		{op(syscall.EMFILE), false},
		{errors.New("EOF"), false},
	} {
		assert.Equal(t, tt.want, Refused(tt.err), "%v", tt.err)
	}
}

func TestHTTPProbe(t *testing.T) {
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(status)
	}))
	defer srv.Close()
	b := NewBackend("b", strings.TrimPrefix(srv.URL, "http://"), 1)
	probe := HTTPProbe(srv.Client(), "/healthz")
	require.NoError(t, probe(t.Context(), b))
	status = http.StatusServiceUnavailable // a process that is up but cannot serve
	assert.ErrorContains(t, probe(t.Context(), b), "status 503")
	srv.Close()
	assert.Error(t, probe(t.Context(), b), "nothing listens")
}

// A probe lifts only an ejection that began before it was sent. b1 passes a
// probe that takes 400 ms; 100 ms into it, a proxy sees b1 refuse a
// connection and ejects it. The probe's answer says nothing about that
// refusal, so b1 stays out until a probe sent after the ejection passes. It
// used to be readmitted by the stale answer 300 ms after its ejection.
func TestStaleProbeDoesNotLiftAnEjection(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bs := backends(1, 1, 1)
		p := newPool(t, new(RoundRobin), bs...)
		slow := func(ctx context.Context, b *Backend) error {
			select {
			case <-time.After(400 * time.Millisecond):
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() {
			defer close(done)
			(&Checker{Pool: p, Probe: slow, Interval: time.Second, Timeout: 500 * time.Millisecond}).Run(ctx)
		}()
		time.Sleep(100 * time.Millisecond)
		require.True(t, p.Eject(bs[0], 10*time.Second))
		time.Sleep(400 * time.Millisecond) // the first round is over
		synctest.Wait()
		assert.False(t, bs[0].Healthy(), "a probe sent before the ejection does not lift it")
		time.Sleep(time.Second) // the second round, sent after the ejection, passes
		synctest.Wait()
		assert.True(t, bs[0].Healthy(), "a probe sent after the ejection lifts it")
		cancel()
		<-done
	})
}

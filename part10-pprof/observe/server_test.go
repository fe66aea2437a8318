package observe

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"go.uber.org/goleak"

	"github.com/sysdesign-masterclass/golang/internal/leakcheck"
)

// TestMain checks for leaked goroutines, except the one
// TestArticleExporterCannotBeStopped starts to show that it cannot be stopped.
func TestMain(m *testing.M) {
	leakcheck.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/sysdesign-masterclass/golang/part10-pprof/observe.articleExporterLoop.func1"))
}

var client = &http.Client{Timeout: 30 * time.Second}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	return getAs(t, url, "")
}

// getAs is get with the request's Host header set to host ("": the URL's).
func getAs(t *testing.T, url, host string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	require.NoError(t, err)
	req.Host = host
	resp, err := client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

func TestCheckAddr(t *testing.T) {
	for _, tt := range []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:6060", true},
		{"127.0.0.2:6060", true}, // all of 127/8 is loopback
		{"[::1]:6060", true},
		{"localhost:6060", true},
		{"localhost:0", true},
		{":6060", false}, // every interface: what the article's app server does
		{"0.0.0.0:6060", false},
		{"[::]:6060", false},
		{"192.0.2.2:6060", false},
		{"[fd00::2]:6060", false},
		{"example.com:6060", false}, // names other than localhost are not resolved
	} {
		err := CheckAddr(tt.addr)
		if tt.ok {
			assert.NoError(t, err, tt.addr)
		} else {
			assert.ErrorIs(t, err, ErrNotLoopback, tt.addr)
		}
	}
	err := CheckAddr("6060")
	assert.ErrorContains(t, err, `pprof address "6060": address 6060: missing port in address`)
	assert.NotErrorIs(t, err, ErrNotLoopback)
}

// Listen refuses every interface and routable addresses unless AllowRemote
// is set; it opens nothing when it refuses.
func TestListenRefusesNonLoopback(t *testing.T) {
	for _, addr := range []string{":0", "0.0.0.0:0", "[::]:0"} {
		_, err := Listen(Config{Addr: addr})
		assert.ErrorIs(t, err, ErrNotLoopback, addr)
	}
	s, err := Listen(Config{Addr: "0.0.0.0:0", AllowRemote: true})
	require.NoError(t, err, "AllowRemote: the caller's explicit choice")
	assert.False(t, s.ln.Addr().(*net.TCPAddr).IP.IsLoopback())
	require.NoError(t, s.Close())
}

// The server listens on loopback only: every other address of this machine
// refuses the connection.
func TestNotReachableFromOtherInterfaces(t *testing.T) {
	s, err := Listen(Config{Addr: "127.0.0.1:0"})
	require.NoError(t, err)
	defer s.Close()
	_, port, err := net.SplitHostPort(s.Addr())
	require.NoError(t, err)
	addrs, err := net.InterfaceAddrs()
	require.NoError(t, err)
	tried := 0
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || ipn.IP.IsLoopback() || ipn.IP.IsLinkLocalUnicast() {
			continue
		}
		tried++
		c, err := net.DialTimeout("tcp", net.JoinHostPort(ipn.IP.String(), port), 5*time.Second)
		if err == nil {
			c.Close()
		}
		assert.Error(t, err, "the pprof port answered on %v", ipn.IP)
	}
	t.Logf("dialled the pprof port on %d non-loopback addresses of this machine: all refused", tried)
	// And on loopback it answers.
	c, err := net.DialTimeout("tcp", s.Addr(), 5*time.Second)
	require.NoError(t, err)
	c.Close()
}

// Listen reports a port that is already taken.
func TestListenReportsABusyPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	_, err = Listen(Config{Addr: ln.Addr().String()})
	assert.ErrorContains(t, err, "address already in use")
}

// The article's StartObservabilityStack starts pprof in a goroutine and drops
// ListenAndServe's error: with the port taken it returns as if all were well,
// and the port answers with whatever holds it. This models that shape.
func TestArticleStackHidesAListenError(t *testing.T) {
	squatter := httptest.NewServer(http.NotFoundHandler()) // the port is someone else's
	defer squatter.Close()
	addr := strings.TrimPrefix(squatter.URL, "http://")

	failed := make(chan error, 1)
	articleStart := func(addr string) { // the article's shape: no error comes back
		go func() { failed <- http.ListenAndServe(addr, nil) }()
	}
	articleStart(addr) // returns; nothing says pprof is missing
	select {
	case err := <-failed: // only this test's extra channel sees it
		assert.ErrorContains(t, err, "address already in use")
	case <-time.After(30 * time.Second):
		require.FailNow(t, "ListenAndServe on a taken port did not fail")
	}
	code, _ := get(t, "http://"+addr+"/debug/pprof/")
	assert.Equal(t, http.StatusNotFound, code, "the caller believes pprof is at %s; it is not", addr)
}

// The article serves its application with http.ListenAndServe(":8080", nil),
// i.e. DefaultServeMux on every interface, in a program that imports
// net/http/pprof: the profiles are on the public port. The import alone puts
// them there; this package imports net/http/pprof too, so DefaultServeMux in
// this test binary has them.
func TestArticleAppPortServesPprof(t *testing.T) {
	app := httptest.NewServer(http.DefaultServeMux) // the article's handler: nil
	defer app.Close()
	code, body := get(t, app.URL+"/debug/pprof/cmdline")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, strings.Join(os.Args, "\x00"), body, "the application port hands out the command line")
	code, body = get(t, app.URL+"/debug/pprof/goroutine?debug=1")
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, "goroutine profile: total")

	// An application mux of its own does not.
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(http.ResponseWriter, *http.Request) {})
	own := httptest.NewServer(mux)
	defer own.Close()
	code, _ = get(t, own.URL+"/debug/pprof/cmdline")
	assert.Equal(t, http.StatusNotFound, code)
}

var profileLink = regexp.MustCompile(`href='([a-z]+)\?debug=1'`)

// The index lists more than the article's six endpoints: allocs and
// threadcreate beside heap, goroutine, block and mutex, plus cmdline,
// profile, symbol and trace.
func TestIndexListsEveryProfile(t *testing.T) {
	srv := httptest.NewServer(Handler(NewExporter()))
	defer srv.Close()
	code, body := get(t, srv.URL+"/debug/pprof/")
	require.Equal(t, http.StatusOK, code)
	var names []string
	for _, m := range profileLink.FindAllStringSubmatch(body, -1) {
		names = append(names, m[1])
	}
	assert.Subset(t, names, []string{"allocs", "block", "goroutine", "heap", "mutex", "threadcreate"})
	for _, p := range []string{"cmdline", "profile", "symbol", "trace"} {
		assert.Contains(t, body, "href='"+p, "index links %s", p)
	}
	code, body = get(t, srv.URL+"/debug/runtime")
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, "goroutines=")
	code, _ = get(t, srv.URL+"/debug/pprof/heap?debug=1")
	assert.Equal(t, http.StatusOK, code)
}

// blockedOnChannel and contendedMutex make block and mutex events under
// names this test can look for.
//
//go:noinline
func blockedOnChannel() {
	ch := make(chan int)
	go func() { time.Sleep(20 * time.Millisecond); ch <- 1 }()
	<-ch
}

//go:noinline
func contendedMutex() {
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 200 {
				mu.Lock()
				time.Sleep(10 * time.Microsecond)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}

func profileText(t *testing.T, base, name string) string {
	t.Helper()
	code, body := get(t, base+"/debug/pprof/"+name+"?debug=1")
	require.Equal(t, http.StatusOK, code)
	return body
}

// events is the number of events a block or mutex profile (debug=1) holds in
// records whose stack has fn. The profiles accumulate for the life of the
// process, so a test compares counts (under -count, earlier runs' records
// are still there).
func events(t *testing.T, base, name, fn string) int64 {
	t.Helper()
	var n, rec int64 // rec: the count of the record being read, until its stack has fn
	for l := range strings.Lines(profileText(t, base, name)) {
		if f := strings.Fields(l); len(f) > 2 && f[2] == "@" {
			c, err := strconv.ParseInt(f[1], 10, 64)
			require.NoError(t, err, "%q", l)
			rec = c
		} else if strings.HasPrefix(l, "#") && strings.Contains(l, "."+fn) {
			n, rec = n+rec, 0
		}
	}
	return n
}

// The article lists /debug/pprof/block and /debug/pprof/mutex with an
// overhead, as if they were on. At the runtime's defaults they record
// nothing; Serve sets the rates, and the same events then appear.
func TestArticleBlockAndMutexProfilesAreEmptyByDefault(t *testing.T) {
	runtime.SetBlockProfileRate(0)
	prev := runtime.SetMutexProfileFraction(0)
	defer runtime.SetMutexProfileFraction(prev)
	plain := httptest.NewServer(Handler(nil)) // the handlers alone: no rates set
	defer plain.Close()
	block, mutex := events(t, plain.URL, "block", "blockedOnChannel"), events(t, plain.URL, "mutex", "contendedMutex")
	blockedOnChannel()
	contendedMutex()
	assert.Equal(t, block, events(t, plain.URL, "block", "blockedOnChannel"), "block profile at the default rate: no new event")
	assert.Equal(t, mutex, events(t, plain.URL, "mutex", "contendedMutex"), "mutex profile at the default fraction: no new event")

	s, err := Listen(Config{Addr: "127.0.0.1:0", BlockRate: 1, MutexFraction: 1})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, time.Second) }()
	require.Eventually(t, func() bool { return runtime.SetMutexProfileFraction(-1) == 1 }, 30*time.Second, 5*time.Millisecond, "Serve sets the rates")
	blockedOnChannel()
	contendedMutex()
	assert.Greater(t, events(t, s.URL(), "block", "blockedOnChannel"), block)
	assert.Greater(t, events(t, s.URL(), "mutex", "contendedMutex"), mutex)
	cancel()
	require.NoError(t, <-done)
	assert.Equal(t, 0, runtime.SetMutexProfileFraction(-1), "Serve restores the mutex fraction it found")
}

// Serve stops on cancel even while a 30-second CPU profile is being taken:
// after the drain the profile's connection is closed, which ends it.
func TestServeStopsDuringACPUProfile(t *testing.T) {
	s, err := Listen(Config{Addr: "127.0.0.1:0"})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, 100*time.Millisecond) }()
	got := make(chan error, 1)
	go func() {
		resp, err := client.Get(s.URL() + "/debug/pprof/profile?seconds=30")
		if err == nil {
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		got <- err
	}()
	// The profile's headers come only with its data, at the end; the handler's
	// stack says it has started.
	require.Eventually(t, func() bool {
		buf := make([]byte, 1<<20)
		return strings.Contains(string(buf[:runtime.Stack(buf, true)]), "net/http/pprof.sleep")
	}, 30*time.Second, 10*time.Millisecond, "the CPU profile did not start")
	cancel()
	select {
	case err := <-done:
		assert.NoError(t, err)
	case <-time.After(20 * time.Second):
		require.FailNow(t, "Serve did not return within 20 s of the cancel with a profile running")
	}
	select {
	case err := <-got: // cut off or complete; either way the client is released
		t.Logf("the profile request ended with %v", err)
	case <-time.After(20 * time.Second):
		require.FailNow(t, "the profile request was not released")
	}
}

// A loopback port is reachable from a web page the browser on this machine
// loaded from elsewhere, by DNS rebinding: the page's own name resolves to
// 127.0.0.1, and its requests carry that name in Host. The loopback server
// answers only requests addressed to a loopback IP or localhost.
func TestLoopbackServerRefusesAForeignHost(t *testing.T) {
	s, err := Listen(Config{Addr: "127.0.0.1:0"})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, time.Second) }()
	defer func() {
		cancel()
		require.NoError(t, <-done)
	}()
	_, port, err := net.SplitHostPort(s.Addr())
	require.NoError(t, err)
	for _, host := range []string{"127.0.0.1:" + port, "localhost:" + port, "localhost", "[::1]:" + port, "127.0.0.2"} {
		code, _ := getAs(t, s.URL()+"/debug/pprof/cmdline", host)
		assert.Equal(t, http.StatusOK, code, host)
	}
	for _, host := range []string{"attacker.example:" + port, "attacker.example", "10.0.0.5:" + port, "localhost.attacker.example"} {
		code, body := getAs(t, s.URL()+"/debug/pprof/cmdline", host)
		assert.Equal(t, http.StatusMisdirectedRequest, code, host)
		assert.Contains(t, body, "not a loopback address", host)
	}
}

package diagnose

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/part10-pprof/leaky"
)

// The article's step 1 is `curl -sK -v -o baseline.pprof URL`. -K takes the
// next argument as a config file to read, so curl tries to read a file named
// "-v", fails with exit status 26 and writes no profile; the script's next
// line still says "Baseline captured". What works: curl -sS -f -o FILE URL.
func TestArticleCurlCommandWritesNoProfile(t *testing.T) {
	curl, err := exec.LookPath("curl")
	require.NoError(t, err, "this test runs the article's curl command")
	_, _, ppURL := target(t, leaky.Config{})
	dir := t.TempDir()

	cmd := exec.Command(curl, "-sK", "-v", "-o", "baseline.pprof", ppURL+"/debug/pprof/heap")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "curl's output: %s", out)
	assert.Equal(t, 26, exit.ExitCode(), "curl: read error")
	assert.Contains(t, string(out), "option -sK: error encountered when reading a file")
	assert.NoFileExists(t, filepath.Join(dir, "baseline.pprof"))

	cmd = exec.Command(curl, "-sS", "-f", "-o", "baseline.pprof", ppURL+"/debug/pprof/heap")
	cmd.Dir = dir
	out, err = cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	data, err := os.ReadFile(filepath.Join(dir, "baseline.pprof"))
	require.NoError(t, err)
	_, err = Parse(data, Heap)
	assert.NoError(t, err, "the corrected command saves a heap profile")
}

// goroutineBlocks splits a ?debug=2 dump into one block per goroutine.
func goroutineBlocks(t *testing.T, url string) []string {
	t.Helper()
	resp, err := http.Get(url + "/debug/pprof/goroutine?debug=2")
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return strings.Split(string(b), "\n\n")
}

func countMatching(blocks []string, header *regexp.Regexp, fn string) int {
	n := 0
	for _, b := range blocks {
		if header.MatchString(b) && strings.Contains(b, fn) {
			n++
		}
	}
	return n
}

// The article finds leaked goroutines with
// grep "goroutine [0-9]* \[chan receive" on a ?debug=2 dump. Its own leaky
// handler's goroutines are blocked sending (ch <- result), so they show as
// [chan send] and the grep finds none of them.
func TestArticleGrepForChanReceiveMissesTheLeak(t *testing.T) {
	h := newHold() // every lookup times out: its backend answers only once all have
	defer h.open()
	svc, appURL, ppURL := target(t, leaky.Config{Goroutines: leaky.GoroutineLeak, Backend: h.backend})
	_, err := leaky.Drive(t.Context(), &http.Client{Timeout: 30 * time.Second}, appURL, leaky.Load{Requests: 40, Slow: 40})
	require.NoError(t, err)
	require.Equal(t, 40, svc.Leaked())
	h.open()
	articleGrep := regexp.MustCompile(`goroutine [0-9]* \[chan receive`)
	send := regexp.MustCompile(`goroutine [0-9]* \[chan send`)
	var blocks []string
	deadline := time.Now().Add(30 * time.Second)
	for { // each is blocked on its send once its backend call returns
		blocks = goroutineBlocks(t, ppURL)
		if countMatching(blocks, send, "lookupLeaky") == 40 {
			break
		}
		require.True(t, time.Now().Before(deadline), "40 goroutines blocked sending within 30 s")
		time.Sleep(20 * time.Millisecond)
	}
	assert.Zero(t, countMatching(blocks, articleGrep, "lookupLeaky"), "the article's grep")
	assert.Equal(t, 40, countMatching(blocks, send, "lookupLeaky"))
}

// hold is a backend that waits until released (or, if it heeds ctx, until
// ctx ends), counting the calls waiting.
type hold struct {
	release chan struct{}
	waiting atomic.Int64
	once    sync.Once
}

func newHold() *hold { return &hold{release: make(chan struct{})} }

func (h *hold) backend(ctx context.Context, q string) (leaky.Result, error) {
	h.waiting.Add(1)
	defer h.waiting.Add(-1)
	select {
	case <-h.release:
		return leaky.Result{Query: q}, nil
	case <-ctx.Done():
		return leaky.Result{}, ctx.Err()
	}
}

func (h *hold) open() { h.once.Do(func() { close(h.release) }) }

// The article's "fixed" handler wraps the send in a select on ctx.Done(),
// but the send's operand, expensiveWork(), is evaluated before the select
// and never hears of the timeout. Against a backend that hangs, every
// timed-out request keeps its goroutine: the diagnosis names it as it names
// the leak. With the backend given the context (the fix here), nothing stays.
func TestArticleFixKeepsAGoroutinePerTimeout(t *testing.T) {
	for _, tt := range []struct {
		g      leaky.Goroutines
		leaked bool
	}{
		{leaky.GoroutineArticleFix, true},
		{leaky.GoroutineFixed, false},
	} {
		t.Run(tt.g.String(), func(t *testing.T) {
			h := newHold()
			defer h.open()
			r, tally := diagnoseLoad(t, leaky.Config{Goroutines: tt.g, Timeout: 20 * time.Millisecond, Backend: h.backend},
				leaky.Load{Requests: 50, Concurrency: 10})
			assert.Equal(t, int64(50), tally.TimedOut, "every request timed out")
			if !tt.leaked {
				assert.Empty(t, r.Goroutines)
				assert.Zero(t, h.waiting.Load(), "the backend heard the deadline")
				return
			}
			require.NotEmpty(t, r.Goroutines)
			assert.Equal(t, pkg+"(*Service).lookupArticleFix.func1", r.Goroutines[0].Func)
			assert.Equal(t, int64(50), r.Goroutines[0].Growth)
			assert.Equal(t, int64(50), h.waiting.Load(), "the backend is still working for clients that left")
			// When the work ends on its own, later, the buffered send
			// completes and the goroutine ends: the article's fix holds then.
			h.open()
			require.Eventually(t, func() bool {
				buf := make([]byte, 1<<20)
				return !strings.Contains(string(buf[:runtime.Stack(buf, true)]), "lookupArticleFix.func1")
			}, 30*time.Second, 10*time.Millisecond, "the article's fix holds once the work ends")
		})
	}
}

// articleDetector is the article's GoroutineLeakDetector: a baseline count
// and a threshold over it.
type articleDetector struct{ baseline, threshold int }

func (d articleDetector) check() bool { return runtime.NumGoroutine() > d.baseline+d.threshold }

// The article's detector compares runtime.NumGoroutine() with a baseline plus
// a threshold. A burst of slow requests on a service that leaks nothing trips
// it; a leak smaller than the threshold never does, and it names no function
// either way. The diagnosis stays quiet on the first and names the second.
func TestArticleGoroutineDetectorMisfires(t *testing.T) {
	t.Run("a burst, no leak", func(t *testing.T) {
		h := newHold()
		defer h.open()
		_, appURL, ppURL := target(t, leaky.Config{Timeout: time.Minute, Backend: h.backend})
		d := articleDetector{baseline: runtime.NumGoroutine(), threshold: 50}
		client := &http.Client{Timeout: 2 * time.Minute}
		r, err := Run(t.Context(), client, ppURL, func(ctx context.Context) error {
			done := make(chan error, 1)
			go func() {
				_, err := leaky.Drive(ctx, client, appURL, leaky.Load{Requests: 100, Concurrency: 100})
				done <- err
			}()
			deadline := time.After(30 * time.Second)
			for h.waiting.Load() < 100 {
				select {
				case <-deadline:
					return errors.New("the burst did not reach the backend")
				case <-time.After(time.Millisecond):
				}
			}
			assert.True(t, d.check(), "100 requests in flight: the article's detector fires")
			h.open()
			return <-done
		}, Options{})
		require.NoError(t, err)
		assert.Empty(t, r.Goroutines, "nothing stayed")
		assert.False(t, d.check(), "and the count is back under the threshold")
	})
	t.Run("a leak under the threshold", func(t *testing.T) {
		h := newHold() // every lookup times out, however late its handler runs
		defer h.open()
		d := articleDetector{baseline: runtime.NumGoroutine(), threshold: 50}
		r, _ := diagnoseLoad(t, leaky.Config{Goroutines: leaky.GoroutineLeak, Backend: h.backend}, leaky.Load{Requests: 30, Slow: 30})
		assert.False(t, d.check(), "30 leaked goroutines: under the threshold, no alert")
		require.NotEmpty(t, r.Goroutines)
		assert.Equal(t, pkg+"(*Service).lookupLeaky.func1", r.Goroutines[0].Func)
		assert.Equal(t, int64(30), r.Goroutines[0].Growth)
	})
}

// goTool runs go tool pprof with args and returns its output.
func goTool(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("go", append([]string{"tool", "pprof"}, args...)...).CombinedOutput()
	require.NoError(t, err, "%s", out)
	return string(out)
}

// "Diff profiles — shows ONLY the increase": -base subtracts, so what shrank
// shows too, with a negative flat figure. Diff reports only what grew.
func TestArticleBaseDiffShowsDecreasesToo(t *testing.T) {
	base := synth(Heap, map[string]int64{"leak": 1 << 20, "churn": 8 << 20}, stacks)
	peak := synth(Heap, map[string]int64{"leak": 50 << 20, "churn": 2 << 20}, stacks)
	out := goTool(t, "-top", "-base", writeProfile(t, base, "base.pb.gz"), writeProfile(t, peak, "peak.pb.gz"))
	assert.Regexp(t, `(?m)^\s+49MB .* strings\.\(\*Builder\)\.WriteString$`, out)
	assert.Regexp(t, `(?m)^\s+-6MB .* encoding/json\.Marshal$`, out, "the decrease is listed too")
	f, err := Diff(base, peak, Heap, Options{})
	require.NoError(t, err)
	require.Len(t, f, 1)
	assert.Equal(t, "example.com/svc.(*S).audit", f[0].Func)
}

// `(pprof) web` draws pprof's call graph with Graphviz (the same graph -dot
// prints, nodes and edges), not a flame graph; the flame graph is in the
// -http interface. `list` shows the leaking line with its bytes.
func TestArticleWebIsACallGraphAndListShowsTheLine(t *testing.T) {
	base, peak := heapAround(t, leaky.Config{Heap: leaky.HeapLeak})
	b, p := writeProfile(t, base, "base.pb.gz"), writeProfile(t, peak, "peak.pb.gz")

	dot := goTool(t, "-dot", "-sample_index=inuse_space", "-base", b, p)
	assert.True(t, strings.HasPrefix(dot, "digraph "), "a Graphviz graph: %.40q", dot)
	assert.Contains(t, dot, "auditLeaky")
	assert.Contains(t, dot, " -> ", "edges from caller to callee")

	list := goTool(t, "-list", "auditLeaky", "-sample_index=inuse_space", "-base", b, p)
	assert.Regexp(t, `(?m)^\s+\.\s+[\d.]+[kMG]B\s+\d+:\s+s\.buf\.WriteString\(r\.URL\.RequestURI\(\)\)$`, list, "the line that keeps the URLs, with its growth (cum; flat is in WriteString)")
}

// The article's commands, `go tool pprof -inuse_space URL`, `-alloc_space
// URL` and the CPU profile URL, fetch from the loopback server as they are.
func TestGoToolPprofFetchesFromTheServer(t *testing.T) {
	_, _, ppURL := target(t, leaky.Config{})
	for _, tt := range []struct {
		args []string
		typ  string
	}{
		{[]string{"-top", "-inuse_space", ppURL + "/debug/pprof/heap"}, "Type: inuse_space"},
		{[]string{"-top", "-alloc_space", ppURL + "/debug/pprof/heap"}, "Type: alloc_space"},
		{[]string{"-top", ppURL + "/debug/pprof/profile?seconds=1"}, "Type: cpu"},
		{[]string{"-top", ppURL + "/debug/pprof/goroutine"}, "Type: goroutine"},
	} {
		out := goTool(t, tt.args...)
		assert.Contains(t, out, "Fetching profile over HTTP from "+tt.args[len(tt.args)-1])
		assert.Contains(t, out, tt.typ)
	}
}

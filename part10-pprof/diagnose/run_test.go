package diagnose

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/internal/leakcheck"
	"github.com/sysdesign-masterclass/golang/part10-pprof/leaky"
	"github.com/sysdesign-masterclass/golang/part10-pprof/observe"
)

func TestMain(m *testing.M) { leakcheck.VerifyTestMain(m) }

const pkg = "github.com/sysdesign-masterclass/golang/part10-pprof/leaky."

// target starts the service with cfg and a pprof handler, and returns the
// service's and pprof's URLs.
func target(t *testing.T, cfg leaky.Config) (*leaky.Service, string, string) {
	t.Helper()
	svc := leaky.New(cfg)
	app := httptest.NewServer(svc.Handler())
	pp := httptest.NewServer(observe.Handler(nil))
	t.Cleanup(func() {
		app.Close()
		pp.Close()
		svc.Close()
	})
	return svc, app.URL, pp.URL
}

func diagnoseLoad(t *testing.T, cfg leaky.Config, l leaky.Load) (Report, leaky.Tally) {
	t.Helper()
	_, appURL, ppURL := target(t, cfg)
	client := &http.Client{Timeout: 30 * time.Second}
	var tally leaky.Tally
	r, err := Run(t.Context(), client, ppURL, func(ctx context.Context) error {
		var err error
		tally, err = leaky.Drive(ctx, client, appURL, l)
		return err
	}, Options{})
	require.NoError(t, err)
	for _, f := range r.Heap {
		t.Logf("heap: %s +%d B (leaf %s)", f.Func, f.Growth, f.Leaf)
	}
	for _, f := range r.Goroutines {
		t.Logf("goroutines: %s +%d (blocked in %s)", f.Func, f.Growth, f.Leaf)
	}
	t.Logf("load %v, capture %v, took %v; tally %+v", r.Load, r.Capture, r.Took, tally)
	return r, tally
}

var load = leaky.Load{Requests: 500, Slow: 25, Concurrency: 8, QueryBytes: 8192}

func TestDiagnosisNamesThePlantedFunctions(t *testing.T) {
	r, tally := diagnoseLoad(t, leaky.Config{Goroutines: leaky.GoroutineLeak, Heap: leaky.HeapLeak}, load)
	require.NotEmpty(t, r.Heap)
	require.NotEmpty(t, r.Goroutines)
	assert.Equal(t, pkg+"(*Service).auditLeaky", r.Heap[0].Func)
	assert.Equal(t, "strings.(*Builder).WriteString", r.Heap[0].Leaf)
	assert.True(t, strings.HasPrefix(r.Goroutines[0].Func, pkg+"(*Service).lookupLeaky"), r.Goroutines[0].Func)
	assert.GreaterOrEqual(t, r.Goroutines[0].Growth, tally.TimedOut)
}

func TestFixedServiceHasNoFinding(t *testing.T) {
	r, _ := diagnoseLoad(t, leaky.Config{}, load)
	assert.Empty(t, r.Heap)
	assert.Empty(t, r.Goroutines)
}

// writeProfile saves p where go tool pprof can read it.
func writeProfile(t *testing.T, p *profile.Profile, name string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	f, err := os.Create(path)
	require.NoError(t, err)
	require.NoError(t, p.Write(f))
	require.NoError(t, f.Close())
	return path
}

// topRows runs go tool pprof -top -base on two profiles and returns the
// function names of its first rows, largest flat first.
func topRows(t *testing.T, base, peak string, extra ...string) []string {
	t.Helper()
	args := append([]string{"tool", "pprof", "-top", "-base", base}, extra...)
	out, err := exec.Command("go", append(args, peak)...).CombinedOutput()
	require.NoError(t, err, "%s", out)
	var names []string
	started := false
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		if len(f) >= 5 && f[0] == "flat" {
			started = true
			continue
		}
		if started && len(f) >= 6 {
			names = append(names, strings.TrimSuffix(strings.Join(f[5:], " "), " (inline)"))
		}
	}
	require.NotEmpty(t, names, "%s", out)
	return names
}

// The article's step 4, `go tool pprof -base baseline peak` and `top`, on the
// profiles Run compares: for the heap its flat top is the Builder's
// WriteString, as in the article's case study, which is Finding.Leaf; the
// code to fix is one frame up (Finding.Func, in -cum). For goroutines the
// flat top is runtime.gopark, where every parked goroutine sits.
func TestGoToolPprofTopAgrees(t *testing.T) {
	_, appURL, ppURL := target(t, leaky.Config{Goroutines: leaky.GoroutineLeak, Heap: leaky.HeapLeak})
	c := &http.Client{Timeout: 30 * time.Second}
	baseH, err := Fetch(t.Context(), c, ppURL, Heap)
	require.NoError(t, err)
	baseG, err := Fetch(t.Context(), c, ppURL, Goroutines)
	require.NoError(t, err)
	_, err = leaky.Drive(t.Context(), c, appURL, load)
	require.NoError(t, err)
	peakG, err := settle(t.Context(), c, ppURL)
	require.NoError(t, err)
	peakH, err := Fetch(t.Context(), c, ppURL, Heap)
	require.NoError(t, err)
	f, err := Diff(baseH, peakH, Heap, Options{})
	require.NoError(t, err)
	require.NotEmpty(t, f)

	top := topRows(t, writeProfile(t, baseH, "base.pb.gz"), writeProfile(t, peakH, "peak.pb.gz"), "-sample_index=inuse_space")
	assert.Equal(t, "strings.(*Builder).WriteString", top[0])
	assert.Equal(t, f[0].Leaf, top[0])
	cum := topRows(t, writeProfile(t, baseH, "base.pb.gz"), writeProfile(t, peakH, "peak.pb.gz"), "-sample_index=inuse_space", "-cum")
	assert.Contains(t, cum, f[0].Func, "the function to fix is in the -cum list")

	top = topRows(t, writeProfile(t, baseG, "base.pb.gz"), writeProfile(t, peakG, "peak.pb.gz"))
	assert.Equal(t, "runtime.gopark", top[0])
}

// The article's decision guide: inuse_space for a leak, alloc_space for
// churn. On the fixed service the inuse diff is empty while the alloc_space
// diff lists what each request allocated and dropped, the per-request audit
// Builder among it. The log has the figures: the inuse growth of every
// function (no threshold) against the alloc_space growth.
func TestAllocSpaceShowsChurnInuseShowsNone(t *testing.T) {
	base, peak := heapAround(t, leaky.Config{})
	inuse, err := Diff(base, peak, Heap, Options{})
	require.NoError(t, err)
	assert.Empty(t, inuse)
	all, err := Diff(base, peak, Heap, Options{MinGrowth: 1})
	require.NoError(t, err)
	allocs, err := Diff(base, peak, Allocs, Options{})
	require.NoError(t, err)
	var names []string
	var audit int64
	for _, f := range allocs {
		names = append(names, f.Func)
		if f.Func == pkg+"(*Service).auditFixed" {
			audit = f.Growth
		}
	}
	assert.Contains(t, names, pkg+"(*Service).auditFixed", "500 requests × 8 KiB queries through a per-request Builder")
	t.Logf("fixed service, %d requests of %d KiB queries: inuse_space diff %d functions over the 2 MiB threshold, %.1f MiB grown in all (%d functions); alloc_space diff %d functions over it, %.1f MiB, (*Service).auditFixed %.1f MiB of it",
		load.Requests, load.QueryBytes>>10, len(inuse), mib(sum(all)), len(all), len(allocs), mib(sum(allocs)), mib(audit))
}

func sum(fs []Finding) (n int64) {
	for _, f := range fs {
		n += f.Growth
	}
	return n
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// heapAround starts the service with cfg and returns its heap profiles from
// before and after the tests' load.
func heapAround(t *testing.T, cfg leaky.Config) (base, peak *profile.Profile) {
	t.Helper()
	_, appURL, ppURL := target(t, cfg)
	c := &http.Client{Timeout: 30 * time.Second}
	base, err := Fetch(t.Context(), c, ppURL, Heap)
	require.NoError(t, err)
	_, err = leaky.Drive(t.Context(), c, appURL, load)
	require.NoError(t, err)
	peak, err = Fetch(t.Context(), c, ppURL, Heap)
	require.NoError(t, err)
	return base, peak
}

// BenchmarkDiagnose is the whole diagnosis of the leaky service, from the
// first profile request to the named functions, under the tests' load (500
// requests, 25 of them timing out, 8 KiB queries); capture-ns/op is the part
// that is not the load: profiles, settling, diffs.
func BenchmarkDiagnose(b *testing.B) {
	var capture time.Duration
	for b.Loop() {
		svc := leaky.New(leaky.Config{Goroutines: leaky.GoroutineLeak, Heap: leaky.HeapLeak})
		app := httptest.NewServer(svc.Handler())
		pp := httptest.NewServer(observe.Handler(nil))
		client := &http.Client{Timeout: 30 * time.Second}
		r, err := Run(b.Context(), client, pp.URL, func(ctx context.Context) error {
			_, err := leaky.Drive(ctx, client, app.URL, load)
			return err
		}, Options{})
		app.Close()
		pp.Close()
		svc.Close()
		if err != nil {
			b.Fatal(err)
		}
		if len(r.Heap) == 0 || len(r.Goroutines) == 0 || !strings.HasSuffix(r.Heap[0].Func, ".(*Service).auditLeaky") {
			b.Fatalf("the planted functions were not named first: %+v", r)
		}
		capture += r.Capture
	}
	b.ReportMetric(float64(capture)/float64(b.N), "capture-ns/op")
}

package gclab

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/internal/leakcheck"
	"github.com/sysdesign-masterclass/golang/part10-pprof/gctrace"
)

// TestMain makes this test binary the child the tests run.
func TestMain(m *testing.M) {
	if out, ok := os.LookupEnv(envFakeChild); ok {
		fmt.Fprint(os.Stderr, out)
		fmt.Println(or(os.Getenv(envFakeStats), `{"cycles":99}`))
		os.Exit(0)
	}
	MaybeChild()
	leakcheck.VerifyTestMain(m)
}

func child(t *testing.T, s Setting, w Workload) Run {
	t.Helper()
	exe, err := os.Executable()
	require.NoError(t, err)
	r, err := Exec(t.Context(), exe, s, w)
	require.NoError(t, err)
	require.NotEmpty(t, r.Cycles, "GODEBUG=gctrace=1 printed no line")
	return r
}

// The article's advice, GOGC 100 → 200: fewer collections, a larger heap.
func TestGOGC200CollectsLessWithALargerHeap(t *testing.T) {
	t.Parallel()
	w := Workload{AllocMiB: 128, LiveMiB: 16}
	def := child(t, Setting{}, w).Summary()
	gogc200 := child(t, Setting{GOGC: "200"}, w).Summary()
	t.Logf("GOGC=100: %d cycles, peak %d MB; GOGC=200: %d cycles, peak %d MB", def.Cycles, def.PeakHeap, gogc200.Cycles, gogc200.PeakHeap)
	assert.Less(t, gogc200.Cycles, def.Cycles)
	assert.Greater(t, gogc200.PeakHeap, def.PeakHeap)
}

// "GOGC=100: GC runs when heap doubles": each cycle's goal is the previous
// cycle's live heap plus GOGC% of it (and of the scannable stacks and
// globals, here under 1 MB), to the line's MB truncation.
func TestGoalIsLiveHeapPlusGOGCPercent(t *testing.T) {
	t.Parallel()
	for _, gogc := range []int64{100, 50, 200} {
		r := child(t, Setting{GOGC: strconv.FormatInt(gogc, 10)}, Workload{AllocMiB: 256, LiveMiB: 16})
		checked := 0
		for i := 1; i < len(r.Cycles); i++ {
			prev, c := r.Cycles[i-1], r.Cycles[i]
			if prev.HeapLive < 8 || c.Forced {
				continue // the 4 MB minimum heap (× GOGC/100) decides small goals
			}
			want := prev.HeapLive + (prev.HeapLive+prev.Stacks+prev.Globals)*gogc/100
			assert.InDelta(t, want, c.Goal, float64(1+gogc/50), "GOGC=%d, cycle %d after live %d MB", gogc, c.N, prev.HeapLive)
			checked++
		}
		assert.GreaterOrEqual(t, checked, 3, "GOGC=%d: cycles with a live heap of 8 MB or more", gogc)
	}
}

// The article: "5 MB goal = target heap size before next GC". The goal on a
// line is the goal of the cycle it reports, computed from the live heap of
// the cycle before. Three forced collections: with 64 MiB live, with nothing
// live, again. The second line still says goal ≈ 128 MB while the runtime's
// goal for the next cycle (/gc/heap/goal:bytes, read right after) is 4 MB;
// the third line prints that 4.
func TestArticleGoalIsNotTheNextCyclesTarget(t *testing.T) {
	t.Parallel()
	r := child(t, Setting{}, Workload{LiveMiB: 64, GoalSteps: true})
	var forced []gctrace.Cycle
	for _, c := range r.Cycles {
		if c.Forced {
			forced = append(forced, c)
		}
	}
	require.Len(t, forced, 3, "three runtime.GC() lines")
	require.Len(t, r.Stats.Goals, 3)
	a, b, c := forced[0], forced[1], forced[2]
	assert.GreaterOrEqual(t, a.HeapLive, int64(64))
	assert.Zero(t, b.HeapLive, "nothing live at the second collection")
	assert.GreaterOrEqual(t, b.Goal, 2*a.HeapLive, "the second line's goal comes from the first line's live heap")
	assert.Equal(t, int64(4), int64(r.Stats.Goals[1]>>20), "the target before the next GC, read after the second: the 4 MB minimum")
	assert.Equal(t, int64(4), c.Goal, "and the third line prints it")
	assert.Equal(t, int64(r.Stats.Goals[0]>>20), b.Goal, "each line's goal is the one read after the collection before it")
}

// The article: "set GOMEMLIMIT (Go 1.19+) as a hard limit". It is a soft
// limit: with 32 MiB live and GOMEMLIMIT=16MiB the child runs to the end,
// its live heap over the limit at the end, collecting more often (the
// runtime caps the GC's CPU share at about 50% in this state, so it does not
// stall), and its resident set (getrusage), what a container's memory limit
// counts, peaks past twice the limit.
func TestArticleGOMEMLIMITIsSoft(t *testing.T) {
	t.Parallel()
	w := Workload{AllocMiB: 64, LiveMiB: 32}
	limited := child(t, Setting{GOMEMLIMIT: "16MiB"}, w)
	plain := child(t, Setting{}, w)
	s, p := limited.Summary(), plain.Summary()
	t.Logf("GOMEMLIMIT=16MiB: %d cycles, live %d MB, peak %d MB, peak RSS %.1f MiB; no limit: %d cycles, peak RSS %.1f MiB",
		s.Cycles, s.LastLive, s.PeakHeap, float64(limited.Stats.PeakRSS)/(1<<20), p.Cycles, float64(plain.Stats.PeakRSS)/(1<<20))
	assert.Equal(t, uint64(16<<20), limited.Stats.MemoryLimit)
	assert.Greater(t, s.LastLive, int64(16), "the live heap stays over the limit")
	assert.Greater(t, s.PeakHeap, int64(32), "the heap reaches past the live set")
	assert.Greater(t, s.Cycles, p.Cycles, "and the GC runs more often (how much more depends on CPU time: the limiter)")
	if runtime.GOOS == "linux" { // VmHWM (gclab.peakRSS)
		assert.Greater(t, limited.Stats.PeakRSS, int64(32<<20),
			"the process's resident set, what a container limit counts, peaks past the live set, twice the limit")
	}
}

// The article reads "3%" as "3% of CPU time spent in GC (alert if > 5%)".
// It is the share since the program started. A child idle for 6 s, then
// allocating: the lines' own CPU times put the GC's share of the allocation
// phase at several times what the last line prints.
func TestArticleGCPercentIsSinceProgramStart(t *testing.T) {
	t.Parallel()
	const idle = 6 * time.Second
	r := child(t, Setting{GOGC: "25"}, Workload{AllocMiB: 48, LiveMiB: 8, Idle: idle})
	first := slices.IndexFunc(r.Cycles, func(c gctrace.Cycle) bool { return c.At >= idle })
	require.GreaterOrEqual(t, first, 0, "cycles after the idle time")
	s := gctrace.Summarize(r.Cycles[first:]) // a test binary may collect once at start-up, before the idle time
	t.Logf("last line %d%%; GC CPU over the allocation phase, from its %d lines: %.1f%%; wall %v after %v idle", s.CPUPercent, s.Cycles, 100*s.WindowCPU, r.Stats.Wall, idle)
	require.Greater(t, s.Cycles, 5)
	assert.Greater(t, 100*s.WindowCPU, 2*float64(s.CPUPercent)+1)
}

// With GOGC=off a collection happens only when asked for, and its line's
// goal is the runtime's "none", 2^63-1 bytes: a line like any other.
func TestExecGOGCOffForcedCollections(t *testing.T) {
	t.Parallel()
	r := child(t, Setting{GOGC: "off"}, Workload{LiveMiB: 4, GoalSteps: true})
	forced := 0
	for _, c := range r.Cycles {
		if c.Forced {
			forced++
			assert.Greater(t, c.Goal, int64(1)<<40, "gc %d: no goal", c.N)
		}
	}
	assert.Equal(t, 3, forced)
}

// A malformed setting is the child's fatal error, reported with its words.
func TestExecReportsAChildThatFailed(t *testing.T) {
	t.Parallel()
	exe, err := os.Executable()
	require.NoError(t, err)
	_, err = Exec(t.Context(), exe, Setting{GOMEMLIMIT: "lots"}, Workload{AllocMiB: 1, LiveMiB: 1})
	assert.ErrorContains(t, err, "GOGC=100 GOMEMLIMIT=lots, 1 MiB allocated, 1 MiB live: exit status 2")
	assert.ErrorContains(t, err, "malformed GOMEMLIMIT")
}

func sampleRuns() []Run {
	c1, _ := gctrace.ParseLine("gc 1 @0.003s 3%: 0.010+1.2+0.020 ms clock, 0.020+0.1/1.0/0+0.040 ms cpu, 4->5->3 MB, 4 MB goal, 0 MB stacks, 0 MB globals, 2 P")
	c2, _ := gctrace.ParseLine("gc 2 @0.050s 4%: 0.011+2.4+0.021 ms clock, 0.022+0.2/2.0/0.3+0.042 ms cpu, 6->7->3 MB, 6 MB goal, 0 MB stacks, 0 MB globals, 2 P (forced)")
	return []Run{
		{Setting: Setting{}, Workload: Workload{AllocMiB: 8, LiveMiB: 2}, Cycles: []gctrace.Cycle{c1, c2}, Stats: Stats{Wall: time.Second, Cycles: 2, GCCPU: 0.04}},
		{Setting: Setting{GOGC: "off", GOMEMLIMIT: "96MiB"}, Workload: Workload{AllocMiB: 8, LiveMiB: 2}, Cycles: []gctrace.Cycle{c1}},
	}
}

func TestRecordRoundTrip(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, WriteRecord(&b, "made by a test\non no machine", sampleRuns()))
	runs, comment, err := ReadRecord(&b)
	require.NoError(t, err)
	assert.Equal(t, sampleRuns(), runs)
	assert.Equal(t, "made by a test\non no machine\n", comment)
}

func TestReadRecordRejects(t *testing.T) {
	for _, tt := range []struct{ in, msg string }{
		{"", "no run in it"},
		{"# only a comment\n", "no run in it"},
		{"gc 1 @0.003s 3%: 0.010+1.2+0.020 ms clock\n", `line 1: "gc 1 @0.003s 3%: 0.010+1.2+0.020 ms clock" before the first run`},
		{"## {not json}\n", "line 1: the run's header: invalid character"},
		{`## {"setting":{},"extra":1}` + "\n", `line 1: the run's header: json: unknown field "extra"`},
		{`## {"setting":{}} {}` + "\n", "line 1: the run's header: text after the JSON"},
		{"## {}\ngc 1 garbled\n", `line 2: "gc 1 garbled": not a gctrace line`},
	} {
		_, _, err := ReadRecord(strings.NewReader(tt.in))
		assert.ErrorContains(t, err, tt.msg, "%q", tt.in)
	}
}

// FuzzReadRecord: any text is a record that writes back to the same runs,
// or an error; never a panic.
func FuzzReadRecord(f *testing.F) {
	var b bytes.Buffer
	if err := WriteRecord(&b, "seed", sampleRuns()); err != nil {
		f.Fatal(err)
	}
	f.Add(b.String())
	f.Add("## {}\n")
	f.Add("# c\n## {\"setting\":{\"GOGC\":\"50\"}}\n\ngc 1 @0.001s 0%: 0+0+0 ms clock, 0+0/0/0+0 ms cpu, 0->0->0 MB, 4 MB goal, 1 P\n")
	f.Fuzz(func(t *testing.T, in string) {
		runs, comment, err := ReadRecord(strings.NewReader(in))
		if err != nil {
			return
		}
		var out bytes.Buffer
		require.NoError(t, WriteRecord(&out, strings.TrimSuffix(comment, "\n"), runs))
		again, _, err := ReadRecord(&out)
		require.NoError(t, err, "%q", out.String())
		assert.Equal(t, len(runs), len(again))
		for i := range runs {
			assert.Equal(t, runs[i].Cycles, again[i].Cycles)
		}
	})
}

func TestChartIsDeterministic(t *testing.T) {
	var a, b bytes.Buffer
	require.NoError(t, WriteChart(&a, "heap over time", sampleRuns()))
	require.NoError(t, WriteChart(&b, "heap over time", sampleRuns()))
	assert.Equal(t, a.String(), b.String())
	assert.True(t, strings.HasPrefix(a.String(), "<svg "))
	assert.True(t, strings.HasSuffix(a.String(), "</svg>\n"))
	assert.Contains(t, a.String(), "GOGC=100 GOMEMLIMIT=off")
	assert.Contains(t, a.String(), "GOGC=off GOMEMLIMIT=96MiB")
	assert.Equal(t, 1, strings.Count(a.String(), ">GOMEMLIMIT</text>"), "one limit line")
	assert.Equal(t, 2, strings.Count(a.String(), "<polyline"))
}

func TestLimitMB(t *testing.T) {
	for in, want := range map[string]int64{"": 0, "96MiB": 96, "1GiB": 1024, "2048KiB": 2, "1048576B": 1, "lots": 0, "xMiB": 0} {
		assert.Equal(t, want, limitMB(Setting{GOMEMLIMIT: in}), in)
	}
}

// A child that exits while the runtime prints a gctrace line leaves the line
// cut short at the end of its output; the complete lines before it count.
func TestCompleteLinesDropsALineCutByExit(t *testing.T) {
	const full = "gc 1 @0.001s 1%: 0.010+0.20+0.003 ms clock, 0.020+0.10/0.10/0+0.006 ms cpu, 4->4->1 MB, 4 MB goal, 0 MB stacks, 0 MB globals, 2 P\n"
	for in, want := range map[string]string{
		full + "gc 2 @": full,
		full:            full,
		"gc 1 @0.0":     "",
		"":              "",
	} {
		assert.Equal(t, want, string(completeLines([]byte(in))), "%q", in)
	}
	cycles, err := gctrace.Parse(bytes.NewReader(completeLines([]byte(full + "gc 2 @"))))
	require.NoError(t, err)
	assert.Len(t, cycles, 1)
}

// envFakeChild makes this test binary a child that prints the variable's
// value to stderr, envFakeStats (or stats of 99 cycles) to stdout, and
// exits 0.
const (
	envFakeChild = "PART10_GCLAB_FAKE_CHILD"
	envFakeStats = "PART10_GCLAB_FAKE_STATS"
)

// Exec through a child whose output ends as an exit in the middle of the
// runtime's print leaves it: the whole lines count, the cut one is dropped;
// a damaged line anywhere else is reported.
func TestExecDropsOnlyALastLineCutByExit(t *testing.T) {
	const full = "gc 1 @0.001s 1%: 0.010+0.20+0.003 ms clock, 0.020+0.10/0.10/0+0.006 ms cpu, 4->4->1 MB, 4 MB goal, 0 MB stacks, 0 MB globals, 2 P\n"
	exe, err := os.Executable()
	require.NoError(t, err)
	t.Setenv(envFakeChild, full+full+"gc 3 @0.0")
	r, err := Exec(t.Context(), exe, Setting{}, Workload{})
	require.NoError(t, err)
	assert.Len(t, r.Cycles, 2)

	t.Setenv(envFakeChild, full+"gc 2 @0.0\n"+full)
	_, err = Exec(t.Context(), exe, Setting{}, Workload{})
	assert.ErrorContains(t, err, `line 2: "gc 2 @0.0": not a gctrace line`)
}

// The child reads its stats, the cycle count among them, as the workload
// ends, with its live set still reachable; a cycle after that (the child
// encoding its report while the GC runs all the time under a low
// GOMEMLIMIT) finds nothing live, and is not the workload's.
func TestExecKeepsOnlyTheWorkloadsCycles(t *testing.T) {
	line := func(n, live int) string {
		return fmt.Sprintf("gc %d @0.00%ds 1%%: 0.010+0.20+0.003 ms clock, 0.020+0.10/0.10/0+0.006 ms cpu, 40->40->%d MB, 16 MB goal, 0 MB stacks, 0 MB globals, 2 P\n", n, n, live)
	}
	exe, err := os.Executable()
	require.NoError(t, err)
	t.Setenv(envFakeChild, line(1, 32)+line(2, 32)+line(3, 0))
	t.Setenv(envFakeStats, `{"cycles":2}`)
	r, err := Exec(t.Context(), exe, Setting{}, Workload{})
	require.NoError(t, err)
	require.Len(t, r.Cycles, 2)
	assert.Equal(t, int64(32), r.Summary().LastLive)
}

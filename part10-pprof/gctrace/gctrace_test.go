package gctrace

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// real lines of GODEBUG=gctrace=1, Go 1.26.8 on linux/amd64 (gclab's
// workload): an automatic cycle, a forced one, and the article's sample (an
// older Go's format, without stacks and globals).
const (
	go126       = "gc 6 @0.036s 6%: 0.18+0.46+0.002 ms clock, 0.37+0/0.093/0.11+0.004 ms cpu, 64->64->0 MB, 128 MB goal, 0 MB stacks, 0 MB globals, 2 P (forced)"
	go126Auto   = "gc 14 @0.655s 7%: 0.061+11+0.19 ms clock, 0.12+3.2/5.6/0+0.39 ms cpu, 59->62->39 MB, 59 MB goal, 0 MB stacks, 0 MB globals, 2 P"
	articleLine = "gc 1 @0.005s 3%: 0.012+1.5+0.045 ms clock, 0.096+1.5/1.2/0+0.36 ms cpu, 4->4->2 MB, 5 MB goal, 8 P"
)

func TestParseLine(t *testing.T) {
	c, err := ParseLine(go126)
	require.NoError(t, err)
	assert.Equal(t, Cycle{
		N: 6, At: 36 * time.Millisecond, CPUPercent: 6,
		SweepTermination: 180 * time.Microsecond, Mark: 460 * time.Microsecond, MarkTermination: 2 * time.Microsecond,
		CPUSweepTermination: 370 * time.Microsecond, CPUAssist: 0, CPUBackground: 93 * time.Microsecond, CPUIdle: 110 * time.Microsecond, CPUMarkTermination: 4 * time.Microsecond,
		HeapStart: 64, HeapEnd: 64, HeapLive: 0, Goal: 128, Stacks: 0, Globals: 0, P: 2, Forced: true,
	}, c)
	assert.Equal(t, 182*time.Microsecond, c.Pause())
	assert.Equal(t, 642*time.Microsecond, c.Wall())
	assert.Equal(t, 467*time.Microsecond, c.GCCPU(), "idle marking left out")
	assert.Equal(t, go126, c.Line())

	c, err = ParseLine(articleLine)
	require.NoError(t, err, "the article's format: no stacks, no globals")
	assert.Equal(t, int64(-1), c.Stacks)
	assert.Equal(t, int64(5), c.Goal)
	assert.Equal(t, 8, c.P)
	assert.Equal(t, 12*time.Microsecond+45*time.Microsecond, c.Pause())
	assert.Equal(t, articleLine, c.Line())

	c, err = ParseLine("gc 3 @12.5s 0% (checking for goroutine leaks): 1+2+3 ms clock, 1+2/3/4+5 ms cpu, 1->2->3 MB, 4 MB goal, 5 MB stacks, 6MB globals, 1 P")
	require.NoError(t, err, "goroutineleak's note after the percentage; the documented '#MB globals'")
	assert.Equal(t, 12500*time.Millisecond, c.At)
	assert.Equal(t, int64(6), c.Globals)

	// GOGC=off and runtime.GC(): the goal is the runtime's "none", printed
	// as 2^63-1 bytes in MB (go1.26.8's output).
	const gcOff = "gc 1 @0.000s 14%: 0.19+0.16+0.004 ms clock, 0.39+0/0.14/0.081+0.008 ms cpu, 0->0->0 MB, 8532210231537 MB goal, 0 MB stacks, 0 MB globals, 2 P (forced)"
	c, err = ParseLine(gcOff)
	require.NoError(t, err, "GOGC=off's goal")
	assert.Equal(t, int64(8532210231537), c.Goal)
	assert.Equal(t, gcOff, c.Line())
}

func TestParseLineRejects(t *testing.T) {
	for _, s := range []string{
		"",
		"gc",
		"scvg: 0 MB released",
		"gc 1 @0.005s 3%: 0.012+1.5+0.045 ms clock",                              // cut short
		strings.Replace(go126, "ms cpu", "ms CPU", 1),                            // not the runtime's words
		strings.Replace(go126, "64->64->0", "64->64", 1),                         // a heap figure missing
		strings.Replace(go126, "@0.036s", "@0.036", 1),                           // no unit
		strings.Replace(go126, "gc 6 ", "gc 0 ", 1),                              // cycles count from 1
		strings.Replace(go126, "2 P", "0 P", 1),                                  // no processors
		strings.Replace(go126, "128 MB goal", "99999999999999999999 MB goal", 1), // out of range
		strings.Replace(go126, "@0.036s", "@99999999999999999999.0s", 1),         // out of range
		strings.Replace(go126, "0.18+", "876000000000+", 1),                      // over a year of sweep termination
		go126 + " extra",
		go126 + strings.Repeat(" ", maxLine),
	} {
		_, err := ParseLine(s)
		assert.ErrorIs(t, err, ErrNotGCLine, "%q", s)
	}
}

// Parse reads every gctrace line among other output, reports each damaged
// one with its line number, and keeps the rest.
func TestParseSkipsOtherLinesAndReportsDamagedOnes(t *testing.T) {
	in := strings.Join([]string{
		"starting",
		articleLine,
		"gc 2 @0.010s 4%: 0.01+1+0.04 ms clock, garbled",
		go126Auto,
		"scvg: 4 MB released",
		go126 + "\r",
		"",
	}, "\n")
	cycles, err := Parse(strings.NewReader(in))
	require.Len(t, cycles, 3)
	assert.Equal(t, []int{1, 14, 6}, []int{cycles[0].N, cycles[1].N, cycles[2].N})
	var le *LineError
	require.True(t, errors.As(err, &le), "%v", err)
	assert.Equal(t, 3, le.Line)
	assert.ErrorIs(t, err, ErrNotGCLine)
	assert.ErrorContains(t, err, `line 3: "gc 2 @0.010s 4%: 0.01+1+0.04 ms clock, garbled": not a gctrace line`)

	_, err = Parse(strings.NewReader("gc " + strings.Repeat("9", 2<<20)))
	assert.ErrorContains(t, err, "token too long", "a line over 1 MiB ends the read with an error")
}

func TestSummarize(t *testing.T) {
	var cycles []Cycle
	for i := 1; i <= 100; i++ {
		cycles = append(cycles, Cycle{
			N: i, At: time.Duration(i) * 100 * time.Millisecond, CPUPercent: 5, P: 2,
			SweepTermination: 100 * time.Microsecond, Mark: 5 * time.Millisecond, MarkTermination: time.Duration(i) * time.Microsecond,
			CPUSweepTermination: 200 * time.Microsecond, CPUBackground: 9 * time.Millisecond, CPUAssist: 800 * time.Microsecond,
			CPUIdle: 50 * time.Millisecond, CPUMarkTermination: 0,
			HeapStart: int64(60 + i%7), HeapEnd: int64(62 + i%7), HeapLive: 30, Goal: 60, Forced: i%10 == 0,
		})
	}
	s := Summarize(cycles)
	assert.Equal(t, 100, s.Cycles)
	assert.Equal(t, 10, s.Forced)
	assert.Equal(t, 5, s.CPUPercent)
	assert.Equal(t, int64(68), s.PeakHeap)
	assert.Equal(t, 200*time.Microsecond, s.PauseMax)
	assert.Equal(t, 199*time.Microsecond, s.PauseP99)
	// 10 ms of GC CPU per 100 ms on 2 Ps: 5%, idle marking left out.
	assert.InDelta(t, 0.05, s.WindowCPU, 0.0001)
	assert.InDelta(t, 0.05, s.SinceStartCPU, 0.001)
	assert.Equal(t, Summary{}, Summarize(nil))
}

// FuzzParseLine: any line either parses into a cycle that prints back to a
// line parsing to the same cycle, or is refused with ErrNotGCLine.
func FuzzParseLine(f *testing.F) {
	for _, s := range []string{go126, go126Auto, articleLine, "gc 1 @0.000s 0%: 0+0+0 ms clock, 0+0/0/0+0 ms cpu, 0->0->0 MB, 4 MB goal, 1 P", "gc 1 @1.1234567891s 1%: 0.0000001+1+1 ms clock, 1+1/1/1+1 ms cpu, 1->1->1 MB, 1 MB goal, 1 P"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseLine(s)
		if err != nil {
			assert.ErrorIs(t, err, ErrNotGCLine)
			return
		}
		again, err := ParseLine(c.Line())
		require.NoError(t, err, "%q printed as %q", s, c.Line())
		assert.Equal(t, c, again)
		assert.GreaterOrEqual(t, c.Wall(), c.Pause())
	})
}

// Package gctrace reads the lines GODEBUG=gctrace=1 makes the Go runtime
// print to standard error, one per garbage collection:
//
//	gc 7 @1.234s 5%: 0.021+3.1+0.040 ms clock, 0.043+0.52/1.5/0.11+0.081 ms cpu, 61->64->33 MB, 66 MB goal, 0 MB stacks, 0 MB globals, 2 P
//
// and sums them up: GC CPU over the run, stop-the-world pauses, heap sizes.
// The runtime documents the format (go doc runtime, GODEBUG gctrace) and says
// it may change; Go 1.26 prints the stacks and globals fields that the
// article's sample line (an older Go's) has not, and ParseLine accepts both.
//
// What the fields mean, where the article says otherwise:
//
//   - "#%" is the GC's share of the CPU since the program started, not of the
//     recent past: a process that has run quietly for an hour and then spends
//     half its CPU collecting prints a small percentage. Summary.WindowCPU is
//     the share over the cycles read.
//   - The three clock times are stop-the-world sweep termination, concurrent
//     mark and scan, and stop-the-world mark termination. Sweeping runs
//     concurrently after the cycle and is in none of them.
//   - "# MB goal" is the goal of the cycle that just ended, the heap size at
//     which it was to finish; the next cycle's goal, from this cycle's live
//     heap, is printed on the next line.
package gctrace

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Cycle is one gctrace line.
type Cycle struct {
	N          int           // the GC number
	At         time.Duration // when the cycle started, since the program started (ms precision)
	CPUPercent int           // the GC's share of CPU since the program started, truncated
	// The wall-clock times of the three phases.
	SweepTermination, Mark, MarkTermination time.Duration
	// The CPU times: the two stop-the-world phases (GOMAXPROCS × wall), and
	// the concurrent mark split into assists (allocating goroutines made to
	// help), background workers, and idle time (Ps with nothing else to do).
	CPUSweepTermination, CPUAssist, CPUBackground, CPUIdle, CPUMarkTermination time.Duration
	HeapStart, HeapEnd, HeapLive                                               int64 // MB: at the start, at the end, marked live
	Goal                                                                       int64 // MB: the goal of this cycle
	Stacks, Globals                                                            int64 // MB of scannable stacks and globals; -1 if the line has none (Go before 1.21)
	P                                                                          int   // GOMAXPROCS
	Forced                                                                     bool  // runtime.GC() asked for it
}

// Pause is the cycle's stop-the-world time: sweep termination plus mark
// termination.
func (c Cycle) Pause() time.Duration { return c.SweepTermination + c.MarkTermination }

// Wall is the cycle's duration from the start of sweep termination to the
// end of mark termination.
func (c Cycle) Wall() time.Duration { return c.SweepTermination + c.Mark + c.MarkTermination }

// GCCPU is the CPU the cycle cost the program, idle-time marking left out
// (the runtime leaves it out of its percentage too: it used CPU nothing else
// wanted).
func (c Cycle) GCCPU() time.Duration {
	return c.CPUSweepTermination + c.CPUAssist + c.CPUBackground + c.CPUMarkTermination
}

var line = regexp.MustCompile(`^gc (\d+) @(\d+\.\d+)s (\d+)%(?: \([^)]*\))?: ` +
	`(\d+(?:\.\d+)?)\+(\d+(?:\.\d+)?)\+(\d+(?:\.\d+)?) ms clock, ` +
	`(\d+(?:\.\d+)?)\+(\d+(?:\.\d+)?)/(\d+(?:\.\d+)?)/(\d+(?:\.\d+)?)\+(\d+(?:\.\d+)?) ms cpu, ` +
	`(\d+)->(\d+)->(\d+) MB, (\d+) MB goal, (?:(\d+) MB stacks, (\d+) ?MB globals, )?(\d+) P( \(forced\))?$`)

// ErrNotGCLine is wrapped by ParseLine's errors.
var ErrNotGCLine = errors.New("not a gctrace line")

// maxLine bounds a line ParseLine reads: real lines are under 200 bytes.
const maxLine = 1024

// ParseLine parses one gctrace line (without its newline).
func ParseLine(s string) (Cycle, error) {
	if len(s) > maxLine {
		return Cycle{}, fmt.Errorf("%d bytes, longer than any gctrace line: %w", len(s), ErrNotGCLine)
	}
	m := line.FindStringSubmatch(s)
	if m == nil {
		return Cycle{}, fmt.Errorf("%q: %w (want \"gc # @#s #%%: #+#+# ms clock, #+#/#/#+# ms cpu, #->#-># MB, # MB goal, [# MB stacks, # MB globals, ]# P\")", clip(s), ErrNotGCLine)
	}
	p := parser{}
	c := Cycle{
		N:                   int(p.int(m[1], 32, "gc number")),
		At:                  p.dur(m[2], time.Second, "start time"),
		CPUPercent:          int(p.int(m[3], 32, "CPU percentage")),
		SweepTermination:    p.dur(m[4], time.Millisecond, "sweep termination"),
		Mark:                p.dur(m[5], time.Millisecond, "mark"),
		MarkTermination:     p.dur(m[6], time.Millisecond, "mark termination"),
		CPUSweepTermination: p.dur(m[7], time.Millisecond, "sweep termination CPU"),
		CPUAssist:           p.dur(m[8], time.Millisecond, "assist CPU"),
		CPUBackground:       p.dur(m[9], time.Millisecond, "background CPU"),
		CPUIdle:             p.dur(m[10], time.Millisecond, "idle CPU"),
		CPUMarkTermination:  p.dur(m[11], time.Millisecond, "mark termination CPU"),
		HeapStart:           p.int(m[12], 64, "heap at start"),
		HeapEnd:             p.int(m[13], 64, "heap at end"),
		HeapLive:            p.int(m[14], 64, "live heap"),
		Goal:                p.int(m[15], 64, "goal"),
		Stacks:              -1,
		Globals:             -1,
		P:                   int(p.int(m[18], 32, "P")),
		Forced:              m[19] != "",
	}
	if m[16] != "" {
		c.Stacks, c.Globals = p.int(m[16], 64, "stacks"), p.int(m[17], 64, "globals")
	}
	if p.err == nil && (c.N == 0 || c.P == 0) {
		p.err = fmt.Errorf("gc number and P start at 1")
	}
	if p.err != nil {
		return Cycle{}, fmt.Errorf("%q: %v: %w", clip(s), p.err, ErrNotGCLine)
	}
	return c, nil
}

func clip(s string) string {
	if len(s) > 120 {
		return s[:120] + "…"
	}
	return s
}

// parser keeps the first field error.
type parser struct{ err error }

// int reads a number of bits: 64 for the MB figures (with GOGC=off a goal
// is the runtime's "none", 2^63-1 bytes), 32 for the rest.
func (p *parser) int(s string, bits int, what string) int64 {
	n, err := strconv.ParseInt(s, 10, bits)
	if err != nil && p.err == nil {
		p.err = fmt.Errorf("%s %s out of range", what, s)
	}
	return n
}

// dur reads a decimal number of units exactly (no float rounding), to the
// nanosecond: digits past it are dropped.
func (p *parser) dur(s string, unit time.Duration, what string) time.Duration {
	whole, frac, _ := strings.Cut(s, ".")
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil || w > int64(maxDuration/unit) {
		if p.err == nil {
			p.err = fmt.Errorf("%s %s out of range", what, s)
		}
		return 0
	}
	d := time.Duration(w) * unit
	for scale := unit / 10; scale > 0 && frac != ""; scale /= 10 {
		d += time.Duration(frac[0]-'0') * scale
		frac = frac[1:]
	}
	return d
}

// maxDuration bounds any time in a line: a year.
const maxDuration = 365 * 24 * time.Hour

// LineError is a line that starts like a gctrace line and is not one.
type LineError struct {
	Line int // 1-based
	Err  error
}

func (e *LineError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }

func (e *LineError) Unwrap() error { return e.Err }

// Parse reads r to the end and returns the cycles of every gctrace line in
// it. Other lines (the program's own output, "scvg" lines) are skipped; a
// line that starts with "gc " and does not parse is reported in the error
// (errors.Join of *LineError) and the rest are still read, so one damaged
// line loses nothing else.
func Parse(r io.Reader) ([]Cycle, error) {
	var (
		out  []Cycle
		errs []error
	)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		s := strings.TrimRight(sc.Text(), "\r")
		if !strings.HasPrefix(s, "gc ") {
			continue
		}
		c, err := ParseLine(s)
		if err != nil {
			errs = append(errs, &LineError{Line: n, Err: err})
			continue
		}
		out = append(out, c)
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, fmt.Errorf("after line %d: %w", n, err))
	}
	return out, errors.Join(errs...)
}

// Line formats c as the Go 1.26 runtime prints it (the older format without
// stacks and globals if c has none). ParseLine(c.Line()) == c.
func (c Cycle) Line() string {
	var b strings.Builder
	fmt.Fprintf(&b, "gc %d @%ss %d%%: %s+%s+%s ms clock, %s+%s/%s/%s+%s ms cpu, %d->%d->%d MB, %d MB goal, ",
		c.N, decimal(c.At, time.Second, 3), c.CPUPercent,
		msText(c.SweepTermination), msText(c.Mark), msText(c.MarkTermination),
		msText(c.CPUSweepTermination), msText(c.CPUAssist), msText(c.CPUBackground), msText(c.CPUIdle), msText(c.CPUMarkTermination),
		c.HeapStart, c.HeapEnd, c.HeapLive, c.Goal)
	if c.Stacks >= 0 {
		fmt.Fprintf(&b, "%d MB stacks, %d MB globals, ", c.Stacks, c.Globals)
	}
	fmt.Fprintf(&b, "%d P", c.P)
	if c.Forced {
		b.WriteString(" (forced)")
	}
	return b.String()
}

// msText prints d in milliseconds with no more digits than it has.
func msText(d time.Duration) string { return decimal(d, time.Millisecond, 0) }

// decimal prints d in units, with at least minFrac digits after the point
// and no trailing zeros past them.
func decimal(d, unit time.Duration, minFrac int) string {
	s := strconv.FormatInt(int64(d/unit), 10)
	frac := ""
	for scale, rest := unit/10, d%unit; scale > 0; scale /= 10 {
		frac += string(rune('0' + rest/scale))
		rest %= scale
	}
	frac = strings.TrimRight(frac, "0")
	for len(frac) < minFrac {
		frac += "0"
	}
	if frac == "" {
		return s
	}
	return s + "." + frac
}

package gclab

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sysdesign-masterclass/golang/part10-pprof/gctrace"
)

// Setting is the environment a child runs under; "" leaves a variable unset
// (the runtime's default: GOGC=100, no memory limit).
type Setting struct {
	GOGC       string
	GOMEMLIMIT string
}

func (s Setting) String() string {
	return "GOGC=" + or(s.GOGC, "100") + " GOMEMLIMIT=" + or(s.GOMEMLIMIT, "off")
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// Settings are the chapter's, for a workload with liveMiB live: the
// default, the article's GOGC=200, a lower GOGC, GOMEMLIMIT alone at three
// times the live heap (GOGC=off), and GOMEMLIMIT above the live heap and
// below twice it, then below the live heap.
func Settings(liveMiB int) []Setting {
	mib := func(n int) string { return strconv.Itoa(max(n, 1)) + "MiB" }
	return []Setting{
		{},
		{GOGC: "200"},
		{GOGC: "50"},
		{GOGC: "off", GOMEMLIMIT: mib(3 * liveMiB)},
		{GOMEMLIMIT: mib(3 * liveMiB / 2)},
		{GOMEMLIMIT: mib(liveMiB / 2)},
	}
}

// Run is one child's run.
type Run struct {
	Setting  Setting
	Workload Workload
	Cycles   []gctrace.Cycle
	Stats    Stats
}

// Summary sums up the run's cycles.
func (r Run) Summary() gctrace.Summary { return gctrace.Summarize(r.Cycles) }

// Exec runs w in a child process of the program exe (which calls MaybeChild)
// under setting s, with GODEBUG=gctrace=1, and returns its cycles and stats.
// The child's other GODEBUG, GOGC and GOMEMLIMIT settings are replaced.
func Exec(ctx context.Context, exe string, s Setting, w Workload) (Run, error) {
	spec, err := json.Marshal(w)
	if err != nil {
		return Run{}, err
	}
	cmd := exec.CommandContext(ctx, exe)
	cmd.WaitDelay = 5 * time.Second
	env := []string{"GODEBUG=gctrace=1", EnvChild + "=" + string(spec)}
	if s.GOGC != "" {
		env = append(env, "GOGC="+s.GOGC)
	}
	if s.GOMEMLIMIT != "" {
		env = append(env, "GOMEMLIMIT="+s.GOMEMLIMIT)
	}
	for _, kv := range os.Environ() {
		switch k, _, _ := strings.Cut(kv, "="); k {
		case "GODEBUG", "GOGC", "GOMEMLIMIT", EnvChild:
		default:
			env = append(env, kv)
		}
	}
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return Run{}, fmt.Errorf("%s, %s: %w; stderr: %s", s, w, err, firstWords(stderr.String()))
	}
	r := Run{Setting: s, Workload: w}
	if err := json.Unmarshal(stdout.Bytes(), &r.Stats); err != nil {
		return Run{}, fmt.Errorf("%s, %s: the child's report %q: %w", s, w, firstWords(stdout.String()), err)
	}
	r.Cycles, err = gctrace.Parse(bytes.NewReader(completeLines(stderr.Bytes())))
	if err != nil {
		return r, fmt.Errorf("%s, %s: %w", s, w, err)
	}
	// The child read Stats.Cycles as the workload ended, its live set still
	// reachable. A later cycle (while it encodes its report: under a low
	// GOMEMLIMIT the GC runs all the time) finds nothing live and is not the
	// workload's.
	r.Cycles = slices.DeleteFunc(r.Cycles, func(c gctrace.Cycle) bool { return uint64(c.N) > r.Stats.Cycles })
	return r, nil
}

// completeLines is out up to its last newline. The runtime prints a gctrace
// line at the end of mark termination, after it has restarted the world and
// woken the goroutines waiting for the cycle (runtime.GC's caller among
// them), one write(2) per piece, under its print lock. So the child's main
// goroutine can exit in the middle of the line, and only of that line: the
// last, cut short ("gc 9 @", no newline). Runtime prints never interleave
// and the child writes nothing else to stderr unless it fails, so a damaged
// line anywhere else is still an error.
func completeLines(out []byte) []byte {
	return out[:bytes.LastIndexByte(out, '\n')+1]
}

// firstWords is the first three lines of out that are not gctrace lines:
// where a runtime's fatal error or a panic says what went wrong.
func firstWords(out string) string {
	var keep []string
	for l := range strings.Lines(out) {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "gc ") {
			keep = append(keep, l)
			if len(keep) == 3 {
				break
			}
		}
	}
	return strings.Join(keep, " | ")
}

package gclab

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/sysdesign-masterclass/golang/part10-pprof/gctrace"
)

// A record is a text file of runs, so that a run made once (on a named
// machine) can be printed and charted again without running anything:
//
//	# any comment: the machine, the Go version, the command
//	## {"setting":{"GOGC":"200"},"workload":{...},"stats":{...}}
//	gc 1 @0.003s 4%: ...
//	gc 2 @0.006s 5%: ...
//	## {...}
//
// Each "## " line starts a run with its setting, workload and the child's
// stats as JSON; the gctrace lines that follow, until the next "## " line,
// are its cycles, exactly as the child printed them.

type header struct {
	Setting  Setting  `json:"setting"`
	Workload Workload `json:"workload"`
	Stats    Stats    `json:"stats"`
}

// WriteRecord writes runs to w, after the comment lines in comment.
func WriteRecord(w io.Writer, comment string, runs []Run) error {
	b := bufio.NewWriter(w)
	for line := range strings.Lines(comment) {
		fmt.Fprintf(b, "# %s", line)
		if !strings.HasSuffix(line, "\n") {
			fmt.Fprintln(b)
		}
	}
	for _, r := range runs {
		h, err := json.Marshal(header{r.Setting, r.Workload, r.Stats})
		if err != nil {
			return err
		}
		fmt.Fprintf(b, "## %s\n", h)
		for _, c := range r.Cycles {
			fmt.Fprintln(b, c.Line())
		}
	}
	return b.Flush()
}

// ErrRecord is wrapped by ReadRecord's errors.
var ErrRecord = errors.New("not a gclab record")

// ReadRecord reads what WriteRecord wrote, and the comment lines before the
// first run.
func ReadRecord(r io.Reader) (runs []Run, comment string, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var c strings.Builder
	n := 0
	for sc.Scan() {
		n++
		s := sc.Text()
		switch {
		case strings.HasPrefix(s, "## "):
			var h header
			dec := json.NewDecoder(strings.NewReader(s[3:]))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&h); err != nil {
				return nil, "", fmt.Errorf("line %d: the run's header: %v: %w", n, err, ErrRecord)
			}
			if dec.More() {
				return nil, "", fmt.Errorf("line %d: the run's header: text after the JSON: %w", n, ErrRecord)
			}
			runs = append(runs, Run{Setting: h.Setting, Workload: h.Workload, Stats: h.Stats})
		case strings.HasPrefix(s, "#"):
			if len(runs) == 0 {
				c.WriteString(strings.TrimPrefix(strings.TrimPrefix(s, "#"), " ") + "\n")
			}
		case s == "":
		case len(runs) == 0:
			return nil, "", fmt.Errorf("line %d: %q before the first run (## line): %w", n, clip(s), ErrRecord)
		default:
			cy, err := gctrace.ParseLine(s)
			if err != nil {
				return nil, "", fmt.Errorf("line %d: %w", n, err)
			}
			last := &runs[len(runs)-1]
			last.Cycles = append(last.Cycles, cy)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, "", fmt.Errorf("after line %d: %w", n, err)
	}
	if len(runs) == 0 {
		return nil, "", fmt.Errorf("no run in it: %w", ErrRecord)
	}
	return runs, c.String(), nil
}

func clip(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"text/tabwriter"
	"time"

	"github.com/sysdesign-masterclass/golang/part03-caching/experiment"
)

// table returns a right-aligned tab writer; rows end with a tab.
func table(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond)) }

func percent(part, whole int64) float64 { return 100 * float64(part) / float64(whole) }

// redisLogger keeps go-redis's log lines (one per failed dial, every few hundred
// milliseconds while Redis is down) off the terminal unless -v asks for them.
type redisLogger struct{ verbose bool }

var stderrLog = log.New(os.Stderr, "go-redis: ", log.Ltime)

func (l redisLogger) Printf(_ context.Context, format string, v ...any) {
	if l.verbose {
		stderrLog.Printf(format, v...)
	}
}

// sectionFailure turns a section's error into a short report: which section stopped,
// which service failed, and the command that brings it back.
func sectionFailure(section, mode string, err error, env *experiment.Env) error {
	var se *experiment.ServiceError
	if !errors.As(err, &se) && env != nil {
		se = env.Failure() // the section may have stopped on its cancelled context
	}
	if se == nil {
		return fmt.Errorf("%s: %w", section, err)
	}
	again := "go run ./part03-caching"
	if mode != "all" {
		again += " -mode " + mode
	}
	fix := fmt.Sprintf("it refused connections (killed?): scripts/stack restart %s (Docker: docker compose restart %[1]s)", se.Service)
	if se.Paused() {
		fix = fmt.Sprintf("it stopped answering (paused?): scripts/stack resume %s (Docker: docker compose unpause %[1]s)", se.Service)
	}
	return fmt.Errorf("%s: %w\n  the section stopped: its figures mean nothing without %s; %s\n  then run again: %s", section, se, se.Service, fix, again)
}

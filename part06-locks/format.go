package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sysdesign-masterclass/golang/part06-locks/lock"
)

// table returns a writer that aligns tab-separated columns; Flush prints them.
func table(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}

// thousands formats n with comma separators: 10000000 → 10,000,000.
func thousands[T ~int | ~int64](n T) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// ms prints a duration in milliseconds with the digits a reader needs: 0.213
// for a loopback round trip, 9,860 for a lock's validity.
func ms(d time.Duration) string {
	v := float64(d) / float64(time.Millisecond)
	switch {
	case v >= 1000 || v <= -1000:
		return thousands(d.Round(time.Millisecond).Milliseconds()) + " ms"
	case v >= 100 || v <= -100:
		return fmt.Sprintf("%.0f ms", v)
	case v >= 10 || v <= -10:
		return fmt.Sprintf("%.1f ms", v)
	}
	return fmt.Sprintf("%.3f ms", v)
}

// human prints a long duration at the scale a reader thinks in: 6.7 s,
// 83.3 min.
func human(d time.Duration) string {
	switch {
	case d >= 2*time.Hour:
		return fmt.Sprintf("%.1f h", d.Hours())
	case d >= time.Minute:
		return fmt.Sprintf("%.1f min", d.Minutes())
	case d >= time.Second:
		return fmt.Sprintf("%.1f s", d.Seconds())
	}
	return ms(d)
}

// secs prints a duration in seconds: 2 s, 1.5 s, 60 s.
func secs(d time.Duration) string { return fmt.Sprintf("%g s", d.Seconds()) }

// quantile is the nearest-rank q-quantile of sorted samples: always a value
// that was measured.
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*q+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// sorted returns a sorted copy of samples.
func sorted(samples []time.Duration) []time.Duration {
	s := slices.Clone(samples)
	slices.Sort(s)
	return s
}

// quietRedis keeps go-redis's log lines (one per failed dial or cancelled
// read) off the terminal unless -v asks for them. go-redis's logger is
// process-wide: it is installed once, and verbose switches it.
func quietRedis(v bool) {
	verbose.Store(v)
	installLogger.Do(func() { redis.SetLogger(redisLogger{}) })
}

var (
	verbose       atomic.Bool
	installLogger sync.Once
	stderrLog     = log.New(os.Stderr, "go-redis: ", log.Ltime)
)

type redisLogger struct{}

func (redisLogger) Printf(_ context.Context, format string, v ...any) {
	if verbose.Load() {
		stderrLog.Printf(format, v...)
	}
}

// oneLine joins a multi-line error (errors.Join) into one line.
func oneLine(err error) string { return strings.ReplaceAll(fmt.Sprint(err), "\n", "; ") }

// callTimeout bounds every lock call and service request of the demo: a
// service that stops answering mid-run (a paused etcd keeps a call without a
// deadline waiting forever) fails its section within seconds.
const callTimeout = 10 * time.Second

// bounded gives each ExecuteWithLock of the Locker at most callTimeout.
type bounded struct{ lock.Locker }

func (b bounded) ExecuteWithLock(ctx context.Context, resource string, ttl time.Duration, fn func(context.Context, int64) error) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	return b.Locker.ExecuteWithLock(ctx, resource, ttl, fn)
}

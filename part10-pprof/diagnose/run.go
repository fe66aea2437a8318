package diagnose

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/google/pprof/profile"
)

// Report is what Run found, and how long each part took.
type Report struct {
	Heap       []Finding // live bytes that grew, largest first
	Goroutines []Finding // goroutines that stayed, most first
	// GoroutinesBefore and GoroutinesAfter are the totals of the two
	// goroutine profiles compared.
	GoroutinesBefore, GoroutinesAfter int64
	// HeapBefore and HeapAfter are the inuse_space totals of the two heap
	// profiles compared.
	HeapBefore, HeapAfter int64
	Load                  time.Duration // the load function's run
	Capture               time.Duration // baseline, settling, peak and diff: the rest
	Took                  time.Duration // from the first request to the named functions
}

// Settle bounds how long Run waits, after the load, for the goroutine count
// to stop changing.
const Settle = 10 * time.Second

// Run diagnoses the process whose pprof server is at pprofURL: it captures a
// baseline heap and goroutine profile, runs load, waits until the goroutine
// count has held still for three reads 100 ms apart (or Settle has passed),
// captures the peak profiles and diffs them.
func Run(ctx context.Context, c *http.Client, pprofURL string, load func(context.Context) error, opt Options) (Report, error) {
	var r Report
	start := time.Now()
	baseG, err := Fetch(ctx, c, pprofURL, Goroutines)
	if err != nil {
		return r, err
	}
	baseH, err := Fetch(ctx, c, pprofURL, Heap)
	if err != nil {
		return r, err
	}
	loadStart := time.Now()
	if err := load(ctx); err != nil {
		return r, fmt.Errorf("load: %w", err)
	}
	r.Load = time.Since(loadStart)
	peakG, err := settle(ctx, c, pprofURL)
	if err != nil {
		return r, err
	}
	peakH, err := Fetch(ctx, c, pprofURL, Heap)
	if err != nil {
		return r, err
	}
	if r.Heap, err = Diff(baseH, peakH, Heap, opt); err != nil {
		return r, err
	}
	if r.Goroutines, err = Diff(baseG, peakG, Goroutines, opt); err != nil {
		return r, err
	}
	r.GoroutinesBefore, r.GoroutinesAfter = Total(baseG, Goroutines), Total(peakG, Goroutines)
	r.HeapBefore, r.HeapAfter = Total(baseH, Heap), Total(peakH, Heap)
	r.Took = time.Since(start)
	r.Capture = r.Took - r.Load
	return r, nil
}

// settle fetches goroutine profiles until three in a row have the same total.
func settle(ctx context.Context, c *http.Client, url string) (*profile.Profile, error) {
	ctx, cancel := context.WithTimeout(ctx, Settle)
	defer cancel()
	var last *profile.Profile
	same := 0
	for {
		p, err := Fetch(ctx, c, url, Goroutines)
		if err != nil {
			if last != nil && ctx.Err() != nil {
				return last, nil // still moving after Settle: diff what there is
			}
			return nil, err
		}
		if last != nil && Total(p, Goroutines) == Total(last, Goroutines) {
			same++
		} else {
			same = 0
		}
		last = p
		if same == 2 {
			return p, nil
		}
		select {
		case <-ctx.Done():
			return last, nil
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Total sums p's samples of kind k: live bytes, goroutines.
func Total(p *profile.Profile, k Kind) int64 {
	i := sampleIndex(p, k)
	if i < 0 {
		return 0
	}
	var n int64
	for _, s := range p.Sample {
		n += s.Value[i]
	}
	return n
}

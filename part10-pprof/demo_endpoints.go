package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"time"

	"github.com/google/pprof/profile"

	"github.com/sysdesign-masterclass/golang/part10-pprof/observe"
)

// endpoint is one row of the pprof grid: what the article says it shows and
// costs, and the request this demo makes.
type endpoint struct {
	path, article string
}

var grid = []endpoint{
	{"heap", "< 1%"},
	{"allocs", "(not in the article)"},
	{"goroutine", "< 0.1%"},
	{"threadcreate", "(not in the article)"},
	{"block", "~2–5%"},
	{"mutex", "~2–5%"},
	{"profile?seconds=1", "~5–10% (seconds=30)"},
	{"trace?seconds=1", "~10–15% (seconds=5)"},
}

var indexLink = regexp.MustCompile(`href='([a-z]+)(?:\?debug=1)?'`)

// endpointsDemo serves pprof on a loopback port of its own mux, fetches every
// endpoint while a small workload blocks on channels and contends on a mutex,
// and shows that block and mutex profiles stay empty until their rates are set.
func endpointsDemo(ctx context.Context, w io.Writer, o options) error {
	fmt.Fprintln(w, "== The pprof grid: one loopback-only server on its own mux, every endpoint fetched ==")

	// Block and mutex before any rate is set: the runtime's defaults.
	runtime.SetBlockProfileRate(0)
	runtime.SetMutexProfileFraction(0)
	b0, m0 := events("block"), events("mutex")
	churn(ctx, 200*time.Millisecond)
	bOff, mOff := events("block")-b0, events("mutex")-m0

	exp := observe.NewExporter()
	srv, err := observe.Listen(observe.Config{Addr: "127.0.0.1:0", BlockRate: o.blockRate, MutexFraction: o.mutexFraction, Exporter: exp})
	if err != nil {
		return err
	}
	sctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(sctx, 5*time.Second) }()
	defer func() {
		stop()
		if err := <-served; err != nil {
			fmt.Fprintln(w, "pprof server:", err)
		}
	}()
	client := &http.Client{Timeout: 30 * time.Second}

	// Let the server set the rates, then the same workload again.
	if err := waitFor(ctx, func() bool { return runtime.SetMutexProfileFraction(-1) == o.mutexFraction }); err != nil {
		return err
	}
	b0, m0 = events("block"), events("mutex")
	churn(ctx, 200*time.Millisecond)
	bOn, mOn := events("block")-b0, events("mutex")-m0

	index, _, err := fetch(ctx, client, srv.URL()+"/debug/pprof/")
	if err != nil {
		return err
	}
	var listed []string
	for _, m := range indexLink.FindAllStringSubmatch(string(index), -1) {
		listed = append(listed, m[1])
	}
	fmt.Fprintf(w, "pprof on %s (loopback only; serve -addr 0.0.0.0:6060 is refused without -allow-remote)\n", srv.Addr())
	fmt.Fprintf(w, "/debug/pprof/ lists %d endpoints: %s (the article's grid has 6)\n\n", len(listed), strings.Join(listed, ", "))

	done := make(chan struct{})
	go func() { defer close(done); churn(sctx, 5*time.Second) }() // something to profile while fetching
	tw := table(w)
	fmt.Fprintln(tw, "endpoint\tbytes\tsamples\ttook\tthe article's overhead")
	for _, e := range grid {
		body, took, err := fetch(ctx, client, srv.URL()+"/debug/pprof/"+e.path)
		if err != nil {
			return err
		}
		samples := "-"
		if p, err := profile.ParseData(body); err == nil {
			samples = fmt.Sprint(len(p.Sample))
		} else if !strings.HasPrefix(e.path, "trace") {
			return fmt.Errorf("%s: %w", e.path, err)
		}
		fmt.Fprintf(tw, "/debug/pprof/%s\t%s\t%s\t%s\t%s\n", e.path, size(len(body)), samples, ms(took), e.article)
	}
	tw.Flush()
	stop()
	<-done

	fmt.Fprintf(w, "\nblock and mutex events recorded during 200 ms of channel hand-offs and lock contention:\n")
	tw = table(w)
	fmt.Fprintln(tw, "profile\tthe runtime's default (off)\tthis run's setting\tevents")
	fmt.Fprintf(tw, "block\t%d\truntime.SetBlockProfileRate(%d)\t%d\n", bOff, o.blockRate, bOn)
	fmt.Fprintf(tw, "mutex\t%d\truntime.SetMutexProfileFraction(%d)\t%d\n", mOff, o.mutexFraction, mOn)
	tw.Flush()

	// What the article's blank import does to the program's default mux.
	rec := httptest.NewRecorder()
	http.DefaultServeMux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/debug/pprof/cmdline", nil))
	fmt.Fprintf(w, "\nhttp.DefaultServeMux in this binary answers GET /debug/pprof/cmdline with %d: linking net/http/pprof registers it,\n", rec.Code)
	fmt.Fprintln(w, "so the article's http.ListenAndServe(\":8080\", nil) serves the profiles on every interface. Serve DefaultServeMux nowhere.")
	fmt.Fprintf(w, "runtime metrics: %s\n\n", exp.Read())
	return nil
}

// events is the number of events a block or mutex profile holds so far.
func events(name string) int64 {
	var n int64
	for _, r := range profileRecords(name) {
		n += r
	}
	return n
}

func profileRecords(name string) []int64 {
	var b strings.Builder
	if err := pprof.Lookup(name).WriteTo(&b, 0); err != nil {
		return nil
	}
	p, err := profile.ParseData([]byte(b.String()))
	if err != nil {
		return nil
	}
	out := make([]int64, 0, len(p.Sample))
	for _, s := range p.Sample {
		out = append(out, s.Value[0]) // contentions
	}
	return out
}

// fetch GETs url and returns its body and how long it took.
func fetch(ctx context.Context, c *http.Client, url string) ([]byte, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, 0, err
	}
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return body, time.Since(start), err
}

// waitFor polls cond until it holds, for up to 10 s.
func waitFor(ctx context.Context, cond func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting: %w", ctx.Err())
		case <-time.After(time.Millisecond):
		}
	}
	return nil
}

// churn hands values between goroutines over unbuffered channels and has them
// contend on one mutex, for d or until ctx ends.
func churn(ctx context.Context, d time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var mu sync.Mutex
	counts := map[int]int{}
	ch := make(chan int)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case v := <-ch:
					mu.Lock()
					for j := range 256 { // long enough for the other P to find it held
						counts[(v+j)%64]++
					}
					mu.Unlock()
				case <-ctx.Done():
					return
				}
			}
		})
	}
	for i := 0; ctx.Err() == nil; i++ {
		select {
		case ch <- i:
		case <-ctx.Done():
		}
	}
	wg.Wait()
}

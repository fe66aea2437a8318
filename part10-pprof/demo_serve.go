package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/sysdesign-masterclass/golang/part10-pprof/leaky"
	"github.com/sysdesign-masterclass/golang/part10-pprof/observe"
)

// serve runs the search service on o.appAddr and pprof on o.addr until ctx
// ends (Ctrl-C), printing a runtime metrics line every o.metricsEvery.
func serve(ctx context.Context, w io.Writer, o options) error {
	exp := observe.NewExporter()
	pp, err := observe.Listen(observe.Config{
		Addr: o.addr, AllowRemote: o.allowRemote,
		BlockRate: o.blockRate, MutexFraction: o.mutexFraction, Exporter: exp,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.appAddr)
	if err != nil {
		pp.Close()
		return fmt.Errorf("service: %w", err)
	}
	cfg := leaky.Config{Goroutines: o.goroutines, Heap: o.heap}
	svc := leaky.New(cfg)
	defer svc.Close()
	app := &http.Server{Handler: svc.Handler(), ReadHeaderTimeout: 5 * time.Second}
	appURL := "http://" + ln.Addr().String()

	fmt.Fprintf(w, "search service on %s (goroutines: %s, heap: %s); pprof on %s/debug/pprof/ (block rate %d ns, mutex fraction %d) — Ctrl-C stops\n",
		appURL, cfg.Goroutines, cfg.Heap, pp.URL(), o.blockRate, o.mutexFraction)
	fmt.Fprintf(w, "  load:     for i in $(seq 500); do curl -s \"%s/api/search?q=slow:$i\" >/dev/null; done\n", appURL)
	fmt.Fprintf(w, "  baseline: curl -sS -f -o base.pb.gz '%s/debug/pprof/heap?gc=1'   (then load, then the same to peak.pb.gz)\n", pp.URL())
	fmt.Fprintln(w, "  diff:     go tool pprof -top -base base.pb.gz peak.pb.gz")
	fmt.Fprintf(w, "  metrics:  curl -s %s/debug/runtime\n", pp.URL())

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, 2) // the two servers
	go func() { errs <- pp.Serve(ctx, 5*time.Second) }()
	go func() {
		err := app.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		errs <- err
	}()
	metricsDone := make(chan struct{})
	go func() {
		defer close(metricsDone)
		if o.metricsEvery > 0 {
			exp.Run(ctx, o.metricsEvery, func(s observe.Snapshot, iv observe.Interval) {
				fmt.Fprintf(w, "[runtime] %s gc_cpu_last_interval=%.1f%%\n", s, 100*iv.GCCPUFraction)
			})
		}
	}()
	err = nil
	stopped := 0
	select {
	case err = <-errs: // a server failed before Ctrl-C
		stopped++
	case <-ctx.Done():
	}
	cancel()
	sctx, stop := context.WithTimeout(context.Background(), 5*time.Second)
	defer stop()
	if app.Shutdown(sctx) != nil {
		app.Close()
	}
	for ; stopped < 2; stopped++ {
		if e := <-errs; e != nil && err == nil {
			err = e
		}
	}
	<-metricsDone
	if err != nil {
		return err
	}
	fmt.Fprintln(w, "stopped")
	return nil
}

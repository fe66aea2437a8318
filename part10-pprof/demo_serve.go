package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/sysdesign-masterclass/golang/part10-pprof/observe"
)

// serve keeps pprof up on o.addr until ctx ends (Ctrl-C), printing a runtime
// metrics line every o.metricsEvery.
func serve(ctx context.Context, w io.Writer, o options) error {
	exp := observe.NewExporter()
	srv, err := observe.Listen(observe.Config{
		Addr: o.addr, AllowRemote: o.allowRemote,
		BlockRate: o.blockRate, MutexFraction: o.mutexFraction, Exporter: exp,
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "pprof on %s/debug/pprof/ (block rate %d ns, mutex fraction %d) — Ctrl-C stops\n", srv.URL(), o.blockRate, o.mutexFraction)
	fmt.Fprintf(w, "  go tool pprof -top %s/debug/pprof/heap\n", srv.URL())
	fmt.Fprintf(w, "  curl -s %s/debug/runtime\n", srv.URL())
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	metricsDone := make(chan struct{})
	go func() {
		defer close(metricsDone)
		if o.metricsEvery > 0 {
			exp.Run(sctx, o.metricsEvery, func(s observe.Snapshot, iv observe.Interval) {
				fmt.Fprintf(w, "[runtime] %s gc_cpu_last_interval=%.1f%%\n", s, 100*iv.GCCPUFraction)
			})
		}
	}()
	err = srv.Serve(sctx, 5*time.Second)
	cancel()
	<-metricsDone
	if err != nil {
		return err
	}
	fmt.Fprintln(w, "stopped")
	return nil
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/sysdesign-masterclass/golang/part10-pprof/diagnose"
	"github.com/sysdesign-masterclass/golang/part10-pprof/leaky"
	"github.com/sysdesign-masterclass/golang/part10-pprof/observe"
)

// modulePrefix is cut from function names in the demo's tables.
const modulePrefix = "github.com/sysdesign-masterclass/golang/part10-pprof/"

func short(fn string) string { return strings.TrimPrefix(fn, modulePrefix) }

// diagnosis is one service's run: what it was, what was sent and found.
type diagnosis struct {
	name   string
	tally  leaky.Tally
	report diagnose.Report
}

// diagnoseDemo runs the service with both leaks, then the fixed one, each
// under the same load, and diagnoses each from its pprof endpoints alone.
func diagnoseDemo(ctx context.Context, w io.Writer, o options) error {
	l := leaky.Load{Requests: o.requests, Slow: o.slow, Concurrency: 8, QueryBytes: o.queryBytes}
	fmt.Fprintf(w, "== Diagnose: baseline and peak profiles over HTTP, diffed; the service with both leaks, then fixed ==\n")
	fmt.Fprintf(w, "load: %d GET /api/search, %d of them slow (the backend takes 4× the handler's 50 ms timeout), 8 at a time, %s queries\n",
		l.Requests, l.Slow, size(l.QueryBytes))
	var runs []diagnosis
	for _, v := range []struct {
		name string
		cfg  leaky.Config
	}{
		{"leaks on", leaky.Config{Goroutines: leaky.GoroutineLeak, Heap: leaky.HeapLeak}},
		{"fixed", leaky.Config{Goroutines: leaky.GoroutineFixed, Heap: leaky.HeapFixed}},
	} {
		d, err := diagnoseOnce(ctx, v.name, v.cfg, l)
		if err != nil {
			return fmt.Errorf("%s: %w", v.name, err)
		}
		runs = append(runs, d)
	}

	tw := table(w)
	fmt.Fprintln(tw, "service\t200\t504\theap (inuse) baseline → peak\tgoroutines baseline → peak\tfindings\tload\tcapture + diff\tstart → named")
	for _, d := range runs {
		r := d.report
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s → %s\t%d → %d\t%d\t%s\t%s\t%s\n", d.name, d.tally.OK, d.tally.TimedOut,
			size(r.HeapBefore), size(r.HeapAfter), r.GoroutinesBefore, r.GoroutinesAfter,
			len(r.Heap)+len(r.Goroutines), ms(r.Load), ms(r.Capture), ms(r.Took))
	}
	tw.Flush()

	leaks := runs[0].report
	fmt.Fprintln(w, "\nheap diff (inuse_space), leaks on: the function to fix, and the frame `go tool pprof -top -base` shows flat")
	tw = table(w)
	fmt.Fprintln(tw, "growth\tfunction to fix\tflat (pprof top)")
	for _, f := range leaks.Heap {
		fmt.Fprintf(tw, "+%s\t%s\t%s\n", size(f.Growth), short(f.Func), short(f.Leaf))
	}
	tw.Flush()
	fmt.Fprintln(w, "\ngoroutine diff, leaks on: where the goroutines that stayed were started, and what they wait in")
	tw = table(w)
	fmt.Fprintln(tw, "growth\tstarted in\tblocked in")
	for _, f := range leaks.Goroutines {
		fmt.Fprintf(tw, "+%d\t%s\t%s\n", f.Growth, short(f.Func), short(f.Leaf))
	}
	tw.Flush()
	fixed := runs[1].report
	if len(fixed.Heap)+len(fixed.Goroutines) == 0 {
		fmt.Fprintln(w, "\nfixed service: no finding in either diff.")
	} else {
		fmt.Fprintf(w, "\nfixed service: %d heap and %d goroutine findings (none expected):\n", len(fixed.Heap), len(fixed.Goroutines))
		for _, f := range append(fixed.Heap, fixed.Goroutines...) {
			fmt.Fprintf(w, "  +%d %s %s\n", f.Growth, f.Unit, short(f.Func))
		}
	}
	fmt.Fprintln(w, "The article's case study: `top` after `-base` named strings.(*Builder).WriteString; so does the flat column here.")
	fmt.Fprintln(w)
	return nil
}

// diagnoseOnce serves a service with cfg and pprof on loopback ports, and
// diagnoses it under load l.
func diagnoseOnce(ctx context.Context, name string, cfg leaky.Config, l leaky.Load) (d diagnosis, err error) {
	d.name = name
	svc := leaky.New(cfg)
	defer svc.Close()
	app, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return d, err
	}
	appSrv := &http.Server{Handler: svc.Handler(), ReadHeaderTimeout: 5 * time.Second}
	appDone := make(chan error, 1)
	go func() { appDone <- appSrv.Serve(app) }()
	defer func() {
		if cerr := appSrv.Close(); cerr != nil {
			err = errors.Join(err, cerr)
		}
		if serr := <-appDone; !errors.Is(serr, http.ErrServerClosed) {
			err = errors.Join(err, serr)
		}
	}()

	pp, err := observe.Listen(observe.Config{Addr: "127.0.0.1:0", BlockRate: 0, MutexFraction: 0})
	if err != nil {
		return d, err
	}
	pctx, stop := context.WithCancel(ctx)
	ppDone := make(chan error, 1)
	go func() { ppDone <- pp.Serve(pctx, time.Second) }()
	defer func() {
		stop()
		if serr := <-ppDone; serr != nil {
			err = errors.Join(err, serr)
		}
	}()

	client := &http.Client{Timeout: time.Minute}
	d.report, err = diagnose.Run(ctx, client, pp.URL(), func(ctx context.Context) error {
		var err error
		d.tally, err = leaky.Drive(ctx, client, "http://"+app.Addr().String(), l)
		return err
	}, diagnose.Options{})
	return d, err
}

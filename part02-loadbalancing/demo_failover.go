package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/sysdesign-masterclass/golang/part02-loadbalancing/balancer"
	"github.com/sysdesign-masterclass/golang/part02-loadbalancing/fleet"
	"github.com/sysdesign-masterclass/golang/part02-loadbalancing/l7"
)

const (
	failoverClients = 6
	failoverCheck   = 50 * time.Millisecond
	failoverEject   = 200 * time.Millisecond
)

// failoverDemo keeps GETs, PUTs and POSTs going through the L7 proxy while
// b2 is killed and later restarted, and prints what happened to each.
func failoverDemo(ctx context.Context, w io.Writer, o options) error {
	fmt.Fprintf(w, "== A backend killed under load: %d clients, GET/PUT/POST through the L7 proxy to 4 backends (5 ms each) ==\n", failoverClients)
	start := time.Now()
	var mu sync.Mutex
	var events []string
	event := func(format string, a ...any) {
		mu.Lock()
		defer mu.Unlock()
		events = append(events, fmt.Sprintf("t=%.3fs  ", time.Since(start).Seconds())+fmt.Sprintf(format, a...))
	}
	l, err := startLab(labConfig{
		opts:  fleetOf(4, fleet.Options{Delay: 5 * time.Millisecond}),
		algo:  func([]*balancer.Backend) balancer.Algorithm { return new(balancer.RoundRobin) },
		l7:    l7.Config{EjectFor: failoverEject},
		check: failoverCheck,
		onChange: func(b *balancer.Backend, healthy bool) {
			if healthy {
				event("%s readmitted by the health checker (2 good probes, every %v)", b.Name, failoverCheck)
			} else {
				event("%s ejected by the health checker", b.Name)
			}
		},
	})
	if err != nil {
		return err
	}
	defer l.close()

	type tally struct{ sent, ok, failed int }
	var tmu sync.Mutex
	tallies := map[string]*tally{"GET": {}, "PUT": {}, "POST": {}}
	runCtx, stopClients := context.WithCancel(ctx)
	defer stopClients()
	var wg sync.WaitGroup
	for c := range failoverClients {
		wg.Go(func() {
			for i := 0; runCtx.Err() == nil; i++ {
				method := []string{"GET", "PUT", "POST"}[(i+c)%3]
				body := ""
				if method != "GET" {
					body = fmt.Sprintf(`{"client":%d,"n":%d}`, c, i)
				}
				a, err := send(runCtx, l.client, method, l.l7URL+"/orders", body)
				if runCtx.Err() != nil {
					return
				}
				tmu.Lock()
				t := tallies[method]
				t.sent++
				if err == nil && a.status == http.StatusOK {
					t.ok++
				} else {
					t.failed++
				}
				tmu.Unlock()
			}
		})
	}
	sleep := func(d time.Duration) error {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
			return nil
		}
	}
	b2 := l.pool.Backends()[1]
	if err := sleep(300 * time.Millisecond); err != nil {
		return err
	}
	inflight := b2.Inflight()
	l.fleet[1].Kill()
	event("kill b2 (%d request(s) in flight on it)", inflight)
	for deadline := time.Now().Add(5 * time.Second); b2.Healthy() && time.Now().Before(deadline); {
		time.Sleep(100 * time.Microsecond)
	}
	if !b2.Healthy() {
		event("b2 out of the pool: a refused connection ejected it for %v, sooner than the checker's 2 failed probes", failoverEject)
	}
	if err := sleep(400 * time.Millisecond); err != nil {
		return err
	}
	hits := l.fleet[1].Hits("")
	if err := l.fleet[1].Restart(); err != nil {
		return err
	}
	event("restart b2")
	for deadline := time.Now().Add(10 * time.Second); !b2.Healthy() && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if err := sleep(200 * time.Millisecond); err != nil {
		return err
	}
	stopClients()
	wg.Wait()
	mu.Lock()
	for _, e := range events {
		fmt.Fprintln(w, e)
	}
	mu.Unlock()
	fmt.Fprintf(w, "b2 served %d requests after readmission\n", l.fleet[1].Hits("")-hits)

	tw := table(w)
	fmt.Fprintln(tw, "method\tsent\t200\tfailed\tretried on another backend when")
	for _, m := range []string{"GET", "PUT", "POST"} {
		t := tallies[m]
		when := "the connection failed at any point (idempotent)"
		if m == "POST" {
			when = "only if the connection was refused: it may have run once already"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\n", m, t.sent, t.ok, t.failed, when)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	st := l.l7.Stats()
	fmt.Fprintf(w, "proxy: %d requests, %d retried, %d retries refused by the budget (20%% of requests in flight, at least 3), %d answered 502/503\n\n",
		st.Requests, st.Retries, st.RetriesDenied, st.Failed)
	return nil
}

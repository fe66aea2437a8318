package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"time"

	"github.com/sysdesign-masterclass/golang/part02-loadbalancing/balancer"
	"github.com/sysdesign-masterclass/golang/part02-loadbalancing/fleet"
	"github.com/sysdesign-masterclass/golang/part02-loadbalancing/l7"
)

// distributionDemo sends the same requests through the L7 proxy with each
// algorithm and counts what every backend served.
func distributionDemo(ctx context.Context, w io.Writer, o options) error {
	n := o.requests - o.requests%40 // whole rounds for every row
	fmt.Fprintf(w, "== Algorithms: %s requests through the L7 proxy to 4 backends, one at a time ==\n", thousands(n))
	hash := func(bs []*balancer.Backend) balancer.Algorithm { return balancer.NewConsistentHash(bs, 0, nil) }
	userKey := func(r *http.Request) string { return r.Header.Get("X-User-ID") }
	ipKey := func(r *http.Request) string { host, _, _ := strings.Cut(r.RemoteAddr, ":"); return host }
	rows := []struct {
		name, says string
		algo       func([]*balancer.Backend) balancer.Algorithm
		weights    []int
		cfg        l7.Config
		client     func(i int) (hdr []string, jar int) // per request: headers, and which cookie jar (-1: none)
	}{
		{"round robin", "O(1)", func([]*balancer.Backend) balancer.Algorithm { return new(balancer.RoundRobin) }, nil, l7.Config{}, nil},
		{"smooth weighted RR, weights 4:2:1:1", "O(1) (nginx's is O(N) per pick)", func([]*balancer.Backend) balancer.Algorithm { return new(balancer.SmoothWeighted) }, []int{4, 2, 1, 1}, l7.Config{}, nil},
		{"least connections", "O(log N) (a scan is O(N))", func([]*balancer.Backend) balancer.Algorithm { return new(balancer.LeastConn) }, nil, l7.Config{}, nil},
		{"P2C", "(not in the article) O(1)", func([]*balancer.Backend) balancer.Algorithm { return balancer.NewP2C(nil) }, nil, l7.Config{}, nil},
		{"consistent hash on X-User-ID, 40 users", "O(log N)", hash, nil, l7.Config{Key: userKey},
			func(i int) ([]string, int) { return []string{"X-User-ID", fmt.Sprint("user-", i%40)}, -1 }},
		{"IP hash, 40 users behind one NAT", `O(1), "uneven … (office NAT)"`, hash, nil, l7.Config{Key: ipKey}, nil},
		{"cookie SERVERID, 40 users", "cookie-based (SERVERID)", func([]*balancer.Backend) balancer.Algorithm { return new(balancer.RoundRobin) }, nil,
			l7.Config{StickyCookie: "SERVERID"}, func(i int) ([]string, int) { return nil, i % 40 }},
	}
	tw := table(w)
	fmt.Fprintln(tw, "algorithm\tb1\tb2\tb3\tb4\tsticky\tthe article says")
	for _, row := range rows {
		l, err := startLab(labConfig{opts: fleetOf(4, fleet.Options{}), weights: row.weights, algo: row.algo, l7: row.cfg})
		if err != nil {
			return err
		}
		counts, sticky, err := distribute(ctx, l, n, row.client)
		l.close()
		if err != nil {
			return fmt.Errorf("%s: %w", row.name, err)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\t%s\n", row.name, counts["b1"], counts["b2"], counts["b3"], counts["b4"], sticky, row.says)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	const keys = 10_000
	fmt.Fprintf(w, "a 5th backend joins: the ring moves %s of %s user keys, hash mod N moves %s (the FAQ: \"minimizes remapping\", not \"regardless of cluster size changes\")\n\n",
		percent(float64(balancer.MovedKeys(keys, 4, 5, true))/keys), thousands(keys), percent(float64(balancer.MovedKeys(keys, 4, 5, false))/keys))
	return nil
}

// distribute sends n GETs and counts them per backend. With a client func,
// each request carries that user's headers or cookie jar, and sticky says
// whether every user always reached the same backend.
func distribute(ctx context.Context, l *lab, n int, client func(i int) ([]string, int)) (map[string]int, string, error) {
	counts := map[string]int{}
	home := map[string]string{}
	jars := map[int]*http.Client{}
	moved := 0
	for i := range n {
		c, hdr, user := l.client, []string(nil), ""
		if client != nil {
			var jar int
			hdr, jar = client(i)
			user = fmt.Sprint(hdr, jar)
			if jar >= 0 {
				if jars[jar] == nil {
					j, _ := cookiejar.New(nil)
					jars[jar] = &http.Client{Transport: l.client.Transport, Jar: j, Timeout: 30 * time.Second}
				}
				c = jars[jar]
			}
		}
		a, err := send(ctx, c, "GET", l.l7URL+"/", "", hdr...)
		if err != nil {
			return nil, "", err
		}
		if a.status != http.StatusOK {
			return nil, "", fmt.Errorf("status %d", a.status)
		}
		counts[a.backend]++
		if client != nil {
			if h, ok := home[user]; ok && h != a.backend {
				moved++
			}
			home[user] = a.backend
		}
	}
	sticky := "-"
	if client != nil {
		sticky = "yes"
		if moved > 0 {
			sticky = fmt.Sprintf("no (%d moves)", moved)
		}
	}
	return counts, sticky, nil
}

// Package sim runs the slow-backend experiment as a discrete-event
// simulation: Poisson arrivals, N backends with a few workers and a FIFO
// queue each, one of them slower, and the real algorithms of package
// balancer picking by the real in-flight counters. The clock is simulated,
// so a run is exact and repeatable: the same seed gives the same latencies
// on a loaded laptop and on CI, which is what lets a test assert that least
// connections and P2C beat round robin at p99. The chapter's demo measures
// the same experiment on loopback for the numbers it prints beside these.
package sim

import (
	"container/heap"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/sysdesign-masterclass/golang/part02-loadbalancing/balancer"
)

// Config describes one experiment.
type Config struct {
	Backends   int           // N, ≥ 2
	Slow       int           // how many of them are slow (the last ones), < N
	Workers    int           // requests a backend serves at once; more wait in its queue
	Service    time.Duration // mean service time of a fast backend (exponential)
	SlowFactor float64       // a slow backend's mean service time is Service × SlowFactor
	Load       float64       // arrival rate as a share of the fleet's total capacity, in (0, 1)
	Requests   int           // requests simulated (after a 10% warm-up that is not measured)
	Seed       uint64
}

// Default is the experiment the chapter reports: four backends of four
// workers, 2 ms per request on average, one of them 5× slower (a degraded
// host), offered 20% of the fleet's capacity (1,280 requests/s, light
// enough that the loopback run measures the backends, not a busy CPU). Round robin gives the slow
// backend a quarter of the traffic, 80% of what it can serve, so requests
// queue there; at Load 0.3 that quarter is more than it can serve and its
// queue grows for as long as the traffic lasts.
var Default = Config{Backends: 4, Slow: 1, Workers: 4, Service: 2 * time.Millisecond, SlowFactor: 5, Load: 0.2, Requests: 200_000, Seed: 1}

// Algorithm is one contender: how to build it, and whether backends carry
// weights proportional to their capacity (which only helps an operator who
// knows in advance which backend is slow).
type Algorithm struct {
	Name     string
	Weighted bool
	New      func(rng *rand.Rand, backends []*balancer.Backend) balancer.Algorithm
}

// Algorithms are the contenders of the experiment, in the order printed.
var Algorithms = []Algorithm{
	{Name: "round robin", New: func(*rand.Rand, []*balancer.Backend) balancer.Algorithm { return new(balancer.RoundRobin) }},
	{Name: "weighted RR, weights = capacity", Weighted: true, New: func(*rand.Rand, []*balancer.Backend) balancer.Algorithm { return new(balancer.SmoothWeighted) }},
	{Name: "least connections", New: func(*rand.Rand, []*balancer.Backend) balancer.Algorithm { return new(balancer.LeastConn) }},
	{Name: "P2C", New: func(rng *rand.Rand, _ []*balancer.Backend) balancer.Algorithm { return balancer.NewP2C(rng) }},
}

// Result is the measured part of a run.
type Result struct {
	Latencies []time.Duration // sorted
	Share     []float64       // share of requests each backend served; the slow ones last
}

// Quantile is the nearest-rank q-quantile of the latencies.
func (r Result) Quantile(q float64) time.Duration {
	if len(r.Latencies) == 0 {
		return 0
	}
	rank := int(math.Ceil(q*float64(len(r.Latencies)) - 1e-9))
	return r.Latencies[min(max(rank, 1), len(r.Latencies))-1]
}

func (c Config) check() error {
	switch {
	case c.Backends < 2 || c.Slow < 0 || c.Slow >= c.Backends:
		return fmt.Errorf("sim: want 2+ backends and fewer slow ones, have %d and %d", c.Backends, c.Slow)
	case c.Workers < 1 || c.Service <= 0 || c.SlowFactor < 1:
		return errors.New("sim: want Workers ≥ 1, Service > 0, SlowFactor ≥ 1")
	case !(c.Load > 0 && c.Load < 1):
		return fmt.Errorf("sim: Load %v must be in (0, 1)", c.Load)
	case c.Requests < 100:
		return fmt.Errorf("sim: %d requests are too few for a p99", c.Requests)
	}
	return nil
}

// Run simulates cfg with one algorithm.
func Run(cfg Config, algo Algorithm) (Result, error) {
	if err := cfg.check(); err != nil {
		return Result{}, err
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x9e3779b97f4a7c15))
	service := make([]float64, cfg.Backends) // mean seconds per request
	backends := make([]*balancer.Backend, cfg.Backends)
	capacity := 0.0
	for i := range backends {
		service[i] = cfg.Service.Seconds()
		w := int(math.Round(cfg.SlowFactor))
		if i >= cfg.Backends-cfg.Slow {
			service[i] *= cfg.SlowFactor
			w = 1
		}
		if !algo.Weighted {
			w = 1
		}
		backends[i] = balancer.NewBackend(fmt.Sprintf("b%d", i+1), "", w)
		capacity += float64(cfg.Workers) / service[i]
	}
	pool, err := balancer.NewPool(algo.New(rng, backends), backends...)
	if err != nil {
		return Result{}, err
	}
	rate := cfg.Load * capacity

	warm := cfg.Requests / 10
	total := cfg.Requests + warm
	queues := make([][]job, cfg.Backends)
	busy := make([]int, cfg.Backends)
	served := make([]int, cfg.Backends)
	var done events
	lat := make([]time.Duration, 0, cfg.Requests)

	start := func(now float64, j job) {
		busy[j.backend]++
		heap.Push(&done, event{at: now + rng.ExpFloat64()*service[j.backend], j: j})
	}
	now, next := 0.0, rng.ExpFloat64()/rate
	for arrived := 0; arrived < total || done.Len() > 0; {
		if arrived < total && (done.Len() == 0 || next <= done[0].at) {
			now = next
			b, err := pool.Pick("")
			if err != nil {
				return Result{}, err
			}
			i := slices.Index(backends, b)
			b.Begin()
			j := job{id: arrived, backend: i, arrived: now}
			if busy[i] < cfg.Workers {
				start(now, j)
			} else {
				queues[i] = append(queues[i], j)
			}
			arrived++
			next = now + rng.ExpFloat64()/rate
			continue
		}
		e := heap.Pop(&done).(event)
		now = e.at
		i := e.j.backend
		backends[i].Done()
		busy[i]--
		if e.j.id >= warm {
			lat = append(lat, time.Duration((now-e.j.arrived)*float64(time.Second)))
			served[i]++
		}
		if len(queues[i]) > 0 {
			j := queues[i][0]
			queues[i] = queues[i][1:]
			start(now, j)
		}
	}
	slices.Sort(lat)
	share := make([]float64, cfg.Backends)
	for i, n := range served {
		share[i] = float64(n) / float64(len(lat))
	}
	return Result{Latencies: lat, Share: share}, nil
}

type job struct {
	id, backend int
	arrived     float64
}

type event struct {
	at float64
	j  job
}

// events is a min-heap of completions by time.
type events []event

func (e events) Len() int           { return len(e) }
func (e events) Less(i, j int) bool { return e[i].at < e[j].at }
func (e events) Swap(i, j int)      { e[i], e[j] = e[j], e[i] }
func (e *events) Push(x any)        { *e = append(*e, x.(event)) }
func (e *events) Pop() any {
	old := *e
	x := old[len(old)-1]
	*e = old[:len(old)-1]
	return x
}

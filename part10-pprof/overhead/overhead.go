// Package overhead measures what each profiler costs a running program: the
// same workload's throughput with no profiling, with the CPU profiler, with
// block and mutex profiling at several rates, with an execution trace, and
// while heap and goroutine profiles are written out periodically.
//
// The workload is a small service: clients hand requests to a pool of
// workers over an unbuffered channel and wait for the reply (blocking
// events), the workers encode JSON (CPU and allocation) and update a shared
// map under a mutex (contention). A profiler's cost depends on what the
// program does: block profiling at rate 1 records every channel hand-off,
// which is most of what this workload does, so the figures here are for a
// channel-heavy service, not a constant of the profiler.
package overhead

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"sync"
	"time"
)

// Service is the workload.
type Service struct {
	work   chan job
	wg     sync.WaitGroup
	parked chan struct{}

	mu  sync.Mutex
	log bytes.Buffer
	enc *json.Encoder
}

type job struct {
	n     int
	reply chan int
}

type record struct {
	ID    int      `json:"id"`
	Name  string   `json:"name"`
	Tags  []string `json:"tags"`
	Score float64  `json:"score"`
}

// Parked is how many idle goroutines the service keeps, as a server keeps
// idle connections: they cost nothing until a goroutine profile lists them.
const Parked = 1000

// NewService starts workers workers and Parked idle goroutines; Close stops
// them.
func NewService(workers int) *Service {
	s := &Service{work: make(chan job), parked: make(chan struct{})}
	s.enc = json.NewEncoder(&s.log)
	for range workers {
		s.wg.Go(s.worker)
	}
	for range Parked {
		s.wg.Go(func() { <-s.parked })
	}
	return s
}

var tags = []string{"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet", "kilo", "lima"}

// worker decodes a request and encodes the answer into a log shared by the
// workers, under its mutex: a few microseconds of CPU and allocation per
// request, part of it holding a lock the other workers want.
func (s *Service) worker() {
	for j := range s.work {
		in, _ := json.Marshal(record{ID: j.n, Name: "request", Tags: tags, Score: float64(j.n) / 3})
		var r record
		_ = json.Unmarshal(in, &r) // it was just encoded
		r.Name = "answer"
		s.mu.Lock()
		if s.log.Len() > 64<<10 {
			s.log.Reset()
		}
		before := s.log.Len()
		_ = s.enc.Encode(r) // into a bytes.Buffer: does not fail
		n := s.log.Len() - before
		s.mu.Unlock()
		j.reply <- n
	}
}

// Handle is one request: handed to a worker, answered on a channel of its own.
func (s *Service) Handle(n int) int {
	reply := make(chan int, 1)
	s.work <- job{n, reply}
	return <-reply
}

// Close stops the workers once the requests in flight are answered, and
// the idle goroutines.
func (s *Service) Close() {
	close(s.work)
	close(s.parked)
	s.wg.Wait()
}

// Profiler is one way of profiling the process while the workload runs.
type Profiler struct {
	Name    string // as benchmarks and tables show it
	Article string // the article's figure for it, or what it stands for
	// Start switches it on; stop switches it off and restores what Start
	// changed.
	Start func() (stop func(), err error)
}

// Profilers lists the settings measured, "none" first.
var Profilers = []Profiler{
	{"none", "", func() (func(), error) { return func() {}, nil }},
	{"cpu-100hz", "profile?seconds=30: ~5–10%", cpuProfile},
	{"heap-every-100ms", "heap: < 1%", every(100*time.Millisecond, "heap")},
	{"goroutine-every-100ms", "goroutine: < 0.1%", every(100*time.Millisecond, "goroutine")},
	{"heap-sampling-off", "MemProfileRate 0: what always-on heap sampling costs", memProfileRate(0)},
	{"block-rate-1", "block: ~2–5%", blockRate(1)},
	{"block-rate-10us", "block: ~2–5%", blockRate(10_000)},
	{"block-rate-1ms", "block: ~2–5%", blockRate(1_000_000)},
	{"mutex-fraction-1", "mutex: ~2–5%", mutexFraction(1)},
	{"mutex-fraction-10", "mutex: ~2–5%", mutexFraction(10)},
	{"mutex-fraction-100", "mutex: ~2–5%", mutexFraction(100)},
	{"trace", "trace?seconds=5: ~10–15%", traceOn},
}

// Lookup returns the profiler named name.
func Lookup(name string) (Profiler, bool) {
	for _, p := range Profilers {
		if p.Name == name {
			return p, true
		}
	}
	return Profiler{}, false
}

func cpuProfile() (func(), error) {
	if err := pprof.StartCPUProfile(io.Discard); err != nil {
		return nil, err
	}
	return pprof.StopCPUProfile, nil
}

func traceOn() (func(), error) {
	if err := trace.Start(io.Discard); err != nil {
		return nil, err
	}
	return trace.Stop, nil
}

func blockRate(ns int) func() (func(), error) {
	return func() (func(), error) {
		runtime.SetBlockProfileRate(ns)
		return func() { runtime.SetBlockProfileRate(0) }, nil
	}
}

func mutexFraction(n int) func() (func(), error) {
	return func() (func(), error) {
		prev := runtime.SetMutexProfileFraction(n)
		return func() { runtime.SetMutexProfileFraction(prev) }, nil
	}
}

func memProfileRate(r int) func() (func(), error) {
	return func() (func(), error) {
		prev := runtime.MemProfileRate
		runtime.MemProfileRate = r
		return func() { runtime.MemProfileRate = prev }, nil
	}
}

// every writes the named profile to io.Discard every d, as a scraper would.
func every(d time.Duration, name string) func() (func(), error) {
	return func() (func(), error) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			t := time.NewTicker(d)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					_ = pprof.Lookup(name).WriteTo(io.Discard, 0) // io.Discard does not fail
				}
			}
		}()
		return func() { cancel(); <-done }, nil
	}
}

// Clients is how many goroutines send requests at once; Workers how many
// serve them.
const (
	Clients = 8
	Workers = 4
)

// ErrBusy is returned by Measure when another profile of the same kind is
// already running in the process (a CPU profile or a trace).
var ErrBusy = errors.New("profiler already in use")

// Result is one measurement.
type Result struct {
	Requests int
	Wall     time.Duration // from the first request to the last answer
	CPU      time.Duration // the process's CPU time meanwhile (0 where not measured)
}

// PerSecond is the throughput: requests per second of wall time.
func (r Result) PerSecond() float64 { return float64(r.Requests) / r.Wall.Seconds() }

// CPUPerRequest is the process's CPU time per request: what a profiler adds
// to, and, unlike wall time, not stretched when other processes take the
// CPU away. 0 where CPU time is not measured.
func (r Result) CPUPerRequest() time.Duration {
	return r.CPU / time.Duration(max(r.Requests, 1))
}

// Measure runs the workload under p for about d (each client sends one
// request at least) and returns how many requests were served, in how much
// wall and CPU time.
func Measure(ctx context.Context, p Profiler, d time.Duration) (Result, error) {
	s := NewService(Workers)
	defer s.Close()
	stop, err := p.Start()
	if err != nil {
		return Result{}, errors.Join(ErrBusy, err)
	}
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	cpu0, _ := processCPU()
	start := time.Now()
	var wg sync.WaitGroup
	counts := make([]int, Clients)
	for c := range Clients {
		wg.Go(func() {
			for i := 0; i == 0 || ctx.Err() == nil; i++ { // one request at least, however slow the machine
				s.Handle(c*1_000_000 + i)
				counts[c]++
			}
		})
	}
	wg.Wait()
	r := Result{Wall: time.Since(start)}
	if cpu1, ok := processCPU(); ok {
		r.CPU = cpu1 - cpu0
	}
	for _, n := range counts {
		r.Requests += n
	}
	return r, nil
}

// Package leaky is a small search service with the article's two leaks planted
// behind switches, and their fixes, so that a diagnosis can be run against a
// leak whose cause is known.
//
//   - GoroutineLeak: the article's leakyHandler. The handler starts the lookup
//     in a goroutine that sends its result on an unbuffered channel, and gives
//     up after Timeout; the goroutine then blocks on the send for ever. The fix
//     (GoroutineFixed) passes the request's context to the lookup, which
//     returns when it ends, and sends on a channel with room for the one
//     result. GoroutineArticleFix is the article's fixedHandler: the buffered
//     channel frees the goroutine once the lookup returns, but the lookup never
//     hears of the timeout, so every timed-out request keeps a goroutine (and
//     the backend) busy until the slow lookup finishes.
//   - HeapLeak: the article's case study. A middleware appends every request's
//     URL to a strings.Builder created with the server, so it grows by each
//     request's path and query for as long as the process lives. The fix
//     (HeapFixed) keeps the Builder per request.
//
// The planted functions are (*Service).lookupLeaky (goroutines) and
// (*Service).auditLeaky (heap); a diagnosis should name them.
package leaky

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Goroutines selects the handler's lookup.
type Goroutines int

// The lookups.
const (
	GoroutineFixed      Goroutines = iota // the lookup hears the request's context; a buffered channel
	GoroutineLeak                         // the article's leakyHandler: an unbuffered send after the handler gave up
	GoroutineArticleFix                   // the article's fixedHandler: buffered, but the lookup never hears the timeout
)

func (g Goroutines) String() string {
	switch g {
	case GoroutineFixed:
		return "fixed"
	case GoroutineLeak:
		return "leak"
	case GoroutineArticleFix:
		return "article-fix"
	}
	return fmt.Sprintf("Goroutines(%d)", int(g))
}

// Heap selects the audit middleware.
type Heap int

// The middlewares.
const (
	HeapFixed Heap = iota // a strings.Builder per request
	HeapLeak              // one strings.Builder for the server's lifetime
)

func (h Heap) String() string {
	switch h {
	case HeapFixed:
		return "fixed"
	case HeapLeak:
		return "leak"
	}
	return fmt.Sprintf("Heap(%d)", int(h))
}

// Config switches the leaks and sets the timings.
type Config struct {
	Goroutines Goroutines
	Heap       Heap
	// Timeout is how long the handler waits for the lookup before it
	// answers 504; zero means 50 ms.
	Timeout time.Duration
	// Backend is the slow dependency the lookup calls. Nil means Simulated.
	Backend Backend
	// Audit receives each request's audit line; nil means io.Discard.
	Audit io.Writer
}

// Backend is the dependency a search waits for: it answers q, and returns
// early with ctx's error when ctx ends.
type Backend func(ctx context.Context, q string) (Result, error)

// Result is a search's answer.
type Result struct {
	Query string `json:"query"`
	Hits  int    `json:"hits"`
}

// SlowQuery marks a query the Simulated backend answers only after SlowFor:
// a query that always times out.
const SlowQuery = "slow:"

// Simulated is a backend that answers at once, except for queries starting
// with SlowQuery, which take slowFor (or until ctx ends).
func Simulated(slowFor time.Duration) Backend {
	return func(ctx context.Context, q string) (Result, error) {
		if strings.HasPrefix(q, SlowQuery) {
			t := time.NewTimer(slowFor)
			defer t.Stop()
			select {
			case <-t.C:
			case <-ctx.Done():
				return Result{}, ctx.Err()
			}
		}
		return Result{Query: q[:min(len(q), 32)], Hits: len(q) % 17}, nil
	}
}

// Service is the search service.
type Service struct {
	cfg   Config
	audit io.Writer

	mu      sync.Mutex
	buf     strings.Builder // HeapLeak's server-scoped Builder
	orphans []chan answer   // GoroutineLeak's unread channels, for Close
}

// New returns a service with cfg's leaks.
func New(cfg Config) *Service {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 50 * time.Millisecond
	}
	if cfg.Backend == nil {
		cfg.Backend = Simulated(4 * cfg.Timeout)
	}
	s := &Service{cfg: cfg, audit: cfg.Audit}
	if s.audit == nil {
		s.audit = io.Discard
	}
	return s
}

// Handler returns the service's own mux: GET /api/search?q=..., GET /health.
// It is never http.DefaultServeMux, which holds pprof's handlers in any
// program that links net/http/pprof.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/search", s.search)
	mux.HandleFunc("GET /health", func(http.ResponseWriter, *http.Request) {})
	return s.auditMiddleware(mux)
}

// Audited is the length of the server-scoped audit buffer: what HeapLeak has
// accumulated so far (0 with HeapFixed).
func (s *Service) Audited() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Len()
}

func (s *Service) auditMiddleware(next http.Handler) http.Handler {
	audit := s.auditFixed
	if s.cfg.Heap == HeapLeak {
		audit = s.auditLeaky
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		audit(r)
		next.ServeHTTP(w, r)
	})
}

// auditLeaky appends the request's URL to the Builder the service was
// created with: it is never reset, so it holds every URL ever requested.
//
//go:noinline
func (s *Service) auditLeaky(r *http.Request) {
	s.mu.Lock()
	s.buf.WriteString(r.Method)
	s.buf.WriteByte(' ')
	s.buf.WriteString(r.URL.RequestURI())
	s.buf.WriteByte('\n')
	s.mu.Unlock()
}

// auditFixed builds the same line in a Builder of its own, which is garbage
// once the line is written.
//
//go:noinline
func (s *Service) auditFixed(r *http.Request) {
	var b strings.Builder
	b.WriteString(r.Method)
	b.WriteByte(' ')
	b.WriteString(r.URL.RequestURI())
	b.WriteByte('\n')
	s.mu.Lock()
	_, _ = io.WriteString(s.audit, b.String()) // a failing audit sink loses the line, not the request
	s.mu.Unlock()
}

// ErrTimeout is the lookup's answer when the backend took longer than
// Config.Timeout.
var ErrTimeout = errors.New("search timed out")

func (s *Service) search(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query().Get("q")
	var res Result
	var err error
	switch s.cfg.Goroutines {
	case GoroutineLeak:
		res, err = s.lookupLeaky(r.Context(), q)
	case GoroutineArticleFix:
		res, err = s.lookupArticleFix(r.Context(), q)
	default:
		res, err = s.lookup(r.Context(), q)
	}
	switch {
	case errors.Is(err, ErrTimeout), errors.Is(err, context.DeadlineExceeded): // the fix's backend hears the deadline too
		http.Error(w, err.Error(), http.StatusGatewayTimeout)
	case err != nil:
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
	default:
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(res) // fails only when the client has gone
	}
}

type answer struct {
	res Result
	err error
}

// lookupLeaky is the article's leakyHandler: the backend is called without
// the request's context, and the result goes on an unbuffered channel that
// nobody reads once the handler has timed out.
//
//go:noinline
func (s *Service) lookupLeaky(ctx context.Context, q string) (Result, error) {
	ch := make(chan answer)
	go func() {
		res, err := s.cfg.Backend(context.Background(), q)
		ch <- answer{res, err} // blocks for ever after a timeout
	}()
	res, err := s.wait(ctx, ch)
	if err != nil {
		s.mu.Lock()
		s.orphans = append(s.orphans, ch) // only so that Close can end the test cleanly
		s.mu.Unlock()
	}
	return res, err
}

// Leaked is the number of lookups GoroutineLeak has abandoned so far: each
// left a goroutine that will block on its send.
func (s *Service) Leaked() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.orphans)
}

// Close reads every abandoned channel, which lets GoroutineLeak's stuck
// goroutines end (after their backend calls return). A real service has no
// such list: that is what makes the leak a leak. Tests and the demo call
// Close so that they end with no goroutine of theirs running.
func (s *Service) Close() {
	s.mu.Lock()
	orphans := s.orphans
	s.orphans = nil
	s.mu.Unlock()
	for _, ch := range orphans {
		<-ch
	}
}

// lookupArticleFix is the article's fixedHandler: a buffered channel and a
// select on ctx.Done() around the send. The send's operand, the backend call,
// is evaluated before the select, so the goroutine runs the whole backend
// call whatever ctx says; the select only ever finds the buffer free.
//
//go:noinline
func (s *Service) lookupArticleFix(ctx context.Context, q string) (Result, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	ch := make(chan answer, 1)
	go func() {
		select {
		case ch <- s.call(context.Background(), q): // evaluated first, in full
		case <-ctx.Done():
		}
	}()
	select {
	case a := <-ch:
		return a.res, a.err
	case <-ctx.Done():
		return Result{}, ErrTimeout
	}
}

func (s *Service) call(ctx context.Context, q string) answer {
	res, err := s.cfg.Backend(ctx, q)
	return answer{res, err}
}

// lookup is the fix: the backend hears the deadline and returns when it
// passes, and the channel has room for the one answer, so the goroutine ends
// whether or not anyone reads it.
//
//go:noinline
func (s *Service) lookup(ctx context.Context, q string) (Result, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	ch := make(chan answer, 1)
	go func() { ch <- s.call(ctx, q) }()
	return s.wait(ctx, ch)
}

// wait returns the lookup's answer, or ErrTimeout after Config.Timeout.
func (s *Service) wait(ctx context.Context, ch <-chan answer) (Result, error) {
	t := time.NewTimer(s.cfg.Timeout)
	defer t.Stop()
	select {
	case a := <-ch:
		return a.res, a.err
	case <-t.C:
		return Result{}, ErrTimeout
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
}

package observe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime"
	"strings"
	"time"
)

// DefaultAddr is where the article serves pprof, spelled as the IP so that no
// resolver decides which interface it is.
const DefaultAddr = "127.0.0.1:6060"

// Default profiling rates. DefaultBlockRate samples about one blocking event
// per 10 µs spent blocked, DefaultMutexFraction one contention event in 10; the
// chapter's overhead benchmark measures what these and the extremes cost
// (README, "Measured vs the article").
const (
	DefaultBlockRate     = 10_000 // ns: runtime.SetBlockProfileRate
	DefaultMutexFraction = 10     // runtime.SetMutexProfileFraction
)

// ErrNotLoopback is returned by Listen for an address other hosts could reach,
// unless Config.AllowRemote is set.
var ErrNotLoopback = errors.New("not a loopback address")

// Config says where the pprof server listens and what it profiles.
type Config struct {
	// Addr is host:port; "" means DefaultAddr. A port of 0 picks a free one.
	Addr string
	// AllowRemote lets Addr be something other than loopback: every interface
	// (":6060", "0.0.0.0:6060") or a routable IP. pprof shows stack traces,
	// the command line and memory contents' shapes to whoever can connect.
	// Without it the server also refuses a request whose Host header is not
	// a loopback IP or localhost (a DNS-rebinding page's).
	AllowRemote bool
	// BlockRate is passed to runtime.SetBlockProfileRate: sample about one
	// blocking event per BlockRate nanoseconds blocked; 1 records every event,
	// 0 turns the block profile off. Negative means DefaultBlockRate.
	BlockRate int
	// MutexFraction is passed to runtime.SetMutexProfileFraction: record
	// about one contention event in MutexFraction; 0 turns the mutex profile
	// off. Negative means DefaultMutexFraction.
	MutexFraction int
	// Exporter, if set, is served as text at /debug/runtime.
	Exporter *Exporter
}

// DefaultConfig is the loopback server with the default rates.
func DefaultConfig() Config {
	return Config{Addr: DefaultAddr, BlockRate: DefaultBlockRate, MutexFraction: DefaultMutexFraction}
}

// Server serves net/http/pprof's handlers on a mux of its own.
type Server struct {
	cfg  Config
	ln   net.Listener
	srv  *http.Server
	prev int // the mutex fraction before Start
}

// Handler returns a mux with pprof's handlers under /debug/pprof/ and, if
// exp is not nil, exp's text at /debug/runtime. It is what Server serves;
// mount it on another private mux if you already have one.
func Handler(exp *Exporter) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /debug/pprof/", pprof.Index) // named profiles: heap, goroutine, block, mutex, allocs, threadcreate
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("POST /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	if exp != nil {
		mux.HandleFunc("GET /debug/runtime", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			fmt.Fprintln(w, exp.Read())
		})
	}
	return mux
}

// CheckAddr returns nil if addr's host is a loopback IP or "localhost", and
// an error wrapping ErrNotLoopback otherwise (an empty host means every
// interface). Names other than localhost are refused rather than resolved:
// what a name resolves to can change after the check.
func CheckAddr(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("pprof address %q: %w", addr, err)
	}
	if isLoopback(host) {
		return nil
	}
	where := host
	if host == "" {
		where = "every interface"
	}
	return fmt.Errorf("pprof address %q (%s): %w; use 127.0.0.1 or [::1], or allow it explicitly", addr, where, ErrNotLoopback)
}

// isLoopback reports whether host (no port) is "localhost" or a loopback IP.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// loopbackHosts answers only requests whose Host is a loopback IP or
// localhost. Listening on loopback keeps other machines out but not a web
// page that the browser on this machine loaded from elsewhere: by DNS
// rebinding the page's own name resolves to 127.0.0.1, and its requests
// carry that name in Host.
func loopbackHosts(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if hp, _, err := net.SplitHostPort(host); err == nil {
			host = hp
		}
		if !isLoopback(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")) {
			http.Error(w, fmt.Sprintf("pprof: Host %q is %v: this server answers requests to 127.0.0.1, [::1] or localhost", r.Host, ErrNotLoopback), http.StatusMisdirectedRequest)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// Listen checks cfg.Addr, opens the listener and checks the address it got,
// but serves nothing yet and changes no profiling rate.
func Listen(cfg Config) (*Server, error) {
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	if cfg.BlockRate < 0 {
		cfg.BlockRate = DefaultBlockRate
	}
	if cfg.MutexFraction < 0 {
		cfg.MutexFraction = DefaultMutexFraction
	}
	if !cfg.AllowRemote {
		if err := CheckAddr(cfg.Addr); err != nil {
			return nil, err
		}
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("pprof server: %w", err)
	}
	if tcp, ok := ln.Addr().(*net.TCPAddr); !cfg.AllowRemote && (!ok || !tcp.IP.IsLoopback()) {
		ln.Close()
		return nil, fmt.Errorf("pprof server: %q listens on %v: %w", cfg.Addr, ln.Addr(), ErrNotLoopback)
	}
	var h http.Handler = Handler(cfg.Exporter)
	if !cfg.AllowRemote {
		h = loopbackHosts(h)
	}
	return &Server{
		cfg: cfg,
		ln:  ln,
		srv: &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second},
	}, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL is the server's base URL: http://Addr.
func (s *Server) URL() string { return "http://" + s.Addr() }

// Serve sets the profiling rates and serves until ctx ends, then stops the
// server, turns block and mutex profiling back off and returns nil. In-flight
// requests get up to drain to finish; a longer one (a 30-second CPU profile)
// is then cut off by closing its connection, which ends its context. The
// rates are process-wide: two Servers in one process share them.
func (s *Server) Serve(ctx context.Context, drain time.Duration) error {
	runtime.SetBlockProfileRate(s.cfg.BlockRate)
	s.prev = runtime.SetMutexProfileFraction(s.cfg.MutexFraction)
	defer func() {
		runtime.SetBlockProfileRate(0) // the runtime has no getter for the old rate; 0 is its default
		runtime.SetMutexProfileFraction(s.prev)
	}()
	served := make(chan error, 1)
	go func() { served <- s.srv.Serve(s.ln) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	var err error
	if s.srv.Shutdown(sctx) != nil {
		err = s.srv.Close() // a profile still running: cut it off
	}
	if serr := <-served; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}

// Close closes the listener of a server that never served.
func (s *Server) Close() error { return s.ln.Close() }

// Package l7 is an HTTP load balancer on net/http/httputil.ReverseProxy:
// any algorithm of package balancer, affinity by cookie or by a hashed
// header, passive ejection (for Config.EjectFor) of a backend that refuses
// connections, and retries on another backend that cannot duplicate a side
// effect.
//
// Retry rules (the part the article leaves out):
//   - A request whose connection was refused or timed out while dialling
//     never reached a backend, so it is retried on another one whatever its
//     method, as HAProxy's default "retry-on conn-failure" does.
//   - A request that may have reached a backend (reset, EOF, timeout after it
//     was written) is retried only if its method is idempotent (GET, HEAD,
//     OPTIONS, TRACE, PUT, DELETE: RFC 9110 §9.2.2) and its body, if any, was
//     small enough to keep (RetryBodyLimit). A POST is never sent twice.
//   - A backend that sends no response headers within TryTimeout (30 s by
//     default) of receiving the whole request counts as a failure after the
//     request was written: the request is retried only under the rule above,
//     else answered 504. The clock starts when the request is complete, as
//     Envoy's per-try timeout does: a slow upload is the client's time, and
//     a connect that hangs is a dial failure (DialTimeout), not a timeout of
//     a request that may have run.
//   - Once the backend's response headers arrive nothing is retried.
//   - Every retry needs room in a RetryBudget (Envoy's retry_budget: retries
//     in flight ≤ 20% of requests in flight, at least 3), so a failing fleet
//     sees at most 1.2× its normal load instead of MaxAttempts×.
package l7

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sysdesign-masterclass/golang/part02-loadbalancing/balancer"
)

// Config configures a Proxy. Pool is required.
type Config struct {
	Pool *balancer.Pool
	// Key returns the affinity key a hashing algorithm uses (e.g. a user ID
	// header). nil: no key.
	Key func(*http.Request) string
	// StickyCookie, if set, names a cookie (HAProxy's SERVERID) that pins a
	// client to the backend that served its first response, as long as that
	// backend is healthy.
	StickyCookie string
	// EjectFor is how long a backend that refused a connection stays out of
	// the pool (passive ejection; 0: 10 s, negative: never ejected by the
	// proxy, only by a health checker).
	EjectFor time.Duration
	// MaxAttempts bounds the backends one request tries (0: 3).
	MaxAttempts int
	// TryTimeout bounds each attempt's wait for the backend's response
	// headers once the whole request is written to it (0: DefaultTryTimeout;
	// negative: no bound). A backend that takes a request and never answers
	// then costs one TryTimeout: the request is retried elsewhere if it may
	// be (idempotent, body kept), else answered 504. The body that follows
	// the headers is not bounded. It is the transport's
	// ResponseHeaderTimeout: an *http.Transport in Transport is cloned with
	// it set; any other RoundTripper must bound its own wait, with
	// TryTimeout negative.
	TryTimeout time.Duration
	// Budget caps retries fleet-wide (nil: NewRetryBudget(20, 3)).
	Budget *RetryBudget
	// RetryBodyLimit is the largest request body kept in memory so that the
	// request can be sent again (0: 64 KiB; negative: never keep, so requests
	// with a body are never retried).
	RetryBodyLimit int64
	// Transport sends requests to backends (nil: a clone of
	// http.DefaultTransport with 256 idle connections per backend, a
	// DialTimeout connect, no compression of its own and no HTTP_PROXY).
	Transport http.RoundTripper
	// ErrorLog receives proxy errors (nil: discarded).
	ErrorLog *log.Logger
}

// Proxy is an http.Handler that balances requests over a pool.
type Proxy struct {
	cfg   Config
	rp    *httputil.ReverseProxy
	stats stats
}

type stats struct {
	requests, retries, denied, failed atomic.Int64
}

// Stats counts what a proxy did since it started.
type Stats struct {
	Requests      int64 // requests received
	Retries       int64 // attempts on a second or later backend
	RetriesDenied int64 // retries the budget refused
	Failed        int64 // requests answered 502 or 503 by the proxy itself (not counting clients that left)
}

// New returns a proxy for cfg.
func New(cfg Config) (*Proxy, error) {
	if cfg.Pool == nil {
		return nil, errors.New("l7: Config.Pool is nil")
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 3
	}
	if cfg.EjectFor == 0 {
		cfg.EjectFor = 10 * time.Second
	}
	if cfg.TryTimeout == 0 {
		cfg.TryTimeout = DefaultTryTimeout
	}
	if cfg.Budget == nil {
		cfg.Budget = NewRetryBudget(20, 3)
	}
	if cfg.RetryBodyLimit == 0 {
		cfg.RetryBodyLimit = 64 << 10
	}
	switch t := cfg.Transport.(type) {
	case nil:
		d := http.DefaultTransport.(*http.Transport).Clone()
		d.DialContext = (&net.Dialer{Timeout: DialTimeout, KeepAlive: 30 * time.Second}).DialContext
		d.MaxIdleConnsPerHost = 256
		d.MaxIdleConns = 0
		// The client's Accept-Encoding goes through as it came; without this
		// the transport would ask a backend for gzip on behalf of a client
		// that did not, and spend CPU inflating it again.
		d.DisableCompression = true
		// Backends are reached directly: DefaultTransport's proxy comes from
		// HTTP_PROXY, which a pod sets for its egress, not for the fleet
		// behind it.
		d.Proxy = nil
		d.ResponseHeaderTimeout = max(0, cfg.TryTimeout)
		cfg.Transport = d
	case *http.Transport:
		if cfg.TryTimeout > 0 {
			t = t.Clone()
			t.ResponseHeaderTimeout = cfg.TryTimeout
			cfg.Transport = t
		}
	default:
		if cfg.TryTimeout > 0 {
			return nil, fmt.Errorf("l7: TryTimeout needs an *http.Transport (its ResponseHeaderTimeout); a %T must bound its own wait, with TryTimeout -1", t)
		}
	}
	if cfg.ErrorLog == nil {
		cfg.ErrorLog = log.New(io.Discard, "", 0)
	}
	p := &Proxy{cfg: cfg}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host = "backend.invalid" // set per attempt by RoundTrip
			pr.SetXForwarded()                  // X-Forwarded-For: the peer only; an incoming one was removed
		},
		Transport:      (*attempts)(p),
		ModifyResponse: p.modifyResponse,
		ErrorHandler:   p.errorHandler,
		ErrorLog:       cfg.ErrorLog,
		BufferPool:     buffers{},
	}
	return p, nil
}

// buffers recycles ReverseProxy's copy buffers: without a pool it allocates
// 32 KiB for every response it copies.
type buffers struct{}

var bufferPool = sync.Pool{New: func() any { return new([32 << 10]byte) }}

func (buffers) Get() []byte  { return bufferPool.Get().(*[32 << 10]byte)[:] }
func (buffers) Put(b []byte) { bufferPool.Put((*[32 << 10]byte)(b)) }

// Stats returns the counters.
func (p *Proxy) Stats() Stats {
	return Stats{p.stats.requests.Load(), p.stats.retries.Load(), p.stats.denied.Load(), p.stats.failed.Load()}
}

// Budget returns the retry budget in use.
func (p *Proxy) Budget() *RetryBudget { return p.cfg.Budget }

type ctxKey struct{}

// call is one client request's journey over backends; only the goroutine
// serving the request touches it.
type call struct {
	key        string
	sticky     *balancer.Backend // the cookie's backend, if healthy
	tried      []*balancer.Backend
	triedBuf   [3]*balancer.Backend // tried's room for MaxAttempts ≤ 3 without an allocation
	served     *balancer.Backend
	retrying   bool   // holds a budget slot
	body       []byte // the request body, kept for a second attempt
	replayable bool   // no body, or body kept
	idempotent bool
}

// ServeHTTP balances one request.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.stats.requests.Add(1)
	budget := p.cfg.Budget
	budget.begin()
	c := &call{}
	c.tried = c.triedBuf[:0]
	defer func() {
		if c.retrying {
			budget.retryDone()
		}
		budget.end()
	}()
	if p.cfg.Key != nil {
		c.key = p.cfg.Key(r)
	}
	if name := p.cfg.StickyCookie; name != "" {
		if ck, err := r.Cookie(name); err == nil {
			if b, ok := p.cfg.Pool.Backend(ck.Value); ok && b.Healthy() {
				c.sticky = b
			}
		}
	}
	c.idempotent = idempotent(r.Method)
	c.replayable = r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0
	if !c.replayable && r.ContentLength > 0 && r.ContentLength <= p.cfg.RetryBodyLimit {
		body, err := io.ReadAll(io.LimitReader(r.Body, r.ContentLength))
		if err != nil {
			p.stats.failed.Add(1)
			http.Error(w, "reading the request body: "+err.Error(), http.StatusBadRequest)
			return
		}
		c.body, c.replayable = body, true
		r.Body = io.NopCloser(bytes.NewReader(body))
	} // else: unknown or large: streamed once, not retried
	p.rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, c)))
}

// idempotent reports RFC 9110's idempotent methods.
func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// attempts is the proxy's transport: it picks a backend per attempt.
type attempts Proxy

// RoundTrip sends req to one backend, and to others while the failure allows
// a retry.
func (a *attempts) RoundTrip(req *http.Request) (*http.Response, error) {
	p := (*Proxy)(a)
	c, ok := req.Context().Value(ctxKey{}).(*call)
	if !ok {
		return nil, errors.New("l7: request did not come through Proxy.ServeHTTP")
	}
	var lastErr error
	for attempt := 0; attempt < p.cfg.MaxAttempts; attempt++ {
		b := c.sticky
		if b == nil || attempt > 0 || !b.Healthy() {
			var err error
			if b, err = p.cfg.Pool.Pick(c.key, c.tried...); err != nil {
				if lastErr != nil {
					return nil, fmt.Errorf("%w (after: %w)", err, lastErr)
				}
				return nil, err
			}
		}
		if attempt > 0 {
			if !c.retrying && !p.cfg.Budget.tryRetry() {
				p.stats.denied.Add(1)
				return nil, fmt.Errorf("retry budget exhausted: %w", lastErr)
			}
			c.retrying = true
			p.stats.retries.Add(1)
		}
		c.tried = append(c.tried, b)
		out := req
		if attempt > 0 {
			out = req.Clone(req.Context())
			if c.body != nil {
				out.Body = io.NopCloser(bytes.NewReader(c.body))
			}
		}
		out.URL.Host = b.Addr // the Host header stays the client's
		b.Begin()
		resp, err := p.cfg.Transport.RoundTrip(out)
		if err == nil {
			p.cfg.Pool.Readmit(b) // it answered: if it was ejected (picked as a last resort), it is back
			c.served = b
			body := &doneBody{ReadCloser: resp.Body, b: b}
			resp.Body = body
			if w, ok := body.ReadCloser.(io.Writer); ok && resp.StatusCode == http.StatusSwitchingProtocols {
				resp.Body = upgraded{body, w} // ReverseProxy splices the client to it: it must stay writable
			}
			return resp, nil
		}
		b.Done()
		notSent := dialFailed(err)
		if !notSent && timedOut(err) {
			err = fmt.Errorf("%w (%v): %w", ErrTryTimeout, p.cfg.TryTimeout, err)
		}
		lastErr = fmt.Errorf("%s: %w", b.Name, err)
		if notSent && balancer.Refused(err) {
			p.cfg.Pool.Eject(b, p.cfg.EjectFor)
		}
		if req.Context().Err() != nil || !c.replayable || (!notSent && !c.idempotent) {
			return nil, lastErr
		}
	}
	return nil, lastErr
}

// ErrTryTimeout is an attempt that got no response headers within
// Config.TryTimeout; the proxy answers 504 when it is the last, whether or
// not a backend was left to try.
var ErrTryTimeout = errors.New("l7: no response headers within TryTimeout")

// DefaultTryTimeout is Config.TryTimeout's default.
const DefaultTryTimeout = 30 * time.Second

// timedOut reports a timeout after the connection was made: the transport's
// ResponseHeaderTimeout (TryTimeout), or a TLS handshake that stalled.
func timedOut(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// dialFailed reports an error from connecting to the backend: the request
// was not sent, so any method may go elsewhere.
func dialFailed(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// doneBody ends the backend's in-flight count when the proxy has copied the
// whole response, not when the headers arrive: least connections sees a
// large download as load.
type doneBody struct {
	io.ReadCloser
	b    *balancer.Backend
	once atomic.Bool
}

func (d *doneBody) Close() error {
	err := d.ReadCloser.Close()
	if d.once.CompareAndSwap(false, true) {
		d.b.Done()
	}
	return err
}

// upgraded is doneBody for a 101 response, whose body is the backend
// connection: a WebSocket, say, is in flight until it closes.
type upgraded struct {
	*doneBody
	io.Writer
}

// CloseWrite passes a client's half-close on to the backend: ReverseProxy
// looks for it on the connection it splices, and without it a client's FIN
// closes both directions before the backend has answered.
func (u upgraded) CloseWrite() error {
	if cw, ok := u.ReadCloser.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return fmt.Errorf("l7: CloseWrite: %w", http.ErrNotSupported)
}

func (p *Proxy) modifyResponse(resp *http.Response) error {
	name := p.cfg.StickyCookie
	if name == "" {
		return nil
	}
	c := resp.Request.Context().Value(ctxKey{}).(*call)
	if c.served != nil && c.served != c.sticky {
		resp.Header.Add("Set-Cookie", (&http.Cookie{
			Name: name, Value: c.served.Name, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode,
		}).String())
	}
	return nil
}

func (p *Proxy) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		return // the client went away: nobody reads an answer, and it is not the fleet's failure
	}
	p.stats.failed.Add(1)
	p.cfg.ErrorLog.Printf("l7: %s %s: %v", r.Method, r.URL.Path, err)
	status := http.StatusBadGateway
	switch {
	case errors.Is(err, ErrTryTimeout): // the last backend tried timed out, even if none is left
		status = http.StatusGatewayTimeout
	case errors.Is(err, balancer.ErrNoBackend):
		status = http.StatusServiceUnavailable
		w.Header().Set("Retry-After", "1")
	}
	http.Error(w, http.StatusText(status), status)
}

// DialTimeout bounds the default transport's connect: a backend that does
// not accept within it is treated like one that refuses (ejected, and the
// request goes elsewhere).
const DialTimeout = 2 * time.Second

// CloseIdleConnections closes the transport's idle connections to the
// backends (when it has any): call it when the proxy is done.
func (p *Proxy) CloseIdleConnections() {
	if t, ok := p.cfg.Transport.(interface{ CloseIdleConnections() }); ok {
		t.CloseIdleConnections()
	}
}

// Package middleware puts a quota.Limiter in front of an http.Handler, per
// route, with the response fields clients can act on:
//
//   - X-RateLimit-Limit and X-RateLimit-Remaining (a de-facto convention,
//     not an RFC);
//   - RateLimit-Policy and RateLimit, as defined by the IETF draft
//     draft-ietf-httpapi-ratelimit-headers-11 (May 2026): structured-field
//     lists such as `RateLimit-Policy: "hello";q=10;w=60` and
//     `RateLimit: "hello";r=3;t=12` (r remaining, t seconds until the quota
//     next grows); no partition key is sent, since the key here is the
//     client's address;
//   - on 429, Retry-After in whole seconds, rounded up, from the limiter's
//     own computation (not the whole window), and the draft's quota-exceeded
//     problem document.
//
// Every Rule must say what happens when its limiter cannot decide (Redis is
// down or slow): FailClosed answers 503 with Retry-After, protecting what is
// behind the route; FailOpen serves the request unlimited, keeping the route
// available. There is no default: the zero value is rejected.
//
// The key is the rule's name and the client's network (clientip.Group: the
// address for IPv4, its /64 for IPv6). A request whose address cannot be
// determined is answered 400 with the reason, never keyed on a guess.
package middleware

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/sysdesign-masterclass/golang/part11-ratelimit/clientip"
	"github.com/sysdesign-masterclass/golang/part11-ratelimit/quota"
)

// OnError is a rule's choice for when its limiter fails.
type OnError int

const (
	_ OnError = iota
	// FailClosed answers 503 + Retry-After: the backend's safety first.
	FailClosed
	// FailOpen serves the request unlimited: the route's availability first.
	FailOpen
)

func (o OnError) String() string {
	switch o {
	case FailClosed:
		return "fail closed"
	case FailOpen:
		return "fail open"
	}
	return "OnError(" + strconv.Itoa(int(o)) + ")"
}

// Rule is one route's rate limit.
type Rule struct {
	// Name identifies the policy in RateLimit-Policy and RateLimit and
	// prefixes the key: lower-case letters, digits, '-' and '_'.
	Name    string
	Limiter quota.Limiter
	OnError OnError
	// Timeout bounds one check, whether or not the limiter honours its
	// context (a go-redis client without ContextTimeoutEnabled waits out its
	// own ReadTimeout): past it the check counts as failed and OnError
	// decides. 0 leaves it to the limiter.
	Timeout time.Duration
}

var nameRE = regexp.MustCompile(`^[a-z0-9_-]{1,64}$`)

// Validate reports a rule the middleware cannot apply.
func (r Rule) Validate() error {
	switch {
	case !nameRE.MatchString(r.Name):
		return fmt.Errorf("middleware: rule name %q: want 1-64 of [a-z0-9_-]", r.Name)
	case r.Limiter == nil:
		return fmt.Errorf("middleware: rule %q has no limiter", r.Name)
	case r.OnError != FailClosed && r.OnError != FailOpen:
		return fmt.Errorf("middleware: rule %q must choose FailClosed or FailOpen", r.Name)
	case r.Timeout < 0:
		return fmt.Errorf("middleware: rule %q: negative timeout", r.Name)
	}
	return r.Limiter.Policy().Validate()
}

// Middleware applies rules to routes. It is safe for concurrent use.
type Middleware struct {
	ip     clientip.Extractor
	v6Bits int
	log    *slog.Logger
}

// New returns a middleware that finds clients with ip (nil means
// clientip.RemoteAddr: no proxy trusted) and keys IPv6 clients by their /64.
// Limiter failures are logged to log (nil discards them), at most once per
// second per rule.
func New(ip clientip.Extractor, log *slog.Logger) *Middleware {
	if ip == nil {
		ip = clientip.RemoteAddr{}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Middleware{ip: ip, v6Bits: 64, log: log}
}

// Limit wraps next with rule. It panics if the rule is invalid, like
// http.ServeMux.Handle with a bad pattern: a configuration mistake must stop
// the server at start-up, not show up as an unlimited route.
func (m *Middleware) Limit(rule Rule, next http.Handler) http.Handler {
	if err := rule.Validate(); err != nil {
		panic(err)
	}
	p := rule.Limiter.Policy()
	policy := strconv.Quote(rule.Name) + ";q=" + strconv.Itoa(p.Limit)
	if p.Window%time.Second == 0 {
		policy += ";w=" + strconv.FormatInt(int64(p.Window/time.Second), 10)
	}
	h := &handler{m: m, rule: rule, next: next, policy: policy, name: strconv.Quote(rule.Name)}
	return h
}

type handler struct {
	m            *Middleware
	rule         Rule
	next         http.Handler
	policy, name string
	lastLog      atomic.Int64 // unix seconds of the last failure logged
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ip, err := h.m.ip.ClientIP(r)
	if err != nil {
		http.Error(w, "cannot determine the client address: "+err.Error(), http.StatusBadRequest)
		return
	}
	d, err := h.check(r.Context(), h.rule.Name+":"+clientip.Group(ip, h.m.v6Bits).String())
	if err != nil {
		if r.Context().Err() != nil {
			return // the client left; nobody to answer
		}
		h.logFailure(err)
		if h.rule.OnError == FailOpen {
			h.next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Retry-After", "1")
		http.Error(w, "rate limiter unavailable", http.StatusServiceUnavailable)
		return
	}
	hd := w.Header()
	hd.Set("X-RateLimit-Limit", strconv.Itoa(max(d.Limit, d.Remaining)))
	hd.Set("X-RateLimit-Remaining", strconv.Itoa(d.Remaining))
	hd.Set("RateLimit-Policy", h.policy)
	if !d.Allowed {
		retry := seconds(d.RetryAfter)
		hd.Set("RateLimit", h.name+";r=0;t="+retry)
		hd.Set("Retry-After", retry)
		hd.Set("Content-Type", "application/problem+json")
		hd.Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = fmt.Fprintf(w, `{"type":"https://iana.org/assignments/http-problem-types#quota-exceeded","title":"Too Many Requests","status":429,"violated-policies":[%s]}`+"\n", h.name)
		return
	}
	hd.Set("RateLimit", h.name+";r="+strconv.Itoa(d.Remaining)+";t="+seconds(d.Reset))
	h.next.ServeHTTP(w, r)
}

// check asks the limiter, within the rule's Timeout. The limiter runs on
// its own goroutine so that one which does not honour its context still
// answers at the deadline; it finishes in the background (bounded by its own
// client's timeouts) and its answer is dropped.
func (h *handler) check(ctx context.Context, key string) (quota.Decision, error) {
	if h.rule.Timeout <= 0 {
		return h.rule.Limiter.Allow(ctx, key)
	}
	ctx, cancel := context.WithTimeout(ctx, h.rule.Timeout)
	defer cancel()
	type answer struct {
		d   quota.Decision
		err error
	}
	done := make(chan answer, 1)
	go func() {
		d, err := h.rule.Limiter.Allow(ctx, key)
		done <- answer{d, err}
	}()
	select {
	case a := <-done:
		return a.d, a.err
	case <-ctx.Done():
		return quota.Decision{}, fmt.Errorf("limiter did not answer within %v: %w", h.rule.Timeout, ctx.Err())
	}
}

// seconds is d as delay-seconds: whole seconds, rounded up, at least 1 (a
// client told "0" retries at once).
func seconds(d time.Duration) string {
	return strconv.FormatInt(max(1, int64(math.Ceil(d.Seconds()))), 10)
}

func (h *handler) logFailure(err error) {
	now := time.Now().Unix()
	if last := h.lastLog.Load(); now > last && h.lastLog.CompareAndSwap(last, now) {
		h.m.log.Warn("rate limiter failed", "rule", h.rule.Name, "on_error", h.rule.OnError.String(),
			"err", err, "deadline", errors.Is(err, context.DeadlineExceeded))
	}
}

package ratelimit

import (
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// Policy is what a request gets when the limiter cannot decide (Redis down).
type Policy int

const (
	// FailOpen serves the request unlimited: right for ordinary API
	// traffic, where an outage of the limiter's store must not become an
	// outage of the API.
	FailOpen Policy = iota
	// FailClosed answers 503 with Retry-After: right for login, password
	// reset and payment, where unlimited attempts are the attack.
	FailClosed
)

// String names the policy as the demo and logs print it.
func (p Policy) String() string {
	if p == FailClosed {
		return "fail-closed"
	}
	return "fail-open"
}

// Middleware limits each client of the handlers it wraps.
type Middleware struct {
	Limiter Limiter
	// ClientIP finds the client; with no Trusted proxies it is the TCP peer.
	ClientIP ClientIP
	// Key overrides the key (an API key, a user ID); nil: Key(ClientIP).
	Key func(*http.Request) string
	// OnError is the policy when Limiter fails.
	OnError Policy
	// Errors, if set, receives every limiter error (log or count it: a
	// fail-open limiter that is down is otherwise invisible).
	Errors func(error)

	allowed, limited, failed atomic.Int64
}

// Counts reports the requests served, refused with 429, and decided by the
// OnError policy because the limiter failed.
func (m *Middleware) Counts() (allowed, limited, failed int64) {
	return m.allowed.Load(), m.limited.Load(), m.failed.Load()
}

// Wrap returns next behind the limiter.
func (m *Middleware) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d, err := m.Limiter.Allow(r.Context(), m.key(r))
		if err != nil {
			m.failed.Add(1)
			if m.Errors != nil {
				m.Errors(err)
			}
			if m.OnError == FailClosed {
				w.Header().Set("Retry-After", "1")
				writeJSON(w, http.StatusServiceUnavailable, body{
					Error:   "rate_limiter_unavailable",
					Message: "The rate limiter is unavailable; retry after 1 second",
				}, 1)
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h.Set("X-RateLimit-Limit", strconv.FormatInt(d.Limit, 10))
		h.Set("X-RateLimit-Remaining", strconv.FormatInt(d.Remaining, 10))
		if !d.Allowed {
			m.limited.Add(1)
			secs := RetryAfterSeconds(d.RetryAfter)
			h.Set("Retry-After", strconv.FormatInt(secs, 10))
			writeJSON(w, http.StatusTooManyRequests, body{
				Error:   "rate_limit_exceeded",
				Message: "Too many requests, please retry after " + plural(secs, "second"),
			}, secs)
			return
		}
		m.allowed.Add(1)
		next.ServeHTTP(w, r)
	})
}

func (m *Middleware) key(r *http.Request) string {
	if m.Key != nil {
		return m.Key(r)
	}
	a, _ := m.ClientIP.From(r)
	if !a.IsValid() {
		return r.RemoteAddr // not ip:port (a unix socket): one bucket for all of them
	}
	return Key(a)
}

// RetryAfterSeconds rounds a wait up to whole seconds, at least 1, as
// Retry-After carries it: rounding down would send the client back early.
func RetryAfterSeconds(d time.Duration) int64 {
	return max(1, int64(math.Ceil(d.Seconds())))
}

// body is the JSON answer: the article's two fields, plus the wait as a
// number so a client need not parse the message.
type body struct {
	Error      string `json:"error"`
	Message    string `json:"message"`
	RetryAfter int64  `json:"retry_after"`
}

func writeJSON(w http.ResponseWriter, status int, b body, retryAfter int64) {
	b.RetryAfter = retryAfter
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(b)
}

func plural(n int64, unit string) string {
	s := strconv.FormatInt(n, 10) + " " + unit
	if n != 1 {
		s += "s"
	}
	return s
}

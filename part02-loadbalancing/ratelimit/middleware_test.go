package ratelimit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var ok = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })

func serveOne(h http.Handler, remote string, xff ...string) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req(remote, xff...))
	return w
}

// Burst, then 429 with the headers and the article's JSON fields, the wait
// computed from the bucket: at 0.5 tokens/s the next token is 2 s away (the
// article always says 1, and its X-RateLimit-Limit prints 0.5 as "0").
func TestMiddleware429(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newPerClient(t, PerClientConfig{Rate: 0.5, Burst: 3})
		m := &Middleware{Limiter: l}
		h := m.Wrap(ok)
		for i := range 3 {
			w := serveOne(h, "198.51.100.7:1000")
			require.Equal(t, http.StatusOK, w.Code, "request %d", i+1)
			assert.Equal(t, "3", w.Header().Get("X-RateLimit-Limit"))
			assert.Equal(t, fmt.Sprint(2-i), w.Header().Get("X-RateLimit-Remaining"))
		}
		w := serveOne(h, "198.51.100.7:1000")
		require.Equal(t, http.StatusTooManyRequests, w.Code)
		assert.Equal(t, "2", w.Header().Get("Retry-After"))
		assert.Equal(t, "3", w.Header().Get("X-RateLimit-Limit"))
		assert.Equal(t, "0", w.Header().Get("X-RateLimit-Remaining"))
		assert.Equal(t, "application/json", w.Header().Get("Content-Type"), "the article's http.Error sends its JSON as text/plain")
		var b map[string]any
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &b))
		assert.Equal(t, map[string]any{
			"error":       "rate_limit_exceeded",
			"message":     "Too many requests, please retry after 2 seconds",
			"retry_after": float64(2),
		}, b)

		time.Sleep(2 * time.Second) // as Retry-After said
		assert.Equal(t, http.StatusOK, serveOne(h, "198.51.100.7:1000").Code)
		allowed, limited, failed := m.Counts()
		assert.Equal(t, [3]int64{4, 1, 0}, [3]int64{allowed, limited, failed})
	})
}

// The key is the client's address without its port: the article keys on
// r.RemoteAddr ("ip:port"), so a client that opens a new connection per
// request gets a new bucket per request. Here a new port is the same client.
func TestNewConnectionIsTheSameClient(t *testing.T) {
	l := newPerClient(t, PerClientConfig{Rate: 0.001, Burst: 2})
	h := (&Middleware{Limiter: l}).Wrap(ok)
	var codes []int
	for port := range 4 {
		codes = append(codes, serveOne(h, fmt.Sprintf("198.51.100.7:%d", 40000+port)).Code)
	}
	assert.Equal(t, []int{200, 200, 429, 429}, codes)
}

// The article's spoofing hole: it keys on X-Forwarded-For as sent, so a
// client that writes a new value per request is never limited. Here, from
// an untrusted peer, 50 spoofed values all land in the peer's one bucket.
func TestSpoofedForwardedForNeverChangesTheKey(t *testing.T) {
	l := newPerClient(t, PerClientConfig{Rate: 0.001, Burst: 5})
	h := (&Middleware{Limiter: l}).Wrap(ok)
	passed := 0
	for i := range 50 {
		if serveOne(h, "203.0.113.9:5555", fmt.Sprintf("10.0.%d.%d", i/250, i%250)).Code == http.StatusOK {
			passed++
		}
	}
	assert.Equal(t, 5, passed, "one bucket, whatever the header says")
	assert.Equal(t, 1, l.Len())

	// Behind a trusted proxy the header is read, right to left: the client
	// cannot spoof past the entry the proxy appended.
	l2 := newPerClient(t, PerClientConfig{Rate: 0.001, Burst: 5})
	h2 := (&Middleware{Limiter: l2, ClientIP: ClientIP{Trusted: mustTrusted(t, "10.0.0.0/8")}}).Wrap(ok)
	passed = 0
	for i := range 50 {
		if serveOne(h2, "10.0.0.2:80", fmt.Sprintf("6.6.%d.%d, 198.51.100.7", i/250, i%250)).Code == http.StatusOK {
			passed++
		}
	}
	assert.Equal(t, 5, passed)
	assert.Equal(t, 1, l2.Len())
}

type brokenLimiter struct{}

func (brokenLimiter) Allow(context.Context, string) (Decision, error) {
	return Decision{}, errors.New("dial tcp 127.0.0.1:6379: connect: connection refused")
}

// When the limiter cannot decide: fail-open serves, fail-closed answers 503
// with Retry-After; both report the error.
func TestPolicyOnLimiterError(t *testing.T) {
	for _, tt := range []struct {
		policy Policy
		code   int
	}{{FailOpen, http.StatusOK}, {FailClosed, http.StatusServiceUnavailable}} {
		t.Run(tt.policy.String(), func(t *testing.T) {
			var seen []error
			m := &Middleware{Limiter: brokenLimiter{}, OnError: tt.policy, Errors: func(err error) { seen = append(seen, err) }}
			w := serveOne(m.Wrap(ok), "198.51.100.7:1")
			assert.Equal(t, tt.code, w.Code)
			assert.Len(t, seen, 1)
			_, _, failed := m.Counts()
			assert.Equal(t, int64(1), failed)
			if tt.policy == FailClosed {
				assert.Equal(t, "1", w.Header().Get("Retry-After"))
				assert.JSONEq(t, `{"error":"rate_limiter_unavailable","message":"The rate limiter is unavailable; retry after 1 second","retry_after":1}`, w.Body.String())
			} else {
				assert.Equal(t, "ok", w.Body.String())
			}
		})
	}
}

func TestRetryAfterSeconds(t *testing.T) {
	for d, want := range map[time.Duration]int64{0: 1, time.Millisecond: 1, time.Second: 1, 1001 * time.Millisecond: 2, 10 * time.Second: 10} {
		assert.Equal(t, want, RetryAfterSeconds(d), "%v", d)
	}
}

// A custom key (an API key header) replaces the client address.
func TestCustomKey(t *testing.T) {
	l := newPerClient(t, PerClientConfig{Rate: 0.001, Burst: 1})
	h := (&Middleware{Limiter: l, Key: func(r *http.Request) string { return r.Header.Get("X-API-Key") }}).Wrap(ok)
	r := req("198.51.100.7:1")
	r.Header.Set("X-API-Key", "k1")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	assert.Equal(t, http.StatusOK, w.Code)
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r)
	assert.Equal(t, http.StatusTooManyRequests, w.Code)
	r.Header.Set("X-API-Key", "k2")
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r)
	assert.Equal(t, http.StatusOK, w.Code)
}

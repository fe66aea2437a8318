package middleware_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/part11-ratelimit/clientip"
	"github.com/sysdesign-masterclass/golang/part11-ratelimit/limiter"
	"github.com/sysdesign-masterclass/golang/part11-ratelimit/middleware"
	"github.com/sysdesign-masterclass/golang/part11-ratelimit/quota"
)

var ok = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "hello") })

func keyed(t *testing.T, p quota.Policy) *limiter.Keyed {
	t.Helper()
	k, err := limiter.New(limiter.Config{Policy: p, MaxKeys: 1000})
	require.NoError(t, err)
	return k
}

func do(h http.Handler, remote string, headers ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("GET", "/api/hello", nil)
	r.RemoteAddr = remote
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Add(headers[i], headers[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// The fields of allowed and refused responses, on the synctest clock.
func TestHeaders(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mw := middleware.New(nil, nil)
		h := mw.Limit(middleware.Rule{Name: "hello", Limiter: keyed(t, quota.Policy{Limit: 3, Window: time.Minute}), OnError: middleware.FailClosed}, ok)
		want := []struct{ status, remaining, ratelimit string }{
			{"200", "2", `"hello";r=2;t=20`},
			{"200", "1", `"hello";r=1;t=20`},
			{"200", "0", `"hello";r=0;t=20`},
			{"429", "0", `"hello";r=0;t=20`},
		}
		for i, w := range want {
			got := do(h, "203.0.113.7:1000")
			assert.Equal(t, w.status, strconv.Itoa(got.Code), "request %d", i)
			assert.Equal(t, "3", got.Header().Get("X-RateLimit-Limit"))
			assert.Equal(t, w.remaining, got.Header().Get("X-RateLimit-Remaining"), "request %d", i)
			assert.Equal(t, `"hello";q=3;w=60`, got.Header().Get("RateLimit-Policy"))
			assert.Equal(t, w.ratelimit, got.Header().Get("RateLimit"), "request %d", i)
		}
		got := do(h, "203.0.113.7:1001")
		assert.Equal(t, http.StatusTooManyRequests, got.Code)
		assert.Equal(t, "20", got.Header().Get("Retry-After"), "one token back after 20 s, not the whole minute")
		assert.Equal(t, "application/problem+json", got.Header().Get("Content-Type"))
		assert.JSONEq(t, `{"type":"https://iana.org/assignments/http-problem-types#quota-exceeded","title":"Too Many Requests","status":429,"violated-policies":["hello"]}`, got.Body.String())

		time.Sleep(15 * time.Second)
		got = do(h, "203.0.113.7:1002")
		assert.Equal(t, "5", got.Header().Get("Retry-After"), "rounded up to whole seconds")
		time.Sleep(5 * time.Second)
		assert.Equal(t, http.StatusOK, do(h, "203.0.113.7:1003").Code, "a new port is the same client")
		assert.Equal(t, http.StatusOK, do(h, "198.51.100.1:1").Code, "another client has its own quota")
	})
}

// Routes keep separate quotas for the same client.
func TestRulesArePerRoute(t *testing.T) {
	mw := middleware.New(nil, nil)
	l := keyed(t, quota.Policy{Limit: 1, Window: time.Hour})
	a := mw.Limit(middleware.Rule{Name: "a", Limiter: l, OnError: middleware.FailClosed}, ok)
	b := mw.Limit(middleware.Rule{Name: "b", Limiter: l, OnError: middleware.FailClosed}, ok)
	assert.Equal(t, http.StatusOK, do(a, "203.0.113.7:1").Code)
	assert.Equal(t, http.StatusTooManyRequests, do(a, "203.0.113.7:1").Code)
	assert.Equal(t, http.StatusOK, do(b, "203.0.113.7:1").Code)
}

// IPv6 clients are keyed by their /64: rotating the interface identifier
// does not buy a fresh quota.
func TestIPv6ClientsShareTheirSlash64(t *testing.T) {
	mw := middleware.New(nil, nil)
	h := mw.Limit(middleware.Rule{Name: "a", Limiter: keyed(t, quota.Policy{Limit: 2, Window: time.Hour}), OnError: middleware.FailClosed}, ok)
	assert.Equal(t, http.StatusOK, do(h, "[2001:db8:1:2::1]:1").Code)
	assert.Equal(t, http.StatusOK, do(h, "[2001:db8:1:2::2]:1").Code)
	assert.Equal(t, http.StatusTooManyRequests, do(h, "[2001:db8:1:2:ffff::9]:1").Code)
	assert.Equal(t, http.StatusOK, do(h, "[2001:db8:1:3::1]:1").Code)
}

type broken struct{ err error }

func (b broken) Allow(context.Context, string) (quota.Decision, error) {
	return quota.Decision{}, b.err
}
func (broken) Policy() quota.Policy { return quota.Policy{Limit: 5, Window: time.Second} }

// A failing limiter: 503 + Retry-After when closed, the handler when open;
// neither sends quota fields it does not know.
func TestFailOpenAndFailClosed(t *testing.T) {
	mw := middleware.New(nil, nil)
	down := broken{errors.New("dial tcp 127.0.0.1:6379: connection refused")}
	closed := do(mw.Limit(middleware.Rule{Name: "pay", Limiter: down, OnError: middleware.FailClosed}, ok), "203.0.113.7:1")
	assert.Equal(t, http.StatusServiceUnavailable, closed.Code)
	assert.Equal(t, "1", closed.Header().Get("Retry-After"))
	assert.Empty(t, closed.Header().Get("RateLimit"))
	open := do(mw.Limit(middleware.Rule{Name: "read", Limiter: down, OnError: middleware.FailOpen}, ok), "203.0.113.7:1")
	assert.Equal(t, http.StatusOK, open.Code)
	assert.Equal(t, "hello", open.Body.String())
	assert.Empty(t, open.Header().Get("X-RateLimit-Remaining"))
}

// A table full of clients (DenyNew) is a limiter failure: the rule decides.
func TestFullTableFollowsTheRule(t *testing.T) {
	k, err := limiter.New(limiter.Config{Policy: quota.Policy{Limit: 5, Window: time.Hour}, MaxKeys: 1, WhenFull: limiter.DenyNew})
	require.NoError(t, err)
	mw := middleware.New(nil, nil)
	h := mw.Limit(middleware.Rule{Name: "a", Limiter: k, OnError: middleware.FailClosed}, ok)
	assert.Equal(t, http.StatusOK, do(h, "203.0.113.7:1").Code)
	assert.Equal(t, http.StatusServiceUnavailable, do(h, "198.51.100.1:1").Code)
}

// A request whose client cannot be determined is a 400 with the reason.
func TestUnknownClientIsBadRequest(t *testing.T) {
	tr, err := clientip.ParseTrusted("10.0.0.0/8")
	require.NoError(t, err)
	mw := middleware.New(clientip.RightmostUntrusted{Trusted: tr}, nil)
	h := mw.Limit(middleware.Rule{Name: "a", Limiter: keyed(t, quota.Policy{Limit: 5, Window: time.Hour}), OnError: middleware.FailClosed}, ok)
	got := do(h, "10.0.0.2:1", "X-Forwarded-For", "8.8.8.8, not-an-ip")
	assert.Equal(t, http.StatusBadRequest, got.Code)
	assert.Contains(t, got.Body.String(), `cannot determine the client address: clientip: no usable client address: X-Forwarded-For entry "not-an-ip"`)
	assert.Equal(t, http.StatusOK, do(h, "10.0.0.2:1", "X-Forwarded-For", "8.8.8.8, 198.51.100.9").Code)
}

func TestInvalidRulesPanicAtStartup(t *testing.T) {
	l := keyed(t, quota.Policy{Limit: 5, Window: time.Hour})
	mw := middleware.New(nil, nil)
	for _, tt := range []struct {
		rule middleware.Rule
		msg  string
	}{
		{middleware.Rule{Name: "a", Limiter: l}, `rule "a" must choose FailClosed or FailOpen`},
		{middleware.Rule{Name: "Bad Name", Limiter: l, OnError: middleware.FailOpen}, `rule name "Bad Name"`},
		{middleware.Rule{Name: "a", OnError: middleware.FailOpen}, "has no limiter"},
		{middleware.Rule{Name: "a", Limiter: l, OnError: middleware.FailOpen, Timeout: -1}, `rule "a": negative timeout`},
	} {
		func() {
			defer func() {
				err, _ := recover().(error)
				assert.ErrorContains(t, err, tt.msg)
			}()
			mw.Limit(tt.rule, ok)
		}()
	}
}

// Sub-second windows have no w parameter (the draft's w is whole seconds).
func TestPolicyWithoutWholeSeconds(t *testing.T) {
	mw := middleware.New(nil, nil)
	h := mw.Limit(middleware.Rule{Name: "a", Limiter: keyed(t, quota.Policy{Limit: 5, Window: 1500 * time.Millisecond}), OnError: middleware.FailOpen}, ok)
	assert.Equal(t, `"a";q=5`, do(h, "203.0.113.7:1").Header().Get("RateLimit-Policy"))
}

// deaf is a limiter that ignores its context: a Redis client without
// ContextTimeoutEnabled waits out its own ReadTimeout whatever the deadline.
type deaf struct {
	quota.Limiter
	release chan struct{}
}

func (d deaf) Allow(context.Context, string) (quota.Decision, error) {
	<-d.release
	return quota.Decision{}, errors.New("read tcp: i/o timeout")
}

// The rule's Timeout holds even when the limiter does not honour its
// context: the check is answered (503 or served, by the rule) at the
// deadline. It used to wait for the limiter (5 s with a default go-redis
// client and a paused Redis, for a 100 ms Timeout).
func TestTimeoutHoldsForALimiterThatIgnoresItsContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := deaf{Limiter: keyed(t, quota.Policy{Limit: 3, Window: time.Minute}), release: make(chan struct{})}
		defer close(d.release)
		mw := middleware.New(nil, nil)
		for _, onErr := range []middleware.OnError{middleware.FailClosed, middleware.FailOpen} {
			h := mw.Limit(middleware.Rule{Name: "hello", Limiter: d, OnError: onErr, Timeout: 100 * time.Millisecond}, ok)
			start := time.Now()
			got := do(h, "203.0.113.7:1000")
			assert.Equal(t, map[middleware.OnError]int{middleware.FailClosed: 503, middleware.FailOpen: 200}[onErr], got.Code, "%v", onErr)
			assert.Equal(t, 100*time.Millisecond, time.Since(start), "%v: answered at the Timeout", onErr)
		}
	})
}

// With Burst above Limit a client may hold more than Limit requests:
// X-RateLimit-Limit is the bucket's size, never below Remaining. It used to
// say Remaining 19 of a limit of 10.
func TestLimitHeaderCoversTheBurst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mw := middleware.New(nil, nil)
		h := mw.Limit(middleware.Rule{Name: "hello", Limiter: keyed(t, quota.Policy{Limit: 10, Window: time.Minute, Burst: 20}), OnError: middleware.FailClosed}, ok)
		got := do(h, "203.0.113.7:1000")
		assert.Equal(t, "19", got.Header().Get("X-RateLimit-Remaining"))
		assert.Equal(t, "20", got.Header().Get("X-RateLimit-Limit"))
	})
}

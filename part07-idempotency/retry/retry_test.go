package retry_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/internal/leakcheck"
	"github.com/sysdesign-masterclass/golang/part07-idempotency/retry"
)

func TestMain(m *testing.M) { leakcheck.VerifyTestMain(m) }

// answer is one scripted server reply: a status with headers, or a
// transport error, or a hang until the attempt's context ends.
type answer struct {
	status int
	header http.Header
	err    error
	hang   bool
}

// script is an in-process http.RoundTripper that replays answers in order
// and records what each attempt sent; it runs inside a synctest bubble.
type script struct {
	mu      sync.Mutex
	answers []answer
	seen    []*http.Request
	bodies  []string
	at      []time.Time
}

func (s *script) RoundTrip(r *http.Request) (*http.Response, error) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	a := s.answers[len(s.seen)]
	s.seen = append(s.seen, r)
	s.bodies = append(s.bodies, string(body))
	s.at = append(s.at, time.Now())
	s.mu.Unlock()
	switch {
	case a.hang:
		<-r.Context().Done()
		return nil, r.Context().Err()
	case a.err != nil:
		return nil, a.err
	}
	h := a.header
	if h == nil {
		h = http.Header{}
	}
	return &http.Response{StatusCode: a.status, Header: h, Body: io.NopCloser(strings.NewReader(http.StatusText(a.status))), Request: r}, nil
}

func client(s *script) *retry.Client {
	return &retry.Client{HTTP: &http.Client{Transport: s}, Attempts: 5, Backoff: retry.Backoff{Base: 100 * time.Millisecond, Max: 2 * time.Second}}
}

var post = retry.Request{Method: "POST", URL: "http://payments.test/payments", Body: []byte(`{"amount":100}`), Header: http.Header{"X-Tenant-Id": {"acme"}}}

func retryAfter(v string) http.Header { return http.Header{"Retry-After": {v}} }

var errReset = errors.New("read: connection reset by peer")

// The same key, body and headers on every attempt; failures a retry can fix
// are retried, with full-jitter waits within the schedule's caps.
func TestRetriesWithTheSameKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &script{answers: []answer{{err: errReset}, {status: 502}, {status: 503}, {status: 201}}}
		var waits []time.Duration
		c := client(s)
		c.Observe = func(a retry.Attempt) { waits = append(waits, a.Wait) }
		resp, err := c.Do(t.Context(), post)
		require.NoError(t, err)
		assert.Equal(t, 201, resp.StatusCode)
		assert.Equal(t, 4, resp.Attempts)
		assert.Regexp(t, regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`), resp.Key, "a UUID v4")
		for i, r := range s.seen {
			assert.Equal(t, resp.Key, r.Header.Get("Idempotency-Key"), "attempt %d", i+1)
			assert.Equal(t, "acme", r.Header.Get("X-Tenant-Id"))
			assert.Equal(t, `{"amount":100}`, s.bodies[i])
		}
		for i, w := range waits[:3] {
			assert.LessOrEqual(t, w, c.Backoff.Cap(i), "wait %d within min(Max, Base·2^n)", i)
			assert.Equal(t, w, s.at[i+1].Sub(s.at[i]), "slept exactly the wait")
		}
		assert.Zero(t, waits[3], "no wait after the final answer")
	})
}

// Final answers come back at once with no error: the caller decides.
func TestFinalAnswersAreNotRetried(t *testing.T) {
	for _, a := range []answer{{status: 200}, {status: 201}, {status: 400}, {status: 404}, {status: 409}, {status: 422}} {
		synctest.Test(t, func(t *testing.T) {
			s := &script{answers: []answer{a}}
			resp, err := client(s).Do(t.Context(), post)
			require.NoError(t, err)
			assert.Equal(t, a.status, resp.StatusCode)
			assert.Len(t, s.seen, 1)
		})
	}
}

// Retry-After is the least wait on 409 (in progress), 429 and 503, in
// seconds or as a date.
func TestRetryAfterIsHonoured(t *testing.T) {
	for _, tt := range []struct {
		name string
		a    answer
		wait time.Duration
	}{
		{"409 in progress", answer{status: 409, header: retryAfter("3")}, 3 * time.Second},
		// A bubble's clock starts at midnight UTC, 1 January 2000.
		{"429 with a date", answer{status: 429, header: retryAfter(time.Date(2000, 1, 1, 0, 0, 4, 0, time.UTC).Format(http.TimeFormat))}, 4 * time.Second},
		{"503", answer{status: 503, header: retryAfter("1")}, time.Second},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := &script{answers: []answer{tt.a, {status: 201}}}
				c := client(s)
				c.MaxWait = 10 * time.Second
				start := time.Now()
				resp, err := c.Do(t.Context(), post)
				require.NoError(t, err)
				assert.Equal(t, 201, resp.StatusCode)
				assert.GreaterOrEqual(t, time.Since(start), tt.wait)
				assert.LessOrEqual(t, time.Since(start), max(tt.wait, c.Backoff.Cap(0)))
			})
		})
	}
}

// Giving up is an error that keeps the last answer.
func TestGivingUp(t *testing.T) {
	for _, tt := range []struct {
		name     string
		answers  []answer
		deadline time.Duration
		attempts int
		msg      string
	}{
		{"attempts run out", []answer{{status: 503}, {status: 503}, {status: 503}, {status: 503}, {status: 503}}, 0, 5, "gave up after 5 attempts: last answer 503 Service Unavailable"},
		{"Retry-After longer than MaxWait", []answer{{status: 503, header: retryAfter("3600")}}, 0, 1, "the server asks to wait 1h0m0s (Retry-After), more than 2s"},
		{"the next wait ends after ctx's deadline", []answer{{status: 429, header: retryAfter("2")}}, time.Second, 1, "the next attempt would start after the deadline"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx := t.Context()
				if tt.deadline > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, tt.deadline)
					defer cancel()
				}
				s := &script{answers: tt.answers}
				start := time.Now()
				resp, err := client(s).Do(ctx, post)
				assert.ErrorIs(t, err, retry.ErrGaveUp)
				assert.ErrorContains(t, err, tt.msg)
				require.NotNil(t, resp)
				assert.Equal(t, tt.answers[len(tt.answers)-1].status, resp.StatusCode)
				assert.Len(t, s.seen, tt.attempts)
				if tt.deadline > 0 {
					assert.Zero(t, time.Since(start), "gave up without sleeping")
				}
			})
		})
	}
}

// Cancelling the caller's context stops the wait at once, and an attempt
// that hangs is cut by AttemptTimeout and retried.
func TestContextEndsTheWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &script{answers: []answer{{status: 503, header: retryAfter("2")}, {status: 201}}}
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(50*time.Millisecond, cancel)
		start := time.Now()
		resp, err := client(s).Do(ctx, post)
		assert.ErrorIs(t, err, context.Canceled)
		assert.Equal(t, 503, resp.StatusCode, "the last answer so far")
		assert.Equal(t, 50*time.Millisecond, time.Since(start), "woken by the cancel, not the 2 s wait")
		assert.Len(t, s.seen, 1)
	})
	synctest.Test(t, func(t *testing.T) {
		s := &script{answers: []answer{{hang: true}, {hang: true}, {status: 201}}}
		c := client(s)
		c.AttemptTimeout = time.Second
		resp, err := c.Do(t.Context(), post)
		require.NoError(t, err)
		assert.Equal(t, 3, resp.Attempts, "two timed-out attempts, then the answer")
	})
}

// A body longer than MaxBody is an error, not a truncated answer: the
// status and header come back, the body does not, and nothing is retried.
func TestBodyOverMaxBodyIsAnError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		for _, tt := range []struct {
			max  int64
			body string
			err  error
		}{{7, "Created", nil}, {6, "", retry.ErrBodyTooLarge}} {
			s := &script{answers: []answer{{status: 201}}}
			c := client(s)
			c.MaxBody = tt.max
			resp, err := c.Do(t.Context(), post)
			require.NotNil(t, resp, "MaxBody %d", tt.max)
			assert.ErrorIs(t, err, tt.err, "MaxBody %d", tt.max)
			assert.Equal(t, 201, resp.StatusCode)
			assert.Equal(t, tt.body, string(resp.Body), "MaxBody %d: the body %q is 7 bytes", tt.max, "Created")
			assert.Len(t, s.seen, 1, "one attempt")
		}
	})
}

func TestAttemptsMustBePositive(t *testing.T) {
	_, err := (&retry.Client{}).Do(t.Context(), post)
	assert.ErrorContains(t, err, "Attempts is 0")
}

// Full jitter never exceeds min(Max, Base·2^n), never goes negative (the
// article's formula does past attempt 36), never panics (the article's does
// with JitterCap 0), and keeps clients spread at the cap (the article's puts
// every one of them at exactly MaxDelay).
func TestBackoff(t *testing.T) {
	b := retry.Backoff{Base: 100 * time.Millisecond, Max: 2 * time.Second}
	for _, tt := range []struct {
		n   int
		cap time.Duration
	}{{0, 100 * time.Millisecond}, {1, 200 * time.Millisecond}, {4, 1600 * time.Millisecond}, {5, 2 * time.Second}, {37, 2 * time.Second}, {63, 2 * time.Second}, {1 << 30, 2 * time.Second}} {
		assert.Equal(t, tt.cap, b.Cap(tt.n), "Cap(%d)", tt.n)
	}
	for _, n := range []int{0, 5, 40, 1000} {
		distinct := map[time.Duration]bool{}
		for range 1000 {
			d := b.Delay(n)
			require.GreaterOrEqual(t, d, time.Duration(0))
			require.LessOrEqual(t, d, b.Cap(n))
			distinct[d] = true
		}
		assert.Greater(t, len(distinct), 990, "attempt %d: 1,000 clients, (almost) all different", n)
	}
	assert.Zero(t, retry.Backoff{}.Delay(3), "no schedule, no wait, no panic")
	assert.Equal(t, time.Second, retry.Backoff{Max: time.Second}.Cap(3))
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 6, 18, 9, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"0", 0, true}, {"120", 2 * time.Minute, true}, {" 5 ", 5 * time.Second, true},
		{"Thu, 18 Jun 2026 09:00:30 GMT", 30 * time.Second, true},
		{"Thu, 18 Jun 2026 08:00:00 GMT", 0, true}, // in the past
		{"99999999999999999999999", 1<<63 - 1, true},
		{"", 0, false}, {"-1", 0, false}, {"1.5", 0, false}, {"soon", 0, false}, {"12abc", 0, false},
	} {
		got, ok := retry.ParseRetryAfter(tt.in, now)
		assert.Equal(t, tt.ok, ok, "%q", tt.in)
		assert.Equal(t, tt.want, got, "%q", tt.in)
	}
}

// FuzzParseRetryAfter: any header value gives a non-negative wait or false.
func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"0", "120", "Thu, 18 Jun 2026 09:00:30 GMT", "Monday, 18-Jun-26 09:00:30 GMT", "Thu Jun 18 09:00:30 2026", "-1", "1e3", "99999999999999999999"} {
		f.Add(s)
	}
	now := time.Date(2026, 6, 18, 9, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, v string) {
		d, ok := retry.ParseRetryAfter(v, now)
		if !ok {
			require.Zero(t, d)
			return
		}
		require.GreaterOrEqual(t, d, time.Duration(0))
	})
}

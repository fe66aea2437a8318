// Package retry is the client side of idempotency: it sends one request with
// one Idempotency-Key until it gets an answer worth returning, waiting between
// attempts with exponential backoff and full jitter.
//
// It replaces the article's ExponentialBackoff and RetryWithIdempotency, which
// panic when JitterCap is 0 (rand.Int63n(0)), return nil after every attempt
// failed, treat 409 and 429 as success, sleep without a context, overflow to
// a negative delay past attempt 36, and add jitter before the cap, so every
// client that reaches MaxDelay waits exactly MaxDelay and they retry in step.
// Here:
//
//   - Backoff.Delay is full jitter (AWS's name): uniform in
//     [0, min(Max, Base·2^n)], so even at the cap the clients stay spread, and
//     it cannot overflow or panic.
//   - Client.Do sends the same key and body on every attempt, stops as soon as
//     ctx ends (also while waiting), and retries only what a retry can fix: a
//     transport error (including its own per-attempt timeout), a 5xx, a 429,
//     and a 409 that carries Retry-After (the middleware's "in progress").
//     Any other answer, 2xx or 4xx, is returned at once.
//   - Retry-After (seconds or an HTTP date) sets the minimum wait; if the
//     server asks for more than MaxWait or more than ctx has left, Do gives up
//     at once instead of sleeping past its deadline.
//   - Running out of attempts is an error (ErrGaveUp) that carries the last
//     answer or transport error.
//   - An answer whose body is longer than MaxBody is an error
//     (ErrBodyTooLarge), never a body cut short that looks whole.
//
// net/http's Transport already resends, once, a request with an
// Idempotency-Key header when a reused connection dies before any response;
// that happens inside one attempt here.
package retry

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	randv2 "math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Backoff is the delay schedule between attempts.
type Backoff struct {
	Base time.Duration // the cap of the first retry's delay
	Max  time.Duration // no delay is longer
}

// Cap returns min(Max, Base·2^n), the upper end of retry n's delay (n = 0
// before the first retry), without overflowing for any n.
func (b Backoff) Cap(n int) time.Duration {
	if b.Base <= 0 || b.Max <= 0 {
		return max(b.Max, 0)
	}
	if n >= 62 || b.Base > b.Max>>n {
		return b.Max
	}
	return min(b.Max, b.Base<<n)
}

// Delay returns a full-jitter delay for retry n: uniform in [0, Cap(n)].
func (b Backoff) Delay(n int) time.Duration {
	c := b.Cap(n)
	if c <= 0 {
		return 0
	}
	return time.Duration(randv2.Int64N(int64(c) + 1))
}

// ErrGaveUp is returned by Do when the attempts ran out, or the server asked
// to wait longer than the client may; it wraps the last failure.
var ErrGaveUp = errors.New("retry: gave up")

// ErrBodyTooLarge is returned by Do, with the response's status and header
// (no body), when the answer's body is longer than Client.MaxBody. It is not
// retried: the server answered, and would answer the same again.
var ErrBodyTooLarge = errors.New("retry: response body over MaxBody")

// Request is what Do sends on every attempt.
type Request struct {
	Method string
	URL    string
	Header http.Header // copied onto every attempt
	Body   []byte
	Key    string // Idempotency-Key; Do generates a UUID v4 if empty
}

// Response is the answer Do returns, read whole (the attempt's context ends
// when Do returns).
type Response struct {
	StatusCode int
	Header     http.Header
	Body       []byte
	Key        string // the Idempotency-Key every attempt carried
	Attempts   int
}

// Attempt reports one attempt to Client.Observe.
type Attempt struct {
	N      int           // 1 for the first
	Status int           // 0 on a transport error
	Header http.Header   // the answer's header; nil on a transport error
	Err    error         // the transport error, if any
	Wait   time.Duration // the wait before the next attempt; 0 if none
}

// Client sends requests with retries. The zero value is not usable; set
// Attempts and Backoff (see Default).
type Client struct {
	HTTP           *http.Client  // nil means http.DefaultClient
	Attempts       int           // attempts in all, the first included (≥ 1)
	Backoff        Backoff       // waits between attempts
	AttemptTimeout time.Duration // bound on one attempt; 0 means none
	MaxWait        time.Duration // the longest Retry-After honoured; 0 means Backoff.Max
	MaxBody        int64         // the longest response body read (ErrBodyTooLarge past it); 0 means 10 MiB
	Observe        func(Attempt) // called after each attempt, if set
}

// Default is a client for interactive calls: 5 attempts, 100 ms to 2 s of
// full jitter, 10 s per attempt.
func Default() *Client {
	return &Client{Attempts: 5, Backoff: Backoff{Base: 100 * time.Millisecond, Max: 2 * time.Second}, AttemptTimeout: 10 * time.Second}
}

// Do sends req until an answer is final, the attempts run out or ctx ends.
// It returns the last response it got (also with ErrGaveUp), or nil with the
// error when none came.
func (c *Client) Do(ctx context.Context, req Request) (*Response, error) {
	if c.Attempts < 1 {
		return nil, fmt.Errorf("retry: Attempts is %d; want at least 1", c.Attempts)
	}
	if req.Key == "" {
		req.Key = NewKey()
	}
	maxWait := c.MaxWait
	if maxWait == 0 {
		maxWait = c.Backoff.Max
	}
	var (
		last    *Response
		lastErr error
	)
	for n := 1; ; n++ {
		resp, err := c.attempt(ctx, req)
		if ctx.Err() != nil {
			return last, context.Cause(ctx)
		}
		if resp != nil {
			resp.Attempts = n
			last = resp
		}
		lastErr = err
		retry, after := retryable(resp, err)
		wait := time.Duration(0)
		if retry && n < c.Attempts {
			wait = max(c.Backoff.Delay(n-1), after)
		}
		if c.Observe != nil {
			a := Attempt{N: n, Err: err, Wait: wait}
			if resp != nil {
				a.Status, a.Header = resp.StatusCode, resp.Header
			}
			c.Observe(a)
		}
		switch {
		case !retry:
			return resp, err
		case n >= c.Attempts:
			return last, fmt.Errorf("%w after %d attempts: %w", ErrGaveUp, n, failure(resp, err))
		case after > maxWait:
			return last, fmt.Errorf("%w: the server asks to wait %v (Retry-After), more than %v: %w", ErrGaveUp, after, maxWait, failure(resp, err))
		}
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < wait {
			return last, fmt.Errorf("%w: the next attempt would start after the deadline: %w", ErrGaveUp, failure(resp, lastErr))
		}
		if err := sleep(ctx, wait); err != nil {
			return last, err
		}
	}
}

// attempt sends req once and reads the whole answer.
func (c *Client) attempt(ctx context.Context, req Request) (*Response, error) {
	if c.AttemptTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.AttemptTimeout)
		defer cancel()
	}
	hr, err := http.NewRequestWithContext(ctx, req.Method, req.URL, bytes.NewReader(req.Body))
	if err != nil {
		return nil, err
	}
	for k, v := range req.Header {
		hr.Header[k] = append([]string(nil), v...)
	}
	hr.Header.Set("Idempotency-Key", req.Key)
	client := c.HTTP
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(hr)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	limit := c.MaxBody
	if limit == 0 {
		limit = 10 << 20
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, err // cut mid-body: the answer is unknown, so retry
	}
	out := &Response{StatusCode: resp.StatusCode, Header: resp.Header, Body: body, Key: req.Key}
	if int64(len(body)) > limit {
		out.Body = nil
		return out, fmt.Errorf("%w: %d %s, more than %d bytes", ErrBodyTooLarge, resp.StatusCode, http.StatusText(resp.StatusCode), limit)
	}
	return out, nil
}

// retryable says whether an outcome can change on a retry, and the wait the
// server asked for (Retry-After), if any.
func retryable(resp *Response, err error) (bool, time.Duration) {
	switch {
	case errors.Is(err, ErrBodyTooLarge):
		return false, 0 // an answer came; a retry gets the same one
	case err != nil:
		return true, 0
	}
	after, ok := ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	switch {
	case resp.StatusCode >= 500, resp.StatusCode == http.StatusTooManyRequests:
		return true, after
	case resp.StatusCode == http.StatusConflict && ok:
		return true, after
	}
	return false, 0
}

func failure(resp *Response, err error) error {
	if err != nil {
		return err
	}
	return fmt.Errorf("last answer %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
}

// sleep waits d or until ctx ends, whichever comes first.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// ParseRetryAfter reads a Retry-After value (RFC 9110 section 10.2.3):
// delay-seconds or an HTTP date, relative to now. It reports false for an
// empty or malformed value; a date in the past is a wait of 0.
func ParseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if v[0] >= '0' && v[0] <= '9' {
		secs, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			if errors.Is(err, strconv.ErrRange) {
				return time.Duration(1<<63 - 1), true
			}
			return 0, false
		}
		if secs > uint64((1<<63-1)/time.Second) {
			return time.Duration(1<<63 - 1), true
		}
		return time.Duration(secs) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}

// NewKey returns a random UUID v4, the key format the IETF draft recommends.
func NewKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand, Go 1.24+)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

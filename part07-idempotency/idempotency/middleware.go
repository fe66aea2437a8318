package idempotency

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Header names the middleware reads and writes.
const (
	HeaderKey          = "Idempotency-Key"
	HeaderTenant       = "X-Tenant-ID"
	HeaderReplayed     = "X-Idempotent-Replayed"
	HeaderBodyOmitted  = "X-Idempotent-Body-Omitted"
	ProblemContentType = "application/problem+json"
)

// Defaults for the zero values of Config.
const (
	DefaultRecordTTL        = 24 * time.Hour
	DefaultClaimTTL         = 30 * time.Second
	DefaultStoreTimeout     = 2 * time.Second
	DefaultCompleteTimeout  = 10 * time.Second
	DefaultMaxBodyBytes     = 1 << 20
	DefaultMaxResponseBytes = 1 << 20
	DefaultRetryAfter       = time.Second
	DefaultProblemType      = "https://datatracker.ietf.org/doc/draft-ietf-httpapi-idempotency-key-header/"
)

// Config configures the middleware. Only Store is required.
type Config struct {
	Store Store

	// Scope returns the tenant a request's key belongs to. Nil means
	// HeaderScope(HeaderTenant): X-Tenant-ID must be present and valid.
	Scope func(*http.Request) (string, error)

	// Methods the middleware applies to; others pass straight through. Nil
	// means POST and PATCH, the methods the draft names as not idempotent.
	Methods []string

	// Required makes a request without Idempotency-Key a 400 (the draft's
	// "missing for a documented idempotent operation"). Otherwise such a
	// request runs the handler unprotected.
	Required bool

	// RecordTTL is how long a completed response is replayed (Stripe prunes
	// keys after 24 h). The key is reusable afterwards.
	RecordTTL time.Duration

	// ClaimTTL is how long an in-progress claim outlives a holder that stopped
	// renewing it (a crashed process). It is renewed every ClaimTTL/3 while
	// the handler runs, so a long handler keeps it.
	ClaimTTL time.Duration

	// StoreTimeout bounds each store call. A store that has not answered by
	// then is treated as down: 503 before the handler runs.
	StoreTimeout time.Duration

	// CompleteTimeout is how long the middleware keeps retrying to record a
	// response when the store fails after the handler ran, before it gives up
	// and sends the response unrecorded (the claim then expires).
	CompleteTimeout time.Duration

	// MaxBodyBytes caps the request body; a larger one is a 413.
	MaxBodyBytes int64

	// MaxResponseBytes caps the recorded response body, and what the
	// middleware holds of it. A larger response streams to the client from
	// the write that passes the cap (so it can reach the client before it is
	// recorded), and its replays carry the status and headers only, with
	// X-Idempotent-Body-Omitted: true.
	MaxResponseBytes int

	// RetryAfter is sent with 409 (in progress) and 503 (store down).
	RetryAfter time.Duration

	// Releases decides which handler statuses free the key instead of being
	// recorded. Nil means 5xx and 429: the failure was transient or the
	// server's, so a retry should run again. (Stripe records and replays
	// 500s; a handler that answers 5xx must then not have committed anything.)
	Releases func(status int) bool

	// ProblemType is the "type" link of the middleware's problem+json
	// answers: the documentation the draft asks 400, 409 and 422 to point to.
	ProblemType string

	// Log receives store failures. Nil means slog.Default().
	Log *slog.Logger
}

// Middleware makes handlers idempotent per Idempotency-Key. Build it with New.
type Middleware struct {
	cfg       Config
	methods   map[string]bool
	abandoned atomic.Int64 // failed claims being cleaned up
}

// New checks cfg, fills in its defaults and returns the middleware.
func New(cfg Config) (*Middleware, error) {
	if cfg.Store == nil {
		return nil, errors.New("idempotency: Config.Store is nil")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&cfg.RecordTTL, DefaultRecordTTL)
	def(&cfg.ClaimTTL, DefaultClaimTTL)
	def(&cfg.StoreTimeout, DefaultStoreTimeout)
	def(&cfg.CompleteTimeout, DefaultCompleteTimeout)
	def(&cfg.RetryAfter, DefaultRetryAfter)
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.MaxResponseBytes == 0 {
		cfg.MaxResponseBytes = DefaultMaxResponseBytes
	}
	switch {
	case cfg.ClaimTTL < 30*time.Millisecond:
		return nil, fmt.Errorf("idempotency: ClaimTTL %v is under 30ms (renewed every ClaimTTL/3, stored with millisecond precision)", cfg.ClaimTTL)
	case cfg.RecordTTL < time.Millisecond:
		return nil, fmt.Errorf("idempotency: RecordTTL %v is under 1ms", cfg.RecordTTL)
	case cfg.StoreTimeout < 0 || cfg.CompleteTimeout < 0 || cfg.RetryAfter < 0:
		return nil, errors.New("idempotency: negative StoreTimeout, CompleteTimeout or RetryAfter")
	case cfg.MaxBodyBytes < 0 || cfg.MaxResponseBytes < 0:
		return nil, errors.New("idempotency: negative MaxBodyBytes or MaxResponseBytes")
	}
	if cfg.Scope == nil {
		cfg.Scope = HeaderScope(HeaderTenant)
	}
	if cfg.Methods == nil {
		cfg.Methods = []string{http.MethodPost, http.MethodPatch}
	}
	if cfg.Releases == nil {
		cfg.Releases = func(status int) bool { return status >= 500 || status == http.StatusTooManyRequests }
	}
	if cfg.ProblemType == "" {
		cfg.ProblemType = DefaultProblemType
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	m := &Middleware{cfg: cfg, methods: map[string]bool{}}
	for _, meth := range cfg.Methods {
		m.methods[meth] = true
	}
	return m, nil
}

type keyContext struct{}

// KeyFromContext returns the key of the request a handler runs for, so the
// handler can also enforce it, e.g. as a unique column next to its side effect.
func KeyFromContext(ctx context.Context) (Key, bool) {
	k, ok := ctx.Value(keyContext{}).(Key)
	return k, ok
}

// Wrap returns next behind the middleware.
func (m *Middleware) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { m.serve(next, w, r) })
}

func (m *Middleware) serve(next http.Handler, w http.ResponseWriter, r *http.Request) {
	if !m.methods[r.Method] {
		next.ServeHTTP(w, r)
		return
	}
	fields := r.Header.Values(HeaderKey)
	switch {
	case len(fields) == 0 && !m.cfg.Required:
		next.ServeHTTP(w, r)
		return
	case len(fields) == 0:
		m.problem(w, http.StatusBadRequest, "Idempotency-Key is missing", "This operation requires an Idempotency-Key header (a UUID is a good choice).")
		return
	case len(fields) > 1:
		m.problem(w, http.StatusBadRequest, "Idempotency-Key is invalid", "A request carries one Idempotency-Key field; this one has "+strconv.Itoa(len(fields))+".")
		return
	}
	id, err := ParseKey(fields[0])
	if err != nil {
		m.problem(w, http.StatusBadRequest, "Idempotency-Key is invalid", err.Error())
		return
	}
	tenant, err := m.cfg.Scope(r)
	if err == nil {
		err = ValidTenant(tenant)
	}
	if err != nil {
		m.problem(w, http.StatusBadRequest, "Tenant is invalid", err.Error())
		return
	}
	if r.Body == nil { // a hand-made request; servers always set one
		r.Body = http.NoBody
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, m.cfg.MaxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			m.problem(w, http.StatusRequestEntityTooLarge, "Request body too large", fmt.Sprintf("The body may be at most %d bytes.", m.cfg.MaxBodyBytes))
		} else {
			m.problem(w, http.StatusBadRequest, "Request body unreadable", err.Error())
		}
		return
	}
	key := Key{Tenant: tenant, ID: id}
	claim := Record{State: InProgress, Fingerprint: NewFingerprint(r.Method, r.URL.RequestURI(), body), Token: rand.Text()}

	if r.Context().Err() != nil { // the client left before anything was sent: claim nothing
		m.unavailable(w)
		return
	}
	// Detached from the client: a claim, once sent, is either used or
	// abandoned, never dropped halfway because the client hung up.
	claimed := time.Now()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), m.cfg.StoreTimeout)
	deadline, _ := ctx.Deadline()
	existing, err := m.cfg.Store.Claim(ctx, key, claim, m.cfg.ClaimTTL)
	cancel()
	switch {
	case err != nil:
		m.cfg.Log.Error("idempotency: claim failed; answering 503", "key", key.String(), "err", err)
		m.abandon(key, claim.Token, deadline)
		m.unavailable(w)
	case existing != nil && existing.Token == claim.Token:
		// Our own claim: the store client retried a Claim whose first try
		// had landed. We hold the key.
		m.execute(next, w, r, key, claim, body, claimed)
	case existing != nil && existing.Fingerprint != claim.Fingerprint:
		m.problem(w, http.StatusUnprocessableEntity, "Idempotency-Key is already used",
			"This key was used for a different request (method, path or body). A key must not be reused across different payloads.")
	case existing != nil && existing.State == InProgress:
		m.retryAfter(w)
		m.problem(w, http.StatusConflict, "A request is outstanding for this Idempotency-Key",
			"A request with the same Idempotency-Key is being processed. Retry later with the same key to get its result.")
	case existing != nil:
		replay(w, existing)
	default:
		m.execute(next, w, r, key, claim, body, claimed)
	}
}

// execute runs next for the key it holds, then records or releases the
// result, and only then writes the response (a body over MaxResponseBytes
// has streamed to the client by then, and is recorded without its body).
func (m *Middleware) execute(next http.Handler, w http.ResponseWriter, r *http.Request, key Key, claim Record, body []byte, claimed time.Time) {
	// Detached from the client: a client that times out must find a
	// recorded result on its retry, not a handler cancelled halfway.
	ctx, cancel := context.WithCancelCause(context.WithoutCancel(r.Context()))
	defer cancel(nil)
	ctx = context.WithValue(ctx, keyContext{}, key)
	stopLease := m.lease(ctx, key, claim, claimed, cancel)

	r = r.WithContext(ctx)
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }

	rec := &recorder{w: w, limit: m.cfg.MaxResponseBytes, header: http.Header{}}
	finished := false
	defer func() {
		if finished {
			return
		}
		// The handler panicked (or called runtime.Goexit): nothing has been
		// written yet, or part of a streamed body. Free the key so the retry
		// runs, then let the panic go on to net/http, which logs it and drops
		// the connection.
		m.release(key, claim.Token, stopLease())
		if v := recover(); v != nil {
			panic(v)
		}
	}()
	next.ServeHTTP(rec, r)
	finished = true

	rec.finish()
	if m.cfg.Releases(rec.status) {
		m.release(key, claim.Token, stopLease())
		rec.sendTo()
		return
	}
	done := Record{
		State:       Completed,
		Fingerprint: claim.Fingerprint,
		Token:       claim.Token,
		Status:      rec.status,
		Header:      withoutHopByHop(rec.sent),
		Body:        rec.body.Bytes(),
		BodyOmitted: rec.streamed,
	}
	if err := m.complete(key, done); err != nil {
		m.cfg.Log.Error("idempotency: response not recorded; a retry after the claim expires runs the handler again",
			"key", key.String(), "status", rec.status, "err", err)
	}
	stopLease()
	rec.sendTo()
}

// lease renews the claim every ClaimTTL/3 until stop is called. The claim is
// good until the start of the last Claim or Renew that succeeded plus
// ClaimTTL (the store counts from when it applied the write, a little
// later). At that moment a timer cancels the handler with ErrClaimLost, even
// while a Renew still waits for a stalled store: from then on another request
// may claim the key and run. Each Renew carries the time left as its
// deadline, so one that reaches the store after it renews nothing. A renewal
// that finds another holder cancels the handler at once.
//
// stop returns the deadline of the last Renew whose outcome is unknown (it
// failed or timed out), or the zero time: a claim that is released afterwards
// must also be released once that deadline has passed (abandon).
func (m *Middleware) lease(ctx context.Context, key Key, claim Record, claimed time.Time, cancel context.CancelCauseFunc) (stop func() (unsettled time.Time)) {
	var (
		mu        sync.Mutex
		heldUntil = claimed.Add(m.cfg.ClaimTTL)
		expiry    *time.Timer
	)
	expiry = time.AfterFunc(m.cfg.ClaimTTL-time.Since(claimed), func() {
		mu.Lock()
		defer mu.Unlock()
		if left := time.Until(heldUntil); left > 0 { // renewed since the timer was set
			expiry.Reset(left)
			return
		}
		m.cfg.Log.Error("idempotency: claim not renewed within ClaimTTL; cancelling the handler", "key", key.String())
		cancel(fmt.Errorf("%w: not renewed within ClaimTTL (%v)", ErrClaimLost, m.cfg.ClaimTTL))
	})
	done, exited := make(chan struct{}), make(chan struct{})
	var unsettled time.Time
	go func() {
		defer close(exited)
		tick := time.NewTicker(m.cfg.ClaimTTL / 3)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done(): // cancelled: the claim is lost or the handler is done with it
				return
			case <-tick.C:
			}
			start := time.Now()
			mu.Lock()
			deadline := heldUntil
			mu.Unlock()
			if d := start.Add(m.cfg.StoreTimeout); d.Before(deadline) {
				deadline = d
			}
			callCtx, cancelCall := context.WithDeadline(context.Background(), deadline)
			err := m.cfg.Store.Renew(callCtx, key, claim, m.cfg.ClaimTTL)
			cancelCall()
			switch {
			case err == nil:
				mu.Lock()
				heldUntil = start.Add(m.cfg.ClaimTTL)
				mu.Unlock()
			case errors.Is(err, ErrClaimLost):
				m.cfg.Log.Error("idempotency: claim taken by another request; cancelling the handler", "key", key.String())
				cancel(ErrClaimLost)
				return
			default:
				unsettled = deadline
				m.cfg.Log.Warn("idempotency: claim renewal failed; retrying", "key", key.String(), "err", err)
			}
		}
	}()
	var stopped bool
	return func() time.Time {
		if !stopped {
			stopped = true
			close(done)
			<-exited
			expiry.Stop()
		}
		return unsettled
	}
}

// complete records done, retrying store failures for up to CompleteTimeout
// with capped exponential backoff. ErrClaimLost is final.
func (m *Middleware) complete(key Key, done Record) error {
	ctx, cancel := context.WithTimeout(context.Background(), m.cfg.CompleteTimeout)
	defer cancel()
	for wait := 10 * time.Millisecond; ; wait = min(2*wait, time.Second) {
		callCtx, cancelCall := context.WithTimeout(ctx, m.cfg.StoreTimeout)
		err := m.cfg.Store.Complete(callCtx, key, done, m.cfg.RecordTTL)
		cancelCall()
		if err == nil || errors.Is(err, ErrClaimLost) {
			return err
		}
		m.cfg.Log.Warn("idempotency: recording the response failed; retrying", "key", key.String(), "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

// MaxClockSkew is how far the store's clock may be behind this process's.
// A Claim that failed is released this long after its deadline, when the
// store, by its own clock, refuses the claim if it still arrives.
const MaxClockSkew = time.Second

// maxAbandoned bounds the failed claims being cleaned up at once (each is
// one goroutine, mostly asleep); past it a failed claim is left to expire.
const maxAbandoned = 4096

// abandon makes sure the claim of a Claim call that failed does not outlive
// the 503 that says "not processed". The call may have reached the store all
// the same: a stalled server runs the command it had received when it wakes,
// after the caller gave up. The store applies a claim only before the call's
// deadline, by its own clock (the Store contract), so once that deadline has
// passed, MaxClockSkew included, a token-checked Release deletes whatever
// landed and nothing can land after it. Release is retried while the store
// is unreachable, until a claim that landed would have expired anyway.
func (m *Middleware) abandon(key Key, token string, deadline time.Time) {
	from, until := deadline.Add(MaxClockSkew), deadline.Add(m.cfg.ClaimTTL)
	if !from.Before(until) {
		return // whatever landed expires before it could be released
	}
	if m.abandoned.Add(1) > maxAbandoned {
		m.abandoned.Add(-1)
		m.cfg.Log.Error("idempotency: too many failed claims to clean up; this key may answer 409 until ClaimTTL", "key", key.String())
		return
	}
	go func() {
		defer m.abandoned.Add(-1)
		time.Sleep(time.Until(from))
		for wait := 10 * time.Millisecond; ; wait = min(2*wait, time.Second) {
			ctx, cancel := context.WithTimeout(context.Background(), min(m.cfg.StoreTimeout, time.Until(until)))
			err := m.cfg.Store.Release(ctx, key, token)
			cancel()
			if err == nil {
				return
			}
			if time.Until(until) < wait {
				m.cfg.Log.Error("idempotency: a failed claim could not be released; it expires after ClaimTTL", "key", key.String(), "err", err)
				return
			}
			time.Sleep(wait)
		}
	}()
}

// release frees the key after a failure. If it cannot, the claim expires
// after ClaimTTL and the retry waits until then (409s). A Renew whose outcome
// is unknown (unsettled, its deadline) may still land after the release and
// store the claim again, so the claim is abandoned too: released again once
// that deadline has passed.
func (m *Middleware) release(key Key, token string, unsettled time.Time) {
	ctx, cancel := context.WithTimeout(context.Background(), m.cfg.StoreTimeout)
	defer cancel()
	if err := m.cfg.Store.Release(ctx, key, token); err != nil {
		m.cfg.Log.Error("idempotency: release failed; the key is blocked until the claim expires", "key", key.String(), "err", err)
	}
	if !unsettled.IsZero() {
		m.abandon(key, token, unsettled)
	}
}

// replay writes a completed record as the response.
func replay(w http.ResponseWriter, rec *Record) {
	h := w.Header()
	for k, v := range rec.Header {
		h[k] = slices.Clone(v)
	}
	h.Set(HeaderReplayed, "true")
	if rec.BodyOmitted {
		h.Del("Content-Length")
		h.Set(HeaderBodyOmitted, "true")
	}
	w.WriteHeader(rec.Status)
	_, _ = w.Write(rec.Body)
}

// unavailable answers 503: the store did not answer, nothing ran.
func (m *Middleware) unavailable(w http.ResponseWriter) {
	m.retryAfter(w)
	m.problem(w, http.StatusServiceUnavailable, "Idempotency store unavailable", "The request was not processed. Retry it with the same Idempotency-Key.")
}

func (m *Middleware) retryAfter(w http.ResponseWriter) {
	secs := int64(math.Ceil(m.cfg.RetryAfter.Seconds()))
	w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
}

// problem writes an RFC 9457 problem+json answer, shaped like the draft's
// examples.
func (m *Middleware) problem(w http.ResponseWriter, status int, title, detail string) {
	body, _ := json.Marshal(struct {
		Type   string `json:"type"`
		Title  string `json:"title"`
		Status int    `json:"status"`
		Detail string `json:"detail"`
	}{m.cfg.ProblemType, title, status, detail})
	w.Header().Set("Content-Type", ProblemContentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)+1))
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

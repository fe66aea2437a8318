package idempotency_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/internal/leakcheck"
	"github.com/sysdesign-masterclass/golang/part07-idempotency/idempotency"
	"github.com/sysdesign-masterclass/golang/part07-idempotency/idempotency/memstore"
)

func TestMain(m *testing.M) { leakcheck.VerifyTestMain(m) }

var quiet = slog.New(slog.DiscardHandler)

// server is a handler behind the middleware that counts its runs.
type server struct {
	h    http.Handler
	runs atomic.Int64
}

func newServer(t *testing.T, cfg idempotency.Config, handler http.HandlerFunc) *server {
	t.Helper()
	s := &server{}
	if cfg.Store == nil {
		cfg.Store = memstore.New()
	}
	if cfg.Log == nil {
		cfg.Log = quiet
	}
	mw, err := idempotency.New(cfg)
	require.NoError(t, err)
	if handler == nil {
		handler = func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusCreated)
			fmt.Fprintf(w, `{"got":%q}`, body)
		}
	}
	s.h = mw.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.runs.Add(1)
		handler(w, r)
	}))
	return s
}

type req struct {
	method, target, body string
	header               http.Header
}

func (s *server) do(r req) *httptest.ResponseRecorder {
	if r.method == "" {
		r.method = http.MethodPost
	}
	if r.target == "" {
		r.target = "/payments"
	}
	hr := httptest.NewRequest(r.method, r.target, strings.NewReader(r.body))
	for k, v := range r.header {
		hr.Header[k] = v
	}
	rec := httptest.NewRecorder()
	s.h.ServeHTTP(rec, hr)
	return rec
}

func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

// keyed is the header set of a well-formed request.
func keyed(key string) http.Header { return hdr("Idempotency-Key", key, "X-Tenant-ID", "acme") }

func problem(t *testing.T, rec *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	assert.Equal(t, idempotency.ProblemContentType, rec.Header().Get("Content-Type"))
	var p map[string]any
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &p), rec.Body.String())
	assert.Equal(t, float64(rec.Code), p["status"])
	assert.Equal(t, idempotency.DefaultProblemType, p["type"])
	return p
}

// Malformed input is refused with 400 (413 for a big body) before the store
// or the handler sees it, with a problem+json body saying why.
func TestBadRequestsNeverRun(t *testing.T) {
	t.Parallel()
	s := newServer(t, idempotency.Config{Required: true, MaxBodyBytes: 16}, nil)
	for _, tt := range []struct {
		name   string
		r      req
		status int
		detail string
	}{
		{"no key on a route that requires one", req{header: hdr("X-Tenant-ID", "acme")}, 400, "requires an Idempotency-Key"},
		{"empty key", req{header: keyed("")}, 400, "empty"},
		{"two key fields", req{header: hdr("Idempotency-Key", "a", "Idempotency-Key", "b", "X-Tenant-ID", "acme")}, 400, "one Idempotency-Key field; this one has 2"},
		{"a list in one field", req{header: keyed("a, b")}, 400, `',' is not allowed`},
		{"key too long", req{header: keyed(strings.Repeat("k", 256))}, 400, "256 bytes long; at most 255"},
		{"control byte", req{header: keyed("abc\x7f")}, 400, `'\x7f' is not allowed`},
		{"unterminated quote", req{header: keyed(`"abc`)}, 400, "no closing quote"},
		{"sf-string with parameters", req{header: keyed(`"abc";v=1`)}, 400, `unexpected ";v=1" after the closing quote`},
		{"bad escape", req{header: keyed(`"a\bc"`)}, 400, "may only escape"},
		{"no tenant", req{header: hdr("Idempotency-Key", "k")}, 400, "the X-Tenant-ID header is missing"},
		{"two tenants", req{header: hdr("Idempotency-Key", "k", "X-Tenant-ID", "a", "X-Tenant-ID", "b")}, 400, "more than one X-Tenant-ID"},
		{"tenant with a colon", req{header: hdr("Idempotency-Key", "k", "X-Tenant-ID", "a:b")}, 400, `':' is not allowed`},
		{"body over the cap", req{header: keyed("k"), body: strings.Repeat("x", 17)}, 413, "at most 16 bytes"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := s.do(tt.r)
			assert.Equal(t, tt.status, rec.Code)
			assert.Contains(t, problem(t, rec)["detail"], tt.detail)
		})
	}
	assert.Zero(t, s.runs.Load(), "the handler never ran")
	rec := s.do(req{header: keyed("k"), body: strings.Repeat("x", 16)})
	assert.Equal(t, http.StatusCreated, rec.Code, "a body exactly at the cap is fine")
}

// The middleware applies to POST and PATCH; GET passes through untouched, and
// without Required a POST without a key runs unprotected.
func TestWhatPassesThrough(t *testing.T) {
	t.Parallel()
	s := newServer(t, idempotency.Config{}, nil)
	for range 2 {
		assert.Equal(t, http.StatusCreated, s.do(req{method: http.MethodGet, header: keyed("k")}).Code)
		assert.Equal(t, http.StatusCreated, s.do(req{}).Code, "no key, not required")
	}
	assert.Equal(t, int64(4), s.runs.Load())
}

// One request, three spellings: the draft's sf-string, an escaped one and
// the bare token all name the same key.
func TestQuotedAndBareKeysAreOneKey(t *testing.T) {
	t.Parallel()
	s := newServer(t, idempotency.Config{}, nil)
	for _, k := range []string{`"a\"b"`, `a"b`} {
		assert.Equal(t, http.StatusBadRequest, s.do(req{header: keyed(k)}).Code, `'"' is outside the key charset, quoted or not: %s`, k)
	}
	for i, k := range []string{`"8e03978e-40d5-43e8-bc93-6894a57f9324"`, `8e03978e-40d5-43e8-bc93-6894a57f9324`, `"8e03978e-40d5-43e8-bc93-6894a57f9324" `} {
		rec := s.do(req{header: keyed(k)})
		require.Equal(t, http.StatusCreated, rec.Code)
		assert.Equal(t, i > 0, rec.Header().Get(idempotency.HeaderReplayed) == "true", "spelling %d", i)
	}
	assert.Equal(t, int64(1), s.runs.Load())
}

// The fingerprint covers method, path, query and body; the scope keeps
// tenants apart.
func TestFingerprintAndScope(t *testing.T) {
	t.Parallel()
	s := newServer(t, idempotency.Config{}, nil)
	require.Equal(t, http.StatusCreated, s.do(req{header: keyed("k"), body: `{"amount":100}`}).Code)
	for _, r := range []req{
		{target: "/refunds", header: keyed("k"), body: `{"amount":100}`},
		{target: "/payments?currency=EUR", header: keyed("k"), body: `{"amount":100}`},
		{method: http.MethodPatch, header: keyed("k"), body: `{"amount":100}`},
		{header: keyed("k"), body: `{"amount": 100}`},
	} {
		rec := s.do(r)
		assert.Equal(t, http.StatusUnprocessableEntity, rec.Code, "%s %s %s", r.method, r.target, r.body)
		problem(t, rec)
	}
	other := s.do(req{header: hdr("Idempotency-Key", "k", "X-Tenant-ID", "globex"), body: `{"amount":100}`})
	assert.Equal(t, http.StatusCreated, other.Code)
	assert.Empty(t, other.Header().Get(idempotency.HeaderReplayed), "another tenant's key of the same name is its own")
	assert.Equal(t, int64(2), s.runs.Load())
}

// down is a store that cannot answer.
type down struct{ idempotency.Store }

var errDown = errors.New("dial tcp 127.0.0.1:6379: connect: connection refused")

func (down) Claim(context.Context, idempotency.Key, idempotency.Record, time.Duration) (*idempotency.Record, error) {
	return nil, errDown
}

func (down) Release(context.Context, idempotency.Key, string) error { return errDown }

// A store outage fails closed: 503 with Retry-After, and nothing runs. The
// article's middleware answers 409 "in progress" here.
func TestStoreOutageIs503AndRunsNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newServer(t, idempotency.Config{Store: down{}, RetryAfter: 1500 * time.Millisecond}, nil)
		rec := s.do(req{header: keyed("k")})
		assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
		assert.Equal(t, "2", rec.Header().Get("Retry-After"), "seconds, rounded up")
		assert.Contains(t, problem(t, rec)["detail"], "not processed")
		assert.Zero(t, s.runs.Load())
		time.Sleep(idempotency.DefaultStoreTimeout + idempotency.DefaultClaimTTL) // the release of the failed claim gives up
	})
}

// unanswered applies the first Claim but reports it failed, as a store call
// does when the server stalls after receiving the command and runs it once
// the caller has given up.
type unanswered struct {
	idempotency.Store
	claims atomic.Int32
}

func (u *unanswered) Claim(ctx context.Context, key idempotency.Key, claim idempotency.Record, ttl time.Duration) (*idempotency.Record, error) {
	rec, err := u.Store.Claim(ctx, key, claim, ttl)
	if u.claims.Add(1) == 1 {
		return nil, context.DeadlineExceeded
	}
	return rec, err
}

// A 503 says "not processed, retry with the same key", so the claim a failed
// Claim may have left must not block that retry until ClaimTTL: once the
// call's deadline has passed (MaxClockSkew included), the middleware
// releases it by its token.
func TestFailedClaimDoesNotBlockTheRetry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &unanswered{Store: memstore.New()}
		s := newServer(t, idempotency.Config{Store: store}, nil)
		assert.Equal(t, http.StatusServiceUnavailable, s.do(req{header: keyed("k")}).Code)
		assert.Equal(t, http.StatusConflict, s.do(req{header: keyed("k")}).Code, "the claim landed; the release waits for the deadline")
		time.Sleep(idempotency.DefaultStoreTimeout + idempotency.MaxClockSkew)
		synctest.Wait()
		assert.Equal(t, http.StatusCreated, s.do(req{header: keyed("k")}).Code, "released: the retry runs")
		assert.Equal(t, "true", s.do(req{header: keyed("k")}).Header().Get(idempotency.HeaderReplayed))
		assert.Equal(t, int64(1), s.runs.Load())
	})
}

// flaky fails Complete a given number of times, then passes it on.
type flaky struct {
	idempotency.Store
	completeFailures atomic.Int32
	completes        atomic.Int32
}

func (f *flaky) Complete(ctx context.Context, key idempotency.Key, rec idempotency.Record, ttl time.Duration) error {
	f.completes.Add(1)
	if f.completeFailures.Add(-1) >= 0 {
		return errDown
	}
	return f.Store.Complete(ctx, key, rec, ttl)
}

// When the store fails after the handler ran, the middleware keeps trying to
// record the response (the client waits), and sends it either way: the
// handler did run.
func TestRecordingRetriesThenSendsTheResponse(t *testing.T) {
	for _, tt := range []struct {
		name     string
		failures int32
		replayed bool
	}{
		{"the store comes back", 5, true},
		{"the store stays down past CompleteTimeout", 1 << 30, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				store := &flaky{Store: memstore.New()}
				store.completeFailures.Store(tt.failures)
				s := newServer(t, idempotency.Config{Store: store, CompleteTimeout: 5 * time.Second}, nil)
				start := time.Now()
				rec := s.do(req{header: keyed("k")})
				assert.Equal(t, http.StatusCreated, rec.Code, "the handler's own answer")
				assert.LessOrEqual(t, time.Since(start), 5*time.Second, "bounded by CompleteTimeout")
				again := s.do(req{header: keyed("k")})
				if tt.replayed {
					assert.Equal(t, "true", again.Header().Get(idempotency.HeaderReplayed))
					assert.Equal(t, int32(6), store.completes.Load())
				} else {
					assert.Equal(t, http.StatusConflict, again.Code, "unrecorded: the claim blocks until ClaimTTL")
					time.Sleep(idempotency.DefaultClaimTTL)
					assert.Equal(t, http.StatusCreated, s.do(req{header: keyed("k")}).Code, "then the key runs again")
				}
			})
		})
	}
}

// stolen is a store on which another request takes the key while the
// handler runs.
type stolen struct{ idempotency.Store }

func (stolen) Renew(context.Context, idempotency.Key, idempotency.Record, time.Duration) error {
	return idempotency.ErrClaimLost
}

// unreachable can claim but never renew.
type unreachable struct{ idempotency.Store }

func (unreachable) Renew(context.Context, idempotency.Key, idempotency.Record, time.Duration) error {
	return errDown
}

// stalled can claim, but its renewals wait until their deadline: the store
// stopped answering after the claim.
type stalled struct{ idempotency.Store }

func (stalled) Renew(ctx context.Context, _ idempotency.Key, _ idempotency.Record, _ time.Duration) error {
	<-ctx.Done()
	return ctx.Err()
}

// A handler that outlives its claim learns it through its context: at once
// when another request holds the key, and at ClaimTTL after the last
// successful Claim or Renew when the store does not renew it, whether
// renewals fail fast or hang (StoreTimeout 1.5 s, ClaimTTL 3 s: a hanging
// Renew used to delay the cancel to 4 s, after the claim had expired).
func TestLostClaimCancelsTheHandler(t *testing.T) {
	const claimTTL = 3 * time.Second
	for _, tt := range []struct {
		name   string
		store  func() idempotency.Store
		within time.Duration
	}{
		{"taken by another request", func() idempotency.Store { return stolen{memstore.New()} }, claimTTL / 3},
		{"renewals fail", func() idempotency.Store { return unreachable{memstore.New()} }, claimTTL},
		{"renewals hang", func() idempotency.Store { return stalled{memstore.New()} }, claimTTL},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var cause error
				var took time.Duration
				cfg := idempotency.Config{Store: tt.store(), ClaimTTL: claimTTL, StoreTimeout: claimTTL / 2}
				s := newServer(t, cfg, func(w http.ResponseWriter, r *http.Request) {
					start := time.Now()
					select {
					case <-r.Context().Done():
						cause, took = context.Cause(r.Context()), time.Since(start)
						http.Error(w, "aborted", http.StatusServiceUnavailable)
					case <-time.After(time.Hour):
						w.WriteHeader(http.StatusCreated)
					}
				})
				assert.Equal(t, http.StatusServiceUnavailable, s.do(req{header: keyed("k")}).Code)
				assert.ErrorIs(t, cause, idempotency.ErrClaimLost)
				assert.Equal(t, tt.within, took)
				time.Sleep(cfg.StoreTimeout + cfg.ClaimTTL) // the release of a claim whose renewal was unsettled
			})
		})
	}
}

// Two requests with one key never run at once: when renewals stall and the
// claim expires in the store, the first handler is cancelled before the
// second request can claim the key.
func TestExpiredClaimIsCancelledBeforeTheNextRequestRuns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const claimTTL = 3 * time.Second
		var firstCancelled, secondStarted time.Time
		cfg := idempotency.Config{Store: stalled{memstore.New()}, ClaimTTL: claimTTL, StoreTimeout: claimTTL / 2}
		s := newServer(t, cfg, func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("X-Second") == "" {
				<-r.Context().Done()
				firstCancelled = time.Now()
				http.Error(w, "aborted", http.StatusServiceUnavailable)
				return
			}
			secondStarted = time.Now()
			w.WriteHeader(http.StatusCreated)
		})
		first := make(chan int)
		go func() { first <- s.do(req{header: keyed("k")}).Code }()
		time.Sleep(claimTTL + claimTTL/10) // the claim expired in the store
		second := keyed("k")
		second.Set("X-Second", "1")
		assert.Equal(t, http.StatusCreated, s.do(req{header: second}).Code, "the key is free again")
		assert.Equal(t, http.StatusServiceUnavailable, <-first)
		require.False(t, firstCancelled.IsZero(), "the first handler was cancelled")
		assert.False(t, firstCancelled.After(secondStarted), "cancelled at %v, the second ran at %v", firstCancelled, secondStarted)
		time.Sleep(cfg.StoreTimeout + cfg.ClaimTTL)
	})
}

// The client's disconnect does not cancel the handler: the request runs to
// the end and its result is recorded for the retry. The handler can read its
// key from the context.
func TestHandlerRunsOnWhenTheClientLeaves(t *testing.T) {
	t.Parallel()
	var (
		key      idempotency.Key
		ok       bool
		errAfter error
	)
	s := newServer(t, idempotency.Config{}, nil)
	ctx, cancel := context.WithCancel(t.Context())
	cancel() // the client is gone before the handler runs
	hr := httptest.NewRequestWithContext(ctx, http.MethodPost, "/payments", nil)
	hr.Header = keyed("k")
	rec := httptest.NewRecorder()
	s.h.ServeHTTP(rec, hr)
	// A dead request context fails the claim (503) before anything runs…
	assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
	assert.Zero(t, s.runs.Load())

	// …but once claimed, the client leaving does not stop the handler.
	ctx, cancel = context.WithCancel(t.Context())
	s2 := newServer(t, idempotency.Config{}, func(w http.ResponseWriter, r *http.Request) {
		cancel()
		key, ok = idempotency.KeyFromContext(r.Context())
		errAfter = r.Context().Err()
		w.WriteHeader(http.StatusCreated)
	})
	hr = httptest.NewRequestWithContext(ctx, http.MethodPost, "/payments", nil)
	hr.Header = keyed("k")
	rec = httptest.NewRecorder()
	s2.h.ServeHTTP(rec, hr)
	assert.Equal(t, http.StatusCreated, rec.Code)
	assert.NoError(t, errAfter, "the handler's context survives the client")
	assert.True(t, ok)
	assert.Equal(t, idempotency.Key{Tenant: "acme", ID: "k"}, key)
	assert.Equal(t, "true", s2.do(req{header: keyed("k")}).Header().Get(idempotency.HeaderReplayed))
}

// 429 is released like a 5xx; other 4xx are the operation's result and are
// replayed, as the draft says ("success or an error").
func TestWhichStatusesAreRecorded(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		status   int
		recorded bool
	}{{200, true}, {201, true}, {400, true}, {404, true}, {409, true}, {422, true}, {429, false}, {500, false}, {502, false}, {503, false}} {
		s := newServer(t, idempotency.Config{}, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(tt.status) })
		require.Equal(t, tt.status, s.do(req{header: keyed("k")}).Code)
		again := s.do(req{header: keyed("k")})
		assert.Equal(t, tt.status, again.Code)
		assert.Equal(t, tt.recorded, again.Header().Get(idempotency.HeaderReplayed) == "true", "status %d recorded", tt.status)
		assert.Equal(t, map[bool]int64{true: 1, false: 2}[tt.recorded], s.runs.Load(), "status %d", tt.status)
	}
}

// A handler that sets no Content-Type gets the sniffed one on its first
// answer and on every replay; a handler that writes nothing answers 200.
func TestImplicitStatusAndContentType(t *testing.T) {
	t.Parallel()
	s := newServer(t, idempotency.Config{}, func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "<html>hi</html>") })
	first, again := s.do(req{header: keyed("k")}), s.do(req{header: keyed("k")})
	assert.Equal(t, http.StatusOK, first.Code)
	assert.Equal(t, "text/html; charset=utf-8", first.Header().Get("Content-Type"))
	assert.Equal(t, first.Header().Get("Content-Type"), again.Header().Get("Content-Type"))
	assert.Equal(t, first.Body.String(), again.Body.String())

	empty := newServer(t, idempotency.Config{}, func(http.ResponseWriter, *http.Request) {})
	assert.Equal(t, http.StatusOK, empty.do(req{header: keyed("k")}).Code)
	assert.Equal(t, http.StatusOK, empty.do(req{header: keyed("k")}).Code)
	assert.Equal(t, int64(1), empty.runs.Load())
}

// A response over MaxResponseBytes reaches its client whole; the replay has
// the status and headers and says the body was not kept.
func TestResponseOverTheRecordingCap(t *testing.T) {
	t.Parallel()
	body := strings.Repeat("x", 100)
	s := newServer(t, idempotency.Config{MaxResponseBytes: 64}, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Length", "100")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, body)
	})
	first := s.do(req{header: keyed("k")})
	assert.Equal(t, body, first.Body.String())
	again := s.do(req{header: keyed("k")})
	assert.Equal(t, http.StatusCreated, again.Code)
	assert.Empty(t, again.Body.String())
	assert.Equal(t, "true", again.Header().Get(idempotency.HeaderBodyOmitted))
	assert.Empty(t, again.Header().Get("Content-Length"))
	assert.Equal(t, int64(1), s.runs.Load())
}

// sink is a client that counts what reaches it.
type sink struct {
	header http.Header
	status int
	n      int
}

func (s *sink) Header() http.Header         { return s.header }
func (s *sink) WriteHeader(status int)      { s.status = status }
func (s *sink) Write(p []byte) (int, error) { s.n += len(p); return len(p), nil }

// A response over MaxResponseBytes is not recorded, so it is not held
// either: it reaches the client while the handler writes it, and the
// middleware buffers at most the cap. (It used to hold the whole body and
// send nothing until the handler returned: 64 MiB held for a 1 MiB cap.)
func TestResponseOverTheCapStreams(t *testing.T) {
	const limit, total = 1 << 20, 64 << 20
	var atReturn int
	client := &sink{header: http.Header{}}
	s := newServer(t, idempotency.Config{MaxResponseBytes: limit}, func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusCreated)
		chunk := bytes.Repeat([]byte("x"), 32<<10)
		for range total / len(chunk) {
			_, _ = w.Write(chunk)
		}
		atReturn = client.n
	})
	hr := httptest.NewRequest(http.MethodPost, "/payments", nil)
	hr.Header = keyed("k")
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	s.h.ServeHTTP(client, hr)
	runtime.ReadMemStats(&after)
	assert.Equal(t, http.StatusCreated, client.status)
	assert.Equal(t, total, client.n, "the whole body reached the client")
	assert.Greater(t, atReturn, total-limit, "and all but the last cap's worth before the handler returned")
	assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(16<<20), "allocated while serving 64 MiB with a 1 MiB cap")
	t.Logf("serving %d MiB with a %d MiB cap allocated %.1f MiB", total>>20, limit>>20, float64(after.TotalAlloc-before.TotalAlloc)/(1<<20))
	again := s.do(req{header: keyed("k")})
	assert.Equal(t, http.StatusCreated, again.Code)
	assert.Equal(t, "true", again.Header().Get(idempotency.HeaderBodyOmitted))
	assert.Empty(t, again.Body.String())
	assert.Equal(t, int64(1), s.runs.Load())
}

// own returns the caller's own claim from Claim, as a store client does when
// it retried a claim whose first try landed.
type own struct{ idempotency.Store }

func (o own) Claim(ctx context.Context, key idempotency.Key, claim idempotency.Record, ttl time.Duration) (*idempotency.Record, error) {
	if _, err := o.Store.Claim(ctx, key, claim, ttl); err != nil {
		return nil, err
	}
	return &claim, nil
}

func TestOwnClaimSeenOnARetriedClaimIsHeld(t *testing.T) {
	t.Parallel()
	s := newServer(t, idempotency.Config{Store: own{memstore.New()}}, nil)
	assert.Equal(t, http.StatusCreated, s.do(req{header: keyed("k")}).Code)
	assert.Equal(t, int64(1), s.runs.Load())
}

func TestConfigIsChecked(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		cfg idempotency.Config
		err string
	}{
		{idempotency.Config{}, "Store is nil"},
		{idempotency.Config{Store: memstore.New(), ClaimTTL: 10 * time.Millisecond}, "ClaimTTL 10ms is under 30ms"},
		{idempotency.Config{Store: memstore.New(), RecordTTL: time.Microsecond}, "RecordTTL 1µs is under 1ms"},
		{idempotency.Config{Store: memstore.New(), StoreTimeout: -1}, "negative"},
		{idempotency.Config{Store: memstore.New(), MaxBodyBytes: -1}, "negative"},
	} {
		_, err := idempotency.New(tt.cfg)
		assert.ErrorContains(t, err, tt.err)
	}
}

// cut is a request body the client stops sending halfway.
type cut struct{ r io.Reader }

func (c *cut) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err == io.EOF {
		return n, io.ErrUnexpectedEOF
	}
	return n, err
}

// A body cut off mid-transfer is a 400 and claims nothing, so the client's
// retry with the whole body runs. The article's middleware ignores the read
// error, records the handler's answer to the truncated body, and answers the
// retry 422 for 24 h.
func TestCutBodyDoesNotPoisonTheKey(t *testing.T) {
	t.Parallel()
	s := newServer(t, idempotency.Config{}, nil)
	r := httptest.NewRequest(http.MethodPost, "/payments", &cut{strings.NewReader(`{"amount":1`)})
	r.Header = keyed("k")
	rec := httptest.NewRecorder()
	s.h.ServeHTTP(rec, r)
	assert.Equal(t, http.StatusBadRequest, rec.Code)
	assert.Contains(t, problem(t, rec)["detail"], "unexpected EOF")
	assert.Equal(t, http.StatusCreated, s.do(req{header: keyed("k"), body: `{"amount":100}`}).Code)
	assert.Equal(t, int64(1), s.runs.Load())
}

// fallback is the article's "PostgreSQL provides a durable fallback when
// Redis is unavailable": a second store consulted only while the first fails.
type fallback struct {
	primary, secondary idempotency.Store
	primaryDown        *atomic.Bool
}

func (f fallback) pick() idempotency.Store {
	if f.primaryDown.Load() {
		return f.secondary
	}
	return f.primary
}

func (f fallback) Claim(ctx context.Context, k idempotency.Key, r idempotency.Record, ttl time.Duration) (*idempotency.Record, error) {
	return f.pick().Claim(ctx, k, r, ttl)
}
func (f fallback) Renew(ctx context.Context, k idempotency.Key, r idempotency.Record, ttl time.Duration) error {
	return f.pick().Renew(ctx, k, r, ttl)
}
func (f fallback) Complete(ctx context.Context, k idempotency.Key, r idempotency.Record, ttl time.Duration) error {
	return f.pick().Complete(ctx, k, r, ttl)
}
func (f fallback) Release(ctx context.Context, k idempotency.Key, token string) error {
	return f.pick().Release(ctx, k, token)
}

// A fallback store cannot see what the primary recorded: the retry that
// arrives while the primary is down runs the handler a second time. One
// store (or a unique key next to the side effect) is what deduplicates.
func TestArticleFallbackRunsTwice(t *testing.T) {
	t.Parallel()
	var down atomic.Bool
	s := newServer(t, idempotency.Config{Store: fallback{memstore.New(), memstore.New(), &down}}, nil)
	require.Equal(t, http.StatusCreated, s.do(req{header: keyed("k")}).Code)
	down.Store(true) // Redis goes away; PostgreSQL takes over
	again := s.do(req{header: keyed("k")})
	assert.Equal(t, http.StatusCreated, again.Code)
	assert.Empty(t, again.Header().Get(idempotency.HeaderReplayed), "not a replay: a second execution")
	assert.Equal(t, int64(2), s.runs.Load())
}

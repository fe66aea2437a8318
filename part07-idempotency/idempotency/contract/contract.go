// Package contract is the behaviour every idempotency.Store must have, written
// once as tests and run against each implementation: memstore and redisstore
// on miniredis as unit tests, redisstore and pgstore against the stack's Redis
// and PostgreSQL as integration tests.
//
//	func TestContract(t *testing.T) {
//		contract.Run(t, contract.Harness{New: func(*testing.T) idempotency.Store { return memstore.New() }, Bubble: true})
//	}
//
// Half the cases call the Store directly (claim, renew, complete, release,
// expiry, tenants); the other half drive the middleware over it, because the
// guarantees a reader cares about (one execution for 100 concurrent requests,
// 422, byte-identical replays, panics and 5xx releasing the key, a claim that
// outlives its TTL) need both. Keys are unique to each case and run, so a
// shared store needs no cleanup.
package contract

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/part07-idempotency/idempotency"
)

// Harness describes the store under test.
type Harness struct {
	// New returns the store for one case. It may return a shared store.
	New func(t *testing.T) idempotency.Store

	// Bubble runs each case inside synctest.Test, for stores that read
	// time.Now (memstore; miniredis with ClockTTL): TTLs then expire on the
	// fake clock and the cases take no real time. New is called inside the
	// bubble.
	Bubble bool

	// Unit scales the TTLs of the time-dependent cases; the default, one
	// second, leaves a real store two thirds of a second of scheduling slack
	// wherever a case needs a record to still be live.
	Unit time.Duration
}

// Run runs every case as a subtest, in parallel unless in a bubble.
func Run(t *testing.T, h Harness) {
	t.Helper()
	if h.Unit == 0 {
		h.Unit = time.Second
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), timeout)
				defer cancel()
				tc.run(ctx, t, h, h.New(t))
			}
			if h.Bubble {
				synctest.Test(t, body)
				return
			}
			t.Parallel()
			body(t)
		})
	}
}

// timeout bounds each case, so a hung store fails the case with a message
// instead of stalling the run until go test's own deadline.
const timeout = 60 * time.Second

// UniqueKey returns a key no other case or run uses: the case's name as the
// tenant (shortened, made valid) and a random ID.
func UniqueKey(t testing.TB) idempotency.Key {
	t.Helper()
	tenant := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' {
			return r
		}
		return '_'
	}, t.Name())
	if len(tenant) > idempotency.MaxTenantLen {
		tenant = tenant[len(tenant)-idempotency.MaxTenantLen:]
	}
	return idempotency.Key{Tenant: tenant, ID: rand.Text()}
}

type testCase struct {
	name string
	run  func(ctx context.Context, t *testing.T, h Harness, s idempotency.Store)
}

func claim(body string) idempotency.Record {
	return idempotency.Record{State: idempotency.InProgress, Fingerprint: idempotency.NewFingerprint("POST", "/payments", []byte(body)), Token: rand.Text()}
}

func completed(c idempotency.Record, status int, body string) idempotency.Record {
	c.State, c.Status, c.Body = idempotency.Completed, status, []byte(body)
	c.Header = http.Header{"Content-Type": {"application/json"}, "X-Multi": {"a", "b"}}
	return c
}

// hold claims key for c and fails the case unless it wins.
func hold(ctx context.Context, t *testing.T, s idempotency.Store, key idempotency.Key, c idempotency.Record, ttl time.Duration) {
	t.Helper()
	got, err := s.Claim(ctx, key, c, ttl)
	require.NoError(t, err)
	require.Nil(t, got, "Claim of %v should win, found %+v", key, got)
}

// expired returns two keys whose records just expired: an in-progress claim
// (c, its claim) and a completed record.
func expired(ctx context.Context, t *testing.T, h Harness, s idempotency.Store) (claimed, done idempotency.Key, c idempotency.Record) {
	t.Helper()
	claimed, done = UniqueKey(t), UniqueKey(t)
	c, c2 := claim("x"), claim("x")
	hold(ctx, t, s, claimed, c, h.Unit/2)
	hold(ctx, t, s, done, c2, time.Minute)
	require.NoError(t, s.Complete(ctx, done, completed(c2, 201, "x"), h.Unit/2))
	time.Sleep(h.Unit)
	return claimed, done, c
}

// live returns the live record under key, found by a Claim that must lose.
func live(ctx context.Context, t *testing.T, s idempotency.Store, key idempotency.Key) idempotency.Record {
	t.Helper()
	got, err := s.Claim(ctx, key, claim("x"), time.Minute)
	require.NoError(t, err)
	require.NotNil(t, got, "a live record under %v", key)
	return *got
}

var cases = []testCase{
	{"Claim/a fresh key is claimed, a second Claim sees the claim", func(ctx context.Context, t *testing.T, h Harness, s idempotency.Store) {
		key, c := UniqueKey(t), claim(`{"amount":100}`)
		hold(ctx, t, s, key, c, time.Minute)
		assert.Equal(t, c, live(ctx, t, s, key), "a second Claim finds the first")
	}},
	{"Claim/concurrent claims of one key: exactly one wins", func(ctx context.Context, t *testing.T, h Harness, s idempotency.Store) {
		key := UniqueKey(t)
		const n = 50
		var wins atomic.Int32
		errs := make(chan error, n)
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				got, err := s.Claim(ctx, key, claim("x"), time.Minute)
				if err == nil && got == nil {
					wins.Add(1)
				}
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		assert.Equal(t, int32(1), wins.Load())
	}},
	{"Claim/tenants and IDs never collide", func(ctx context.Context, t *testing.T, h Harness, s idempotency.Store) {
		base := UniqueKey(t)
		for _, key := range []idempotency.Key{
			base,
			{Tenant: base.Tenant + "x", ID: base.ID},
			{Tenant: "", ID: base.Tenant + "." + base.ID},
			{Tenant: base.Tenant, ID: base.ID + ":x"},
		} {
			hold(ctx, t, s, key, claim("x"), time.Minute)
		}
	}},
	{"Complete/Claim replays status, headers and body byte for byte", func(ctx context.Context, t *testing.T, h Harness, s idempotency.Store) {
		key, c := UniqueKey(t), claim("x")
		hold(ctx, t, s, key, c, time.Minute)
		done := completed(c, http.StatusCreated, "{\"id\":1}\x00\xff\xfe binary, not UTF-8")
		require.NoError(t, s.Complete(ctx, key, done, time.Hour))
		require.NoError(t, s.Complete(ctx, key, done, time.Hour), "repeating a Complete that landed (a client retry) succeeds")
		assert.Equal(t, done, live(ctx, t, s, key))
	}},
	{"Complete/omitted body is remembered", func(ctx context.Context, t *testing.T, h Harness, s idempotency.Store) {
		key, c := UniqueKey(t), claim("x")
		hold(ctx, t, s, key, c, time.Minute)
		done := completed(c, http.StatusOK, "")
		done.Body, done.BodyOmitted = nil, true
		require.NoError(t, s.Complete(ctx, key, done, time.Hour))
		got := live(ctx, t, s, key)
		assert.True(t, got.BodyOmitted)
		assert.Empty(t, got.Body)
	}},
	{"Complete/another token cannot overwrite the claim", func(ctx context.Context, t *testing.T, h Harness, s idempotency.Store) {
		key, c := UniqueKey(t), claim("x")
		hold(ctx, t, s, key, c, time.Minute)
		stale := completed(claim("x"), http.StatusCreated, "stale")
		assert.ErrorIs(t, s.Complete(ctx, key, stale, time.Hour), idempotency.ErrClaimLost)
		assert.ErrorIs(t, s.Renew(ctx, key, stale, time.Minute), idempotency.ErrClaimLost)
		assert.Equal(t, c, live(ctx, t, s, key), "the holder's claim is untouched")
	}},
	{"Complete/a key the store lost is written", func(ctx context.Context, t *testing.T, h Harness, s idempotency.Store) {
		key, c := UniqueKey(t), claim("x")
		done := completed(c, http.StatusCreated, "ok")
		require.NoError(t, s.Complete(ctx, key, done, time.Hour), "no record at all (a restarted Redis)")
		assert.Equal(t, done, live(ctx, t, s, key))
	}},
	{"Release/frees the holder's claim, nothing else", func(ctx context.Context, t *testing.T, h Harness, s idempotency.Store) {
		key, c := UniqueKey(t), claim("x")
		hold(ctx, t, s, key, c, time.Minute)
		require.NoError(t, s.Release(ctx, key, rand.Text()), "another token: no-op")
		assert.Equal(t, c, live(ctx, t, s, key), "still claimed")
		require.NoError(t, s.Release(ctx, key, c.Token))
		c2 := claim("x")
		hold(ctx, t, s, key, c2, time.Minute) // released: the next Claim wins
		require.NoError(t, s.Complete(ctx, key, completed(c2, 201, "done"), time.Hour))
		require.NoError(t, s.Release(ctx, key, c2.Token), "a completed record is not released")
		assert.Equal(t, idempotency.Completed, live(ctx, t, s, key).State)
	}},
	{"Renew/keeps a claim past its first TTL", func(ctx context.Context, t *testing.T, h Harness, s idempotency.Store) {
		key, c := UniqueKey(t), claim("x")
		ttl := 3 * h.Unit
		hold(ctx, t, s, key, c, ttl)
		time.Sleep(2 * h.Unit)
		require.NoError(t, s.Renew(ctx, key, c, ttl))
		time.Sleep(2 * h.Unit) // 4 units after the claim, 2 after the renewal
		assert.Equal(t, c, live(ctx, t, s, key), "the renewed claim")
	}},
	{"Renew/after Complete it changes nothing", func(ctx context.Context, t *testing.T, h Harness, s idempotency.Store) {
		key, c := UniqueKey(t), claim("x")
		hold(ctx, t, s, key, c, time.Minute)
		done := completed(c, 201, "done")
		require.NoError(t, s.Complete(ctx, key, done, time.Hour))
		require.NoError(t, s.Renew(ctx, key, c, time.Minute), "a late renewal of a finished claim")
		assert.Equal(t, done, live(ctx, t, s, key))
	}},
	{"Renew/a claim the store lost is stored again", func(ctx context.Context, t *testing.T, h Harness, s idempotency.Store) {
		key, c := UniqueKey(t), claim("x")
		require.NoError(t, s.Renew(ctx, key, c, time.Minute))
		assert.Equal(t, c, live(ctx, t, s, key))
	}},
	{"Renew/over another holder's expired claim or record stores the caller's claim", func(ctx context.Context, t *testing.T, h Harness, s idempotency.Store) {
		claimed, done, _ := expired(ctx, t, h, s)
		for _, key := range []idempotency.Key{claimed, done} {
			b := claim("y")
			require.NoError(t, s.Renew(ctx, key, b, time.Minute), "nobody holds %v", key)
			assert.Equal(t, b, live(ctx, t, s, key), "the renewer holds %v, not the expired holder", key)
			c := claim("y")
			got, err := s.Claim(ctx, key, c, time.Minute)
			require.NoError(t, err)
			assert.NotNil(t, got, "a third request does not win %v as well", key)
			assert.ErrorIs(t, s.Renew(ctx, key, c, time.Minute), idempotency.ErrClaimLost)
		}
	}},
	{"Expiry/an expired claim or record frees the key", func(ctx context.Context, t *testing.T, h Harness, s idempotency.Store) {
		claimed, done, c1 := expired(ctx, t, h, s)
		hold(ctx, t, s, claimed, claim("x"), time.Minute) // expired: the key is free again
		hold(ctx, t, s, done, claim("x"), time.Minute)
		assert.ErrorIs(t, s.Complete(ctx, claimed, completed(c1, 201, "late"), time.Hour), idempotency.ErrClaimLost,
			"the first holder, late, cannot overwrite the new claim")
	}},
	{"Cancelled context fails and stores nothing", func(ctx context.Context, t *testing.T, h Harness, s idempotency.Store) {
		dead, cancel := context.WithCancel(ctx)
		cancel()
		key := UniqueKey(t)
		_, err := s.Claim(dead, key, claim("x"), time.Minute)
		assert.Error(t, err)
		hold(ctx, t, s, key, claim("x"), time.Minute) // the cancelled Claim stored nothing
	}},

	// Through the middleware.
	{"Middleware/100 concurrent requests with one key execute once", func(ctx context.Context, t *testing.T, h Harness, s idempotency.Store) {
		api := newAPI(t, s, idempotency.Config{}, 2*time.Millisecond)
		key := UniqueKey(t)
		const n = 100
		codes := make(chan *httptest.ResponseRecorder, n)
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() { codes <- api.post(key, `{"amount":100}`) })
		}
		wg.Wait()
		close(codes)
		var created, replayed, conflict int
		for rec := range codes {
			switch {
			case rec.Code == http.StatusCreated && rec.Header().Get(idempotency.HeaderReplayed) == "true":
				replayed++
			case rec.Code == http.StatusCreated:
				created++
			case rec.Code == http.StatusConflict:
				conflict++
				assert.Equal(t, "1", rec.Header().Get("Retry-After"))
			default:
				assert.Failf(t, "unexpected answer", "%d %s", rec.Code, rec.Body)
			}
		}
		assert.Equal(t, int64(1), api.executions.Load(), "executions")
		assert.Equal(t, 1, created, "one answer from the handler itself")
		assert.Equal(t, n, created+replayed+conflict, "created %d + replayed %d + conflict %d", created, replayed, conflict)
		t.Logf("created %d, replayed %d, conflict %d", created, replayed, conflict)
	}},
	{"Middleware/same key, different body is 422", func(ctx context.Context, t *testing.T, h Harness, s idempotency.Store) {
		api := newAPI(t, s, idempotency.Config{}, 0)
		key := UniqueKey(t)
		require.Equal(t, http.StatusCreated, api.post(key, `{"amount":100}`).Code)
		rec := api.post(key, `{"amount":999}`)
		assert.Equal(t, http.StatusUnprocessableEntity, rec.Code)
		assert.Equal(t, idempotency.ProblemContentType, rec.Header().Get("Content-Type"))
		assert.Contains(t, rec.Body.String(), "Idempotency-Key is already used")
		assert.Equal(t, int64(1), api.executions.Load())
	}},
	{"Middleware/replay is byte-identical and drops hop-by-hop headers", func(ctx context.Context, t *testing.T, h Harness, s idempotency.Store) {
		api := newAPI(t, s, idempotency.Config{}, 0)
		key := UniqueKey(t)
		first := api.post(key, `{"amount":100}`)
		require.Equal(t, http.StatusCreated, first.Code)
		assert.Equal(t, "x-private", first.Header().Get("Connection"), "the first answer is the handler's own")
		for range 2 {
			again := api.post(key, `{"amount":100}`)
			assert.Equal(t, first.Code, again.Code)
			assert.Equal(t, first.Body.Bytes(), again.Body.Bytes(), "body byte for byte")
			want := first.Header().Clone()
			for _, hop := range []string{"Connection", "X-Private", "Keep-Alive"} {
				want.Del(hop)
			}
			want.Set(idempotency.HeaderReplayed, "true")
			assert.Equal(t, want, again.Header())
		}
		assert.Equal(t, int64(1), api.executions.Load())
	}},
	{"Middleware/a panic frees the key: the retry executes once more", func(ctx context.Context, t *testing.T, h Harness, s idempotency.Store) {
		api := newAPI(t, s, idempotency.Config{}, 0)
		api.panics.Store(1)
		key := UniqueKey(t)
		assert.Panics(t, func() { api.post(key, `{"amount":100}`) }, "the panic reaches net/http")
		assert.Equal(t, http.StatusCreated, api.post(key, `{"amount":100}`).Code, "the retry runs")
		replay := api.post(key, `{"amount":100}`)
		assert.Equal(t, http.StatusCreated, replay.Code)
		assert.Equal(t, "true", replay.Header().Get(idempotency.HeaderReplayed))
		assert.Equal(t, int64(2), api.executions.Load(), "the panicking run and the retry")
	}},
	{"Middleware/a 5xx is not recorded: the retry executes", func(ctx context.Context, t *testing.T, h Harness, s idempotency.Store) {
		api := newAPI(t, s, idempotency.Config{}, 0)
		api.failures.Store(1)
		key := UniqueKey(t)
		rec := api.post(key, `{"amount":100}`)
		assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
		assert.Empty(t, rec.Header().Get(idempotency.HeaderReplayed))
		assert.Equal(t, http.StatusCreated, api.post(key, `{"amount":100}`).Code)
		assert.Equal(t, "true", api.post(key, `{"amount":100}`).Header().Get(idempotency.HeaderReplayed))
		assert.Equal(t, int64(2), api.executions.Load())
	}},
	{"Middleware/after RecordTTL the key executes again", func(ctx context.Context, t *testing.T, h Harness, s idempotency.Store) {
		api := newAPI(t, s, idempotency.Config{RecordTTL: h.Unit}, 0)
		key := UniqueKey(t)
		require.Equal(t, http.StatusCreated, api.post(key, `{"amount":100}`).Code)
		time.Sleep(2 * h.Unit)
		rec := api.post(key, `{"amount":999}`)
		assert.Equal(t, http.StatusCreated, rec.Code, "expired: even another body is a new request")
		assert.Empty(t, rec.Header().Get(idempotency.HeaderReplayed))
		assert.Equal(t, int64(2), api.executions.Load())
	}},
	{"Middleware/a handler that outlives ClaimTTL keeps its claim", func(ctx context.Context, t *testing.T, h Harness, s idempotency.Store) {
		claimTTL := 3 * h.Unit
		api := newAPI(t, s, idempotency.Config{ClaimTTL: claimTTL}, claimTTL+2*h.Unit)
		key := UniqueKey(t)
		first := make(chan *httptest.ResponseRecorder, 1)
		go func() { first <- api.post(key, `{"amount":100}`) }()
		time.Sleep(claimTTL + h.Unit/2) // past the first claim's TTL, while the handler runs
		rec := api.post(key, `{"amount":100}`)
		assert.Equal(t, http.StatusConflict, rec.Code, "still in progress, not claimable: %s", rec.Body)
		select {
		case rec := <-first:
			assert.Equal(t, http.StatusCreated, rec.Code)
		case <-ctx.Done():
			require.FailNow(t, "the long request never answered")
		}
		assert.Equal(t, "true", api.post(key, `{"amount":100}`).Header().Get(idempotency.HeaderReplayed))
		assert.Equal(t, int64(1), api.executions.Load())
	}},
}

// api is a payment-like handler behind the middleware that counts its runs.
type api struct {
	h                http.Handler
	executions       atomic.Int64
	panics, failures atomic.Int32 // the next n runs panic / answer 503
	work             time.Duration
}

func newAPI(t *testing.T, s idempotency.Store, cfg idempotency.Config, work time.Duration) *api {
	t.Helper()
	a := &api{work: work}
	cfg.Store = s
	cfg.Required = true
	mw, err := idempotency.New(cfg)
	require.NoError(t, err)
	a.h = mw.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := a.executions.Add(1)
		body, _ := io.ReadAll(r.Body)
		time.Sleep(a.work)
		if a.panics.Add(-1) >= 0 {
			panic("handler bug")
		}
		if a.failures.Add(-1) >= 0 {
			http.Error(w, "database unavailable", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Transaction-Id", fmt.Sprintf("tx_%d", n))
		w.Header().Set("Connection", "x-private")
		w.Header().Set("X-Private", "hop-by-hop, named in Connection")
		w.Header().Set("Keep-Alive", "timeout=5")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"transaction_id":"tx_%d","request":%s}`, n, body)
	}))
	return a
}

func (a *api) post(key idempotency.Key, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/payments", strings.NewReader(body))
	req.Header.Set(idempotency.HeaderKey, key.ID)
	req.Header.Set(idempotency.HeaderTenant, key.Tenant)
	rec := httptest.NewRecorder()
	a.h.ServeHTTP(rec, req)
	return rec
}

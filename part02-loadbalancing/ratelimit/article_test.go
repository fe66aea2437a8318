package ratelimit

// The article's rate limiters, modelled: each test below rebuilds one
// behaviour of the article's code (its locking, its key, its 429, its Redis
// script) in a few lines of this package's own, and asserts the wrong
// outcome the README's errata describe. The corrected code's tests sit beside
// them (named in each comment).

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"golang.org/x/time/rate"

	"github.com/sysdesign-masterclass/golang/internal/gocmd"
)

// Erratum 6: the article imports context and never uses it, and Go refuses
// to build a package with an unused import. testdata/unusedimport has that
// import block.
func TestArticleRateLimiterDoesNotCompile(t *testing.T) {
	dir := gocmd.Module(t, filepath.Join("testdata", "unusedimport"), "example.com/ratelimit")
	out, err := gocmd.Run(t, dir, "build", "./...")
	require.Error(t, err)
	assert.Contains(t, out, `"context" imported and not used`)
}

// Erratum 7: lastSeen is written after RUnlock, with no lock held, while
// other requests of the same client write it too: go test -race reports the
// race. testdata/lastseenrace has the article's locking around a lastSeen
// field, and four goroutines of one client. (TestConcurrentUseIsRaceFree is
// this package's limiter under -race.)
func TestArticleLastSeenIsADataRace(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a module with -race")
	}
	dir := gocmd.Module(t, filepath.Join("testdata", "lastseenrace"), "example.com/lastseen")
	out, err := gocmd.Run(t, dir, "test", "-race", "-count=1", ".")
	require.Error(t, err, out)
	assert.Contains(t, out, "WARNING: DATA RACE")
	assert.Regexp(t, `(?s)Write at .*lastseen\.\(\*Limiter\)\.Seen\(\)`, out)
}

// articleMap is the article's getLimiter: look up under the read lock, and
// on a miss create under the write lock without looking again. afterMiss,
// if set, runs between the two locks (where a concurrent request can be).
type articleMap struct {
	mu        sync.RWMutex
	clients   map[string]*rate.Limiter
	r         rate.Limit
	burst     int
	afterMiss func()
}

func (a *articleMap) get(key string) *rate.Limiter {
	a.mu.RLock()
	lim, ok := a.clients[key]
	a.mu.RUnlock()
	if ok {
		return lim
	}
	if a.afterMiss != nil {
		a.afterMiss()
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	lim = rate.NewLimiter(a.r, a.burst)
	a.clients[key] = lim // a bucket made meanwhile by another request is replaced
	return lim
}

// Erratum 8: two first requests of a new client that both miss under the
// read lock each make a bucket; the client gets two bursts. Here both
// requests are held between the locks until both have missed: with burst 3
// the client passes 6. (TestConcurrentFirstRequestsShareOneBucket: this
// package's limiter looks again under the write lock, exactly 3.)
func TestArticleFirstRequestsGetTwoBuckets(t *testing.T) {
	var missed sync.WaitGroup
	missed.Add(2)
	a := &articleMap{clients: map[string]*rate.Limiter{}, r: rate.Every(time.Hour), burst: 3,
		afterMiss: func() { missed.Done(); missed.Wait() }}
	passed := make(chan int, 2)
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			lim, n := a.get("203.0.113.7"), 0
			for range 3 {
				if lim.Allow() {
					n++
				}
			}
			passed <- n
		})
	}
	wg.Wait()
	close(passed)
	total := 0
	for n := range passed {
		total += n
	}
	assert.Equal(t, 6, total, "burst 3, one client, two buckets")
}

// articleKey is the article's client key: X-Forwarded-For as the client
// wrote it, else RemoteAddr, which carries the source port.
func articleKey(r *http.Request) string {
	if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
		return xff
	}
	return r.RemoteAddr
}

// Erratum 9: with the article's key, a client that writes a new
// X-Forwarded-For on each request, or opens a new connection (a new source
// port) for each, is a new client every time: 50 of 50 pass a burst of 2.
// This package's key, the peer address without its port, passes 2.
// (TestSpoofedForwardedForNeverChangesTheKey, TestNewConnectionIsTheSameClient.)
func TestArticleKeyIsSpoofable(t *testing.T) {
	passed := func(key func(*http.Request) string, vary func(*http.Request, int)) int {
		pc, err := NewPerClient(PerClientConfig{Rate: 0.01, Burst: 2})
		require.NoError(t, err)
		defer pc.Close()
		h := (&Middleware{Limiter: pc, Key: key}).Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
		n := 0
		for i := range 50 {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = "203.0.113.7:40000"
			vary(r, i)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code == http.StatusOK {
				n++
			}
		}
		return n
	}
	spoof := func(r *http.Request, i int) { r.Header.Set("X-Forwarded-For", fmt.Sprintf("8.8.8.%d", i)) }
	newPort := func(r *http.Request, i int) { r.RemoteAddr = fmt.Sprintf("203.0.113.7:%d", 40000+i) }
	assert.Equal(t, 50, passed(articleKey, spoof), "a new X-Forwarded-For each time")
	assert.Equal(t, 50, passed(articleKey, newPort), "a new connection each time")
	assert.Equal(t, 2, passed(nil, spoof), "this package's key")
	assert.Equal(t, 2, passed(nil, newPort), "this package's key")
}

// articleSweeper is the article's cleanupLoop: a ticker at ttl/2 and a
// range over its channel, which nothing closes.
type articleSweeper struct{ ttl time.Duration }

func (a *articleSweeper) cleanupLoop() {
	ticker := time.NewTicker(a.ttl / 2)
	defer ticker.Stop()
	for range ticker.C { // the article's sweep; it never returns
	}
}

// Erratum 10: the sweeper goroutine never ends (one per limiter ever made,
// found by goleak), and a TTL of 0 panics it: time.NewTicker(0), in a
// goroutine, ends the process. (TestNewPerClientRejectsBadConfig and
// leakcheck in TestMain: this package's limiter stops its sweeper in Close
// and refuses such a TTL.)
func TestArticleSweeperLeaksAndPanics(t *testing.T) {
	go (&articleSweeper{ttl: 24 * time.Hour}).cleanupLoop() // TestMain ignores it: nothing can stop it
	assert.ErrorContains(t, goleak.Find(), "cleanupLoop", "the sweeper is still running")

	var got any
	func() {
		defer func() { got = recover() }()
		(&articleSweeper{ttl: 0}).cleanupLoop() // run here, where the panic can be caught
	}()
	assert.Equal(t, "non-positive interval for NewTicker", fmt.Sprint(got))
}

// articleReject is the article's 429: Retry-After always 1, the rate
// printed with %.0f as the limit, the JSON body through http.Error.
func articleReject(lim *rate.Limiter, r rate.Limit) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if !lim.Allow() {
			w.Header().Set("Retry-After", "1")
			w.Header().Set("X-RateLimit-Limit", fmt.Sprintf("%.0f", float64(r)))
			http.Error(w, `{"error":"rate_limit_exceeded"}`, http.StatusTooManyRequests)
		}
	})
}

// Erratum 11: at 0.5 requests per second the article's 429 says the limit
// is "0", calls its JSON body text/plain, and tells the client to retry
// after 1 s, when the next token is 2 s away: the retry gets another 429.
// (TestMiddleware429: this package's answer.)
func TestArticle429Answer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := articleReject(rate.NewLimiter(0.5, 1), 0.5)
		do := func() *httptest.ResponseRecorder {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
			return w
		}
		require.Equal(t, http.StatusOK, do().Code)
		got := do()
		require.Equal(t, http.StatusTooManyRequests, got.Code)
		assert.Equal(t, "0", got.Header().Get("X-RateLimit-Limit"))
		assert.Equal(t, "text/plain; charset=utf-8", got.Header().Get("Content-Type"))
		assert.Equal(t, "1", got.Header().Get("Retry-After"))
		time.Sleep(time.Second) // as Retry-After said
		assert.Equal(t, http.StatusTooManyRequests, do().Code, "the next token is 2 s away, not 1")
	})
}

// articleFixedWindow is the article's Redis limiter: INCR, then EXPIRE in
// whole seconds on the first hit, and true on any error.
var articleScript = redis.NewScript(`
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return n`)

func articleAllow(ctx context.Context, rdb redis.Scripter, key string, limit int64, window time.Duration) (bool, error) {
	n, err := articleScript.Run(ctx, rdb, []string{"ratelimit:" + key}, int64(window.Seconds())).Int64()
	if err != nil {
		return true, nil // the article's fail open: nobody hears of the error
	}
	return n <= limit, nil
}

// articleSubSecond sends 20 requests at once with the article's limiter,
// limit 2 per 500 ms, and returns how many passed.
func articleSubSecond(t *testing.T, rdb redis.Scripter, key string) int {
	t.Helper()
	passed := 0
	for range 20 {
		ok, err := articleAllow(t.Context(), rdb, key, 2, 500*time.Millisecond)
		require.NoError(t, err)
		if ok {
			passed++
		}
	}
	return passed
}

// Erratum 12: int64(window.Seconds()) makes a 500 ms window EXPIRE 0,
// which deletes the key at once: the count never passes 1 and 20 of 20
// requests pass a limit of 2. (TestFixedWindowOnASlowRedis and the other
// contract runs, subtest "sub-second window": this package's PEXPIRE; the
// same on the stack's Redis: TestArticleSubSecondWindowOnRedis.)
func TestArticleSubSecondWindowNeverLimits(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	assert.Equal(t, 20, articleSubSecond(t, rdb, "a"))
}

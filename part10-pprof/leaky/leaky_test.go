package leaky

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.VerifyTestMain(m) }

func serve(t *testing.T, cfg Config) (*Service, string) {
	t.Helper()
	s := New(cfg)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(func() { srv.Close(); s.Close() })
	return s, srv.URL
}

// held is a backend that answers fast queries at once and slow ones only
// once open is called: a slow query always times out, however late its
// handler runs (a backend that had answered would leave the handler's select
// a choice). Call open before the service's Close, which waits for them.
func held() (b Backend, open func()) {
	release := make(chan struct{})
	var once sync.Once
	return func(_ context.Context, q string) (Result, error) {
		if strings.HasPrefix(q, SlowQuery) {
			<-release
		}
		return Result{Query: q}, nil
	}, func() { once.Do(func() { close(release) }) }
}

func TestAnswers(t *testing.T) {
	for _, g := range []Goroutines{GoroutineFixed, GoroutineLeak, GoroutineArticleFix} {
		t.Run(g.String(), func(t *testing.T) {
			_, url := serve(t, Config{Goroutines: g, Timeout: 20 * time.Millisecond})
			c := &http.Client{Timeout: 30 * time.Second}
			code, err := get(t.Context(), c, url+"/api/search?q=shoes")
			require.NoError(t, err)
			assert.Equal(t, http.StatusOK, code)
			code, err = get(t.Context(), c, url+"/api/search?q="+SlowQuery+"shoes")
			require.NoError(t, err)
			assert.Equal(t, http.StatusGatewayTimeout, code)
			code, err = get(t.Context(), c, url+"/debug/pprof/")
			require.NoError(t, err)
			assert.Equal(t, http.StatusNotFound, code, "the service's mux has no pprof")
		})
	}
}

// Drive's tally: slow queries time out, the rest are answered; the leaky
// service keeps a goroutine per timeout and every URL in its audit Builder.
func TestLeaksGrowWithTheLoad(t *testing.T) {
	slow, open := held()
	defer open()
	s, url := serve(t, Config{Goroutines: GoroutineLeak, Heap: HeapLeak, Timeout: 20 * time.Millisecond, Backend: slow})
	tally, err := Drive(t.Context(), &http.Client{Timeout: 30 * time.Second}, url, Load{Requests: 200, Slow: 20, QueryBytes: 100})
	require.NoError(t, err)
	// 20 slow queries time out; on a loaded machine a fast one may too.
	assert.GreaterOrEqual(t, tally.TimedOut, int64(20), "the slow ones, spread evenly")
	assert.Equal(t, int64(200), tally.OK+tally.TimedOut)
	assert.Equal(t, int64(0), tally.Other)
	assert.Equal(t, int(tally.TimedOut), s.Leaked())
	assert.Greater(t, s.Audited(), 200*100, "every request's URL, kept")

	f, url := serve(t, Config{Timeout: 20 * time.Millisecond})
	_, err = Drive(t.Context(), &http.Client{Timeout: 30 * time.Second}, url, Load{Requests: 200, Slow: 20, QueryBytes: 100})
	require.NoError(t, err)
	assert.Zero(t, f.Leaked())
	assert.Zero(t, f.Audited())
}

func TestAuditFixedWritesEachLine(t *testing.T) {
	var b strings.Builder
	_, url := serve(t, Config{Audit: &b})
	_, err := get(t.Context(), http.DefaultClient, url+"/api/search?q=a%20b")
	require.NoError(t, err)
	assert.Equal(t, "GET /api/search?q=a%20b\n", b.String())
}

// Drive stops at its context's end and reports it.
func TestDriveStopsWithItsContext(t *testing.T) {
	_, url := serve(t, Config{})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	tally, err := Drive(ctx, http.DefaultClient, url, Load{Requests: 1000})
	assert.ErrorIs(t, err, context.Canceled)
	assert.Zero(t, tally.OK)
}

func TestSimulatedHeedsItsContext(t *testing.T) {
	b := Simulated(time.Hour)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
	defer cancel()
	_, err := b(ctx, SlowQuery+"x")
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	r, err := b(t.Context(), "fast")
	require.NoError(t, err)
	assert.Equal(t, "fast", r.Query)
}

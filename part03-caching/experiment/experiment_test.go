package experiment

import (
	"context"
	"fmt"
	"os"
	"testing"
	"testing/synctest"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.VerifyTestMain(m) }

// standIns connects to the in-process stand-ins (never the stack); inMemory serves
// miniredis over pipes so the test can run inside a synctest bubble.
func standIns(t *testing.T, inMemory bool) *Env {
	t.Helper()
	e, err := connect(context.Background(), false, inMemory)
	require.NoError(t, err)
	t.Cleanup(e.Close)
	require.False(t, e.RealRedis || e.RealPostgres, "the stand-ins used the stack")
	return e
}

// TestStampedeExperiment runs in a synctest bubble: the TTL, the trickle, the burst
// at expiry and every backend call follow the fake clock, so the counts do not
// depend on how busy the machine is.
func TestStampedeExperiment(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := standIns(t, true)
		cfg := StampedeConfig{Burst: 300, Trickle: 60, TTL: 300 * time.Millisecond, BackendLatency: 30 * time.Millisecond}
		rows, err := e.RunStampede(context.Background(), cfg, nil)
		require.NoError(t, err)
		calls := map[string]int64{}
		for _, r := range rows {
			t.Logf("%-36s backend calls %4d  Redis commands %5d  burst p50 %v", r.Name, r.BackendCalls, r.RedisCommands, r.BurstP50)
			assert.Zero(t, r.Errors, r.Name)
			assert.Equal(t, cfg.Burst+cfg.Trickle, r.Requests, r.Name)
			calls[r.Name] = r.BackendCalls
		}
		// Trickle requests all come before expiry, so none of them recompute; the
		// burst arrives after it.
		assert.Equal(t, int64(cfg.Burst), calls["plain TTL"], "plain TTL: every request of the burst recomputes")
		assert.Equal(t, int64(1), calls["singleflight"], "singleflight: the burst shares one recompute")
		assert.Equal(t, int64(1), calls["XFetch + singleflight"], "XFetch + singleflight")
		assert.GreaterOrEqual(t, calls["XFetch"], int64(1), "XFetch refreshes before expiry")
		assert.Equal(t, int64(1), calls["tiered: L1 + L2, both 300ms"], "tiered, like for like: L1 expires with L2, one fill")
		assert.Equal(t, int64(4), calls["4 pods, singleflight each"], "one recompute per pod")
		assert.Equal(t, int64(1), calls["4 pods, singleflight + Redis lock"], "the lock makes it one for all pods")
	})
}

// TestShopeeExperiment runs in a synctest bubble: every L1 entry lives ≥ 0.9 s (10%
// jitter) and the spike lasts 0.2 s of fake time, so each pod fills once, however
// slowly the machine runs the 3,000 requests.
func TestShopeeExperiment(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := standIns(t, true)
		cfg := ShopeeConfig{Requests: 3000, Pods: 4, Spike: 200 * time.Millisecond, L1TTL: time.Second, Workers: 64}
		res, err := e.RunShopee(context.Background(), cfg)
		require.NoError(t, err)
		assert.Equal(t, int64(cfg.Requests), res.Baseline.GETs, "baseline: one GET per request")
		assert.Equal(t, int64(cfg.Pods), res.Tiered.GETs, "tiered: one GET per pod")
		assert.GreaterOrEqual(t, res.NoSF.GETs, int64(cfg.Pods), "an L1 without singleflight: at least one GET per pod")
		assert.Zero(t, res.BackendCalls)
		assert.Zero(t, res.Baseline.Errors+res.NoSF.Errors+res.Tiered.Errors)
		assert.Equal(t, 1-float64(cfg.Pods)/float64(cfg.Requests), res.Reduction)
		assert.InDelta(t, 0.9998, res.ArticleReduction, 1e-12, "the article's figure, from its own inputs")
	})
}

// TestShopeeL1ExpiresWithinASpike: a spike longer than the L1 TTL costs one more fill
// per pod per TTL (fake clock: exactly).
func TestShopeeL1ExpiresWithinASpike(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := standIns(t, true)
		cfg := ShopeeConfig{Requests: 1000, Pods: 2, Spike: 2500 * time.Millisecond, L1TTL: time.Second, Workers: 16}
		res, err := e.RunShopee(context.Background(), cfg)
		require.NoError(t, err)
		// Lifetimes are 0.9–1 s: 3 fills per pod over 2.5 s (at 0, ~1, ~2 s).
		assert.Equal(t, int64(3*cfg.Pods), res.Tiered.GETs)
	})
}

// TestRedisFailureEndsTheSection: the first Redis command that fails for a reason
// other than a miss ends the running section's context with a ServiceError.
func TestRedisFailureEndsTheSection(t *testing.T) {
	redis.SetLogger(quiet{}) // the failed dials below are the point, not news
	t.Cleanup(func() { redis.SetLogger(quiet{log: true}) })
	e := standIns(t, false)
	ctx, done := e.Section(context.Background())
	defer done()
	require.ErrorIs(t, e.Redis.Get(ctx, "absent").Err(), redis.Nil)
	require.NoError(t, ctx.Err(), "a miss must not end the section")
	e.mr.Close()
	require.Error(t, e.Redis.Set(ctx, "k", "v", 0).Err())
	<-ctx.Done()
	var se *ServiceError
	require.ErrorAs(t, context.Cause(ctx), &se)
	assert.Equal(t, "redis", string(se.Service))
	assert.False(t, se.Paused(), "a closed server is not a paused one")
	assert.Same(t, se, e.Failure())
}

// quiet mutes go-redis's logger (log: true restores output to stderr).
type quiet struct{ log bool }

func (q quiet) Printf(_ context.Context, format string, v ...any) {
	if q.log {
		fmt.Fprintf(os.Stderr, "redis: "+format+"\n", v...)
	}
}

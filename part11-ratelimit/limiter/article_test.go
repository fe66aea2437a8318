package limiter_test

// The article's in-process limiter: limiter.Sharded has the article's
// ShardedLimiter's design (the chapter keeps it as the baseline of its
// benchmarks); the quoted AllowN and the import blocks are modelled in
// testdata. Each test asserts a wrong outcome the README's errata describe;
// the corrected code's test is named beside it.

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/time/rate"

	"github.com/sysdesign-masterclass/golang/internal/gocmd"
	"github.com/sysdesign-masterclass/golang/part11-ratelimit/limiter"
	"github.com/sysdesign-masterclass/golang/part11-ratelimit/quota"
)

// Erratum 5: the ShardedLimiter never removes a key: 10,000 distinct keys
// (rotating IPv6 addresses, spoofed headers) leave 10,000 limiters, where
// Keyed with MaxKeys 100 holds 100 (TestFloodOfDistinctKeysIsBounded, and
// -mode memory for the heap). And NewShardedLimiter(0) builds a limiter
// whose first Allow divides by zero.
func TestArticleShardedLimiterNeverForgets(t *testing.T) {
	a := limiter.NewSharded(64)
	k, err := limiter.New(limiter.Config{Policy: quota.Policy{Limit: 1, Window: time.Hour}, MaxKeys: 100})
	require.NoError(t, err)
	for i := range 10_000 {
		key := fmt.Sprintf("2001:db8:%x::1", i)
		a.Allow(key, rate.Every(time.Hour), 1)
		_, err := k.Allow(t.Context(), key)
		require.NoError(t, err)
	}
	assert.Equal(t, 10_000, a.Len(), "the article's map keeps every key it has seen")
	assert.Equal(t, 100, k.Len())

	var got any
	func() {
		defer func() { got = recover() }()
		limiter.NewSharded(0).Allow("203.0.113.7", 1, 1)
	}()
	assert.Equal(t, "runtime error: integer divide by zero", fmt.Sprint(got))
}

// Allow(key, r, b) takes a rate and a burst on every call, and uses them
// only on a key's first call: afterwards the key's limiter keeps the first
// call's. A caller that passes a tier's limits (a free user upgraded to a
// plan with a burst of 100) is still held to the first call's burst of 1.
// Keyed takes its policy once, in New, and has no per-call arguments to
// ignore.
func TestArticleLaterRatesAreIgnored(t *testing.T) {
	a := limiter.NewSharded(64)
	require.True(t, a.Allow("user-1", rate.Every(time.Hour), 1), "the first call: burst 1")
	assert.False(t, a.Allow("user-1", rate.Inf, 100), "asked with rate.Inf and burst 100: refused, the first call's limiter decides")
}

// The article quotes rate.Limiter.AllowN as taking lim.mu and then calling
// reserveN. reserveN takes lim.mu itself (as in x/time/rate), and sync.Mutex
// is not reentrant: as quoted, AllowN never returns. testdata/quotedallown
// has that locking; go run dies with the runtime's deadlock report. In
// x/time/rate, AllowN only calls reserveN, and the lock is taken once.
func TestArticleQuotedAllowNDeadlocks(t *testing.T) {
	dir := gocmd.Module(t, filepath.Join("testdata", "quotedallown"), "example.com/quotedallown")
	out, err := gocmd.Run(t, dir, "run", ".")
	require.Error(t, err)
	assert.Contains(t, out, "fatal error: all goroutines are asleep - deadlock!")
	assert.NotContains(t, out, "first check:", "the first AllowN never returned")
}

// Erratum 1: neither snippet compiles. The limiter imports time and the
// middleware context, and neither uses it. testdata/unusedimports has the
// two import blocks.
func TestArticleSnippetsDoNotCompile(t *testing.T) {
	dir := gocmd.Module(t, filepath.Join("testdata", "unusedimports"), "example.com/ratelimit")
	out, err := gocmd.Run(t, dir, "build", "./...")
	require.Error(t, err)
	assert.Regexp(t, `limiter/limiter\.go:\d+:\d+: "time" imported and not used`, out)
	assert.Regexp(t, `middleware/middleware\.go:\d+:\d+: "context" imported and not used`, out)
}

package limiter_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/sysdesign-masterclass/golang/part11-ratelimit/limiter"
	"github.com/sysdesign-masterclass/golang/part11-ratelimit/quota"
)

// BenchmarkKeyedAllow is one check of a key already in the table: the hot
// path, which must not allocate.
func BenchmarkKeyedAllow(b *testing.B) {
	k := newKeyed(b, limiter.Config{MaxKeys: 1 << 16, Policy: quota.Policy{Limit: 1_000_000, Window: time.Hour}})
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = "203.0.113." + strconv.Itoa(i)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		_, _ = k.Allow(b.Context(), keys[i&1023])
	}
}

// BenchmarkLeakyReserve is one non-blocking admission check.
func BenchmarkLeakyReserve(b *testing.B) {
	l, err := limiter.NewLeaky(quota.Policy{Limit: 1_000_000, Window: time.Second}, time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		l.Reserve(now)
	}
}

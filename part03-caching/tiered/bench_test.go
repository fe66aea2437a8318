package tiered

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

func benchKeys() []string {
	k := make([]string, 1024)
	for i := range k {
		k[i] = fmt.Sprintf("product:%d", i)
	}
	return k
}

func BenchmarkLocalGetHit(b *testing.B) {
	l, _ := NewLocal[[]byte](LocalOptions{MaxEntries: 10_000, TTL: time.Hour})
	keys := benchKeys()
	for _, k := range keys {
		l.Set(k, []byte("v"))
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, ok := l.Get(keys[i&1023]); !ok {
			b.Fatal("miss")
		}
		i++
	}
}

func BenchmarkLocalSet(b *testing.B) {
	l, _ := NewLocal[[]byte](LocalOptions{MaxEntries: 512, TTL: time.Hour}) // half the keys: Set evicts
	keys := benchKeys()
	v := []byte("v")
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		l.Set(keys[i&1023], v)
		i++
	}
}

// BenchmarkCacheGetL1Hit is the whole Cache.Get on an L1 hit: no Redis round trip.
func BenchmarkCacheGetL1Hit(b *testing.B) {
	mr := miniredis.RunT(b)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer func() { _ = rdb.Close() }()
	ctx := context.Background()
	c, err := New(ctx, Options[[]byte]{
		Redis: rdb, Prefix: "bench:",
		Load: func(context.Context, string) ([]byte, error) { return []byte("v"), nil },
		L1:   LocalOptions{TTL: time.Hour},
	})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	keys := benchKeys()
	for _, k := range keys {
		if _, err := c.Get(ctx, k); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := c.Get(ctx, keys[i&1023]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

var clockSink int64

// BenchmarkClockNow and BenchmarkClockSince show why Local reads time.Since(epoch):
// time.Now reads the wall clock and the monotonic clock, time.Since only the latter.
func BenchmarkClockNow(b *testing.B) {
	for b.Loop() {
		clockSink += time.Now().UnixNano()
	}
}

func BenchmarkClockSince(b *testing.B) {
	for b.Loop() {
		clockSink += int64(time.Since(epoch))
	}
}

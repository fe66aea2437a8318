// Package part03bench compares chapter 3's hot paths with the anchor libraries on the
// same keys and values, in one process:
//
//   - the L1 hit (part03-caching/tiered.Local.Get, on its coarse clock and with
//     ExactClock) against a map behind a sync.RWMutex (no TTL, no bound: the floor),
//     ristretto v2's Get and go-redis/cache v9's local cache (cache.NewTinyLFU, and
//     cache.Cache.Get on top of it, which also unmarshals);
//
//   - singleflight overhead per call: a direct call, x/sync/singleflight Do and
//     DoChan, groupcache's singleflight, and stampede.Group.Do (its fast path with no
//     timeout and an uncancellable ctx, and DoChan + timer + ctx otherwise).
//
// Contenders are sub-benchmarks keyed impl=NAME (impl=ours is this project's).
//
//	cd bench && go test -run '^$' -bench . -benchmem -count 5 ./part03/...
package part03bench

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dgraph-io/ristretto/v2"
	gocache "github.com/go-redis/cache/v9"

	"github.com/sysdesign-masterclass/golang/part03-caching/tiered"
)

const numKeys = 1024 // a power of two: the loop picks keys[i&mask]

func keys() []string {
	k := make([]string, numKeys)
	for i := range k {
		k[i] = fmt.Sprintf("product:%d", i)
	}
	return k
}

var value = make([]byte, 64)

// l1 is one local cache under test: get reports a hit.
type l1 struct {
	name string
	get  func(key string) bool
}

func caches(b *testing.B, ks []string) []l1 {
	b.Helper()
	ours, err := tiered.NewLocal[[]byte](tiered.LocalOptions{MaxEntries: 10_000, TTL: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(ours.Close)
	exact, err := tiered.NewLocal[[]byte](tiered.LocalOptions{MaxEntries: 10_000, TTL: time.Hour, ExactClock: true})
	if err != nil {
		b.Fatal(err)
	}
	rc, err := ristretto.NewCache(&ristretto.Config[string, []byte]{NumCounters: 100_000, MaxCost: 10_000, BufferItems: 64, IgnoreInternalCost: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(rc.Close)
	tiny := gocache.NewTinyLFU(10_000, time.Hour)
	gc := gocache.New(&gocache.Options{LocalCache: gocache.NewTinyLFU(10_000, time.Hour)})
	ctx := context.Background()
	for _, k := range ks {
		ours.Set(k, value)
		exact.Set(k, value)
		for !rc.SetWithTTL(k, value, 1, time.Hour) { // a Set can be dropped under contention: retry
		}
		tiny.Set(k, value)
		if err := gc.Set(&gocache.Item{Ctx: ctx, Key: k, Value: value}); err != nil {
			b.Fatal(err)
		}
	}
	rc.Wait()
	bare := &rwMap{m: make(map[string][]byte, len(ks))}
	for _, k := range ks {
		bare.m[k] = value
	}
	all := []l1{
		{"impl=ours", func(k string) bool { _, ok := ours.Get(k); return ok }},
		{"impl=ours.exact-clock", func(k string) bool { _, ok := exact.Get(k); return ok }},
		{"impl=rwmutex-map", func(k string) bool { _, ok := bare.get(k); return ok }},
		{"impl=ristretto", func(k string) bool { _, ok := rc.Get(k); return ok }},
		{"impl=go-redis-cache.TinyLFU", func(k string) bool { _, ok := tiny.Get(k); return ok }},
		{"impl=go-redis-cache.Cache", func(k string) bool { var v []byte; return gc.Get(ctx, k, &v) == nil }},
	}
	for _, c := range all { // every cache must really hit, or the benchmark measures misses
		for _, k := range ks {
			if !c.get(k) {
				b.Fatalf("%s: miss on %s after fill", c.name, k)
			}
		}
	}
	return all
}

// rwMap is what a reader would write first: one map behind one sync.RWMutex, no
// TTL, no bound, no eviction. It is the floor a real L1 pays its features on top of.
type rwMap struct {
	mu sync.RWMutex
	m  map[string][]byte
}

func (c *rwMap) get(k string) ([]byte, bool) {
	c.mu.RLock()
	v, ok := c.m[k]
	c.mu.RUnlock()
	return v, ok
}

// BenchmarkL1Hit reads keys already cached, one goroutine.
func BenchmarkL1Hit(b *testing.B) {
	ks := keys()
	for _, c := range caches(b, ks) {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if !c.get(ks[i&(numKeys-1)]) {
					b.Fatal("miss")
				}
				i++
			}
		})
	}
}

// BenchmarkL1HitParallel reads keys already cached from GOMAXPROCS goroutines.
func BenchmarkL1HitParallel(b *testing.B) {
	ks := keys()
	for _, c := range caches(b, ks) {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					if !c.get(ks[i&(numKeys-1)]) {
						b.Error("miss")
						return
					}
					i++
				}
			})
		})
	}
}

// BenchmarkL1HitOneHotKey is the flash-sale shape: every goroutine reads one key.
func BenchmarkL1HitOneHotKey(b *testing.B) {
	ks := keys()
	for _, c := range caches(b, ks) {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if !c.get(ks[7]) {
						b.Error("miss")
						return
					}
				}
			})
		})
	}
}

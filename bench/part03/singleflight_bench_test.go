package part03bench

import (
	"context"
	"testing"
	"time"

	gcsf "github.com/golang/groupcache/singleflight"
	"golang.org/x/sync/singleflight"

	"github.com/sysdesign-masterclass/golang/part03-caching/stampede"
)

func fetchAny() (any, error)                { return 42, nil }
func fetchInt(context.Context) (int, error) { return 42, nil }
func fetchIface() (interface{}, error)      { return 42, nil }

// BenchmarkSingleflightOverhead is the cost a call pays for deduplication when it
// has nobody to share with (the common case: most calls are not concurrent misses).
func BenchmarkSingleflightOverhead(b *testing.B) {
	ctx := context.Background()
	b.Run("direct-call", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if v, _ := fetchInt(ctx); v != 42 {
				b.Fatal(v)
			}
		}
	})
	b.Run("x-sync-singleflight.Do", func(b *testing.B) {
		var g singleflight.Group
		b.ReportAllocs()
		for b.Loop() {
			if v, _, _ := g.Do("product:42", fetchAny); v != 42 {
				b.Fatal(v)
			}
		}
	})
	b.Run("x-sync-singleflight.DoChan", func(b *testing.B) {
		var g singleflight.Group
		b.ReportAllocs()
		for b.Loop() {
			if r := <-g.DoChan("product:42", fetchAny); r.Val != 42 {
				b.Fatal(r.Val)
			}
		}
	})
	b.Run("groupcache-singleflight.Do", func(b *testing.B) {
		var g gcsf.Group
		b.ReportAllocs()
		for b.Loop() {
			if v, _ := g.Do("product:42", fetchIface); v != 42 {
				b.Fatal(v)
			}
		}
	})
	b.Run("part03-stampede.Group.Do-timeout", func(b *testing.B) {
		var g stampede.Group[int]
		b.ReportAllocs()
		for b.Loop() {
			if v, _ := g.Do(ctx, "product:42", time.Second, fetchInt); v != 42 {
				b.Fatal(v)
			}
		}
	})
	b.Run("part03-stampede.Group.Do-no-timeout", func(b *testing.B) {
		var g stampede.Group[int]
		b.ReportAllocs()
		for b.Loop() {
			if v, _ := g.Do(ctx, "product:42", 0, fetchInt); v != 42 {
				b.Fatal(v)
			}
		}
	})
}

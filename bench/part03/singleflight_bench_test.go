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

// BenchmarkSingleflight is the cost a call pays for deduplication when it has nobody
// to share with (the common case: most calls are not concurrent misses). The
// contenders are keyed impl=NAME: impl=ours is stampede.Group.Do on its fast path
// (no timeout, a ctx that cannot end), the comparison with x/sync's Do; the other
// ours.* rows price the ability to walk away (a cancellable ctx, a timeout).
func BenchmarkSingleflight(b *testing.B) {
	ctx := context.Background()
	b.Run("impl=direct-call", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if v, _ := fetchInt(ctx); v != 42 {
				b.Fatal(v)
			}
		}
	})
	b.Run("impl=x-sync", func(b *testing.B) {
		var g singleflight.Group
		b.ReportAllocs()
		for b.Loop() {
			if v, _, _ := g.Do("product:42", fetchAny); v != 42 {
				b.Fatal(v)
			}
		}
	})
	b.Run("impl=x-sync.DoChan", func(b *testing.B) {
		var g singleflight.Group
		b.ReportAllocs()
		for b.Loop() {
			if r := <-g.DoChan("product:42", fetchAny); r.Val != 42 {
				b.Fatal(r.Val)
			}
		}
	})
	b.Run("impl=groupcache", func(b *testing.B) {
		var g gcsf.Group
		b.ReportAllocs()
		for b.Loop() {
			if v, _ := g.Do("product:42", fetchIface); v != 42 {
				b.Fatal(v)
			}
		}
	})
	// ours with context.Background() and no timeout takes the fast path (x/sync Do);
	// a cancellable ctx or a timeout takes DoChan + select.
	cancellable, cancel := context.WithCancel(ctx)
	defer cancel()
	for _, c := range []struct {
		name    string
		ctx     context.Context
		timeout time.Duration
	}{
		{"impl=ours", ctx, 0},
		{"impl=ours.cancellable-ctx", cancellable, 0},
		{"impl=ours.timeout-1s", ctx, time.Second},
	} {
		b.Run(c.name, func(b *testing.B) {
			var g stampede.Group[int]
			b.ReportAllocs()
			for b.Loop() {
				if v, _ := g.Do(c.ctx, "product:42", c.timeout, fetchInt); v != 42 {
					b.Fatal(v)
				}
			}
		})
	}
}

package stampede

import (
	"context"
	"testing"
	"time"
)

func BenchmarkXFetchShouldRefresh(b *testing.B) {
	x := XFetch{}
	now := time.Now()
	expiry := now.Add(time.Second)
	b.ReportAllocs()
	for b.Loop() {
		x.ShouldRefresh(now, 50*time.Millisecond, expiry)
	}
}

// BenchmarkGroupDo is the per-call cost of deduplication when there is no one to
// share with (bench/part03 sets it beside x/sync/singleflight and a direct call).
func BenchmarkGroupDo(b *testing.B) {
	var g Group[int]
	ctx := context.Background()
	fetch := func(context.Context) (int, error) { return 1, nil }
	b.ReportAllocs()
	for b.Loop() {
		if _, err := g.Do(ctx, "k", time.Second, fetch); err != nil {
			b.Fatal(err)
		}
	}
}

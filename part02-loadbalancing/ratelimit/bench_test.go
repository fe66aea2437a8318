package ratelimit

import (
	"context"
	"strconv"
	"testing"
)

// BenchmarkPerClientAllow: one check for one of 10,000 known clients, from
// all cores at once (the read-locked path every request takes).
func BenchmarkPerClientAllow(b *testing.B) {
	l, err := NewPerClient(PerClientConfig{Rate: 1e6, Burst: 1e6})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	keys := make([]string, 10_000)
	for i := range keys {
		keys[i] = "198.51." + strconv.Itoa(i/250) + "." + strconv.Itoa(i%250)
		_, _ = l.Allow(context.Background(), keys[i])
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := l.Allow(context.Background(), keys[i%len(keys)]); err != nil {
				b.Error(err)
				return
			}
			i += 7
		}
	})
}

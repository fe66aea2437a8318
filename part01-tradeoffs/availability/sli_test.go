package availability

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestLatencies(t *testing.T) {
	t.Parallel()
	var ms []time.Duration
	for i := 1000; i >= 1; i-- { // unsorted on purpose: 1000 ms … 1 ms
		ms = append(ms, time.Duration(i)*time.Millisecond)
	}
	l := NewLatencies(ms)
	assert.Equal(t, 1000*time.Millisecond, ms[0], "NewLatencies sorts a copy")
	for _, tt := range []struct {
		q    float64
		want time.Duration
	}{
		{0.5, 500 * time.Millisecond},
		{0.99, 990 * time.Millisecond},
		{0.999, 999 * time.Millisecond}, // 0.999·1000 = 998.9999999999999 in float64
		{1, 1000 * time.Millisecond},
		{0, 1 * time.Millisecond},
		{-1, 1 * time.Millisecond},
		{2, 1000 * time.Millisecond},
		{0.0005, 1 * time.Millisecond},
		{0.9991, 1000 * time.Millisecond},
	} {
		assert.Equal(t, tt.want, l.Quantile(tt.q), "q=%v", tt.q)
	}
	assert.Equal(t, 149, l.Under(150*time.Millisecond), "strictly below: 150 ms itself is not < 150 ms")
	assert.Equal(t, 0, l.Under(time.Millisecond))
	assert.Equal(t, 1000, l.Under(time.Hour))
	assert.Zero(t, Latencies(nil).Quantile(0.99))
	assert.Zero(t, Latencies(nil).Under(time.Second))
}

// The p99 is a sample, and at least 99% of the samples do not exceed it while
// fewer than 99% lie below it: the definition, checked on small samples where
// rounding matters most.
func TestQuantileIsTheNearestRank(t *testing.T) {
	t.Parallel()
	for n := 1; n <= 300; n++ {
		var s []time.Duration
		for i := range n {
			s = append(s, time.Duration(i*7%n+1))
		}
		l := NewLatencies(s)
		for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
			p := l.Quantile(q)
			atMost := 0
			for _, x := range l {
				if x <= p {
					atMost++
				}
			}
			assert.GreaterOrEqual(t, float64(atMost), q*float64(n)-1e-9, "n=%d q=%v", n, q)
			assert.Less(t, float64(l.Under(p)), q*float64(n)-1e-9+1e-12, "n=%d q=%v: a smaller sample would do", n, q)
		}
	}
}

func TestMinReplicas(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name      string
		k         int
		a, target float64
		want      int
	}{
		// 10 nodes carry a 500k RPS peak at 50k each; nodes are up 99.9%.
		{"10 needed, 99.9%", 10, 0.999, 0.999, 11},
		{"10 needed, 99.99%", 10, 0.999, 0.9999, 11},
		{"10 needed, 99.999%", 10, 0.999, 0.99999, 12},
		{"1 needed is plain parallel", 1, 0.999, 0.999999, 2},
		{"perfect nodes need no spare", 5, 1, 1, 5},
		{"a target the k nodes already meet", 2, 0.9999, 0.999, 2},
		{"dead nodes never reach it", 1, 0, 0.5, 0},
		{"nodes down half the time, 2 of n", 2, 0.5, 0.99, 11},
		{"k < 1 needs nothing", 0, 0.5, 0.999, 0},
	} {
		n, got := MinReplicas(tt.k, tt.a, tt.target)
		assert.Equal(t, tt.want, n, tt.name)
		if n > 0 {
			assert.GreaterOrEqual(t, got, tt.target, tt.name)
			assert.InDelta(t, AtLeast(tt.k, repeat(tt.a, n)...), got, 1e-15, tt.name)
			if n > tt.k {
				assert.Less(t, AtLeast(tt.k, repeat(tt.a, n-1)...), tt.target, "%s: one fewer would do", tt.name)
			}
		}
	}
}

func repeat(a float64, n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = a
	}
	return out
}

// The article's SLI is a p99 per 1-minute window, not over a whole run: a run
// whose second minute is slow has a p99 over the run that is neither
// window's. Windows groups requests by start time.
func TestWindows(t *testing.T) {
	t.Parallel()
	var reqs []Timed
	for i := range 200 { // minute 0: 1 ms each; minute 1: 100 ms each
		took := time.Millisecond
		if i >= 100 {
			took = 100 * time.Millisecond
		}
		reqs = append(reqs, Timed{At: time.Duration(i) * 1200 * time.Millisecond / 2, Took: took})
	}
	ws := Windows(reqs, time.Minute)
	if assert.Len(t, ws, 2) {
		assert.Equal(t, time.Duration(0), ws[0].Start)
		assert.Equal(t, time.Minute, ws[1].Start)
		assert.Len(t, ws[0].Latencies, 100)
		assert.Equal(t, time.Millisecond, ws[0].Latencies.Quantile(0.99))
		assert.Equal(t, 100*time.Millisecond, ws[1].Latencies.Quantile(0.99))
	}
	whole := Windows(reqs, time.Hour)
	assert.Len(t, whole, 1, "a run shorter than the window is one window")
	assert.Equal(t, 100*time.Millisecond, whole[0].Latencies.Quantile(0.99))
	assert.Equal(t, time.Millisecond, whole[0].Latencies.Quantile(0.5))
	assert.Empty(t, Windows(nil, time.Minute))
	assert.Panics(t, func() { Windows(reqs, 0) })
}

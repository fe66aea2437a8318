package lfu

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/sysdesign-masterclass/golang/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.VerifyTestMain(m) }

func TestIncrProbability(t *testing.T) {
	for _, c := range []struct {
		counter, factor int
		want            float64
	}{
		{0, 10, 1}, {4, 10, 1}, {5, 10, 1}, {6, 10, 1.0 / 11}, {15, 10, 1.0 / 101}, {105, 10, 1.0 / 1001},
		{6, 1, 0.5}, {255, 10, 0}, {254, 0, 1},
	} {
		assert.InDelta(t, c.want, IncrProbability(c.counter, c.factor), 1e-15, "P(%d, factor %d)", c.counter, c.factor)
	}
}

// TestPredictMatchesRedisConfTable checks the model against the table in redis.conf
// (counter reached after N hits, by lfu-log-factor), measured by Redis's authors.
func TestPredictMatchesRedisConfTable(t *testing.T) {
	table := map[int]map[int]int{ // factor → hits → counter
		1:   {100: 18, 1000: 49, 100_000: 255},
		10:  {100: 10, 1000: 18, 100_000: 142, 1_000_000: 255},
		100: {100: 8, 1000: 11, 100_000: 49, 1_000_000: 143},
	}
	for factor, row := range table {
		var ns []int
		for n := range row {
			ns = append(ns, n)
		}
		pred := Predict(ns, factor)
		for n, want := range row {
			r := pred[n]
			assert.True(t, want >= r.Lo && want <= r.Hi, "factor %d, %d hits: redis.conf says %d, model range [%d, %d] (mean %.1f)", factor, n, want, r.Lo, r.Hi, r.Mean)
		}
	}
}

func TestExpectedAccessesIsTheSumOfWaits(t *testing.T) {
	// 5→6 takes 1 access, 6→7 takes 11, 7→8 takes 21 at factor 10.
	assert.Equal(t, 33.0, ExpectedAccesses(8, 10))
	assert.Zero(t, ExpectedAccesses(LFUInitVal, 10), "a new key needs no accesses to be at LFU_INIT_VAL")
}

// TestCounterGrowsWithTheSquareRootOfHits is the erratum on "Morris Counter
// (Logarithmic)": with P = 1/((c − 5)·f + 1), climbing from 5 to c takes
// Σ_{k<m} (k·f + 1) = f·m(m−1)/2 + m accesses (m = c − 5), so the counter grows like
// 5 + √(2N/f), the square root of the hit count N. A logarithmic (Morris) counter
// would grow like 5 + log₂N. redis.conf's own table lies on the square root: at factor
// 10, 100 hits → 10 (√ rule 9.5, log₂ rule 11.6), 1K → 18 (19.1; 15.0),
// 100K → 142 (146.4; 21.6).
func TestCounterGrowsWithTheSquareRootOfHits(t *testing.T) {
	for _, f := range []int{1, 10, 100} {
		for m := 0; m <= 250; m++ {
			want := float64(f)*float64(m*(m-1))/2 + float64(m)
			assert.InDelta(t, want, ExpectedAccesses(LFUInitVal+m, f), 1e-6*want, "factor %d, counter %d", f, LFUInitVal+m)
		}
	}
	for n, counter := range map[int]int{100: 10, 1000: 18, 100_000: 142} { // redis.conf, factor 10
		sqrtRule := LFUInitVal + math.Sqrt(2*float64(n)/10)
		assert.InDelta(t, float64(counter), sqrtRule, 0.05*sqrtRule+1, "%d hits: √ rule", n)
	}
	logRule := LFUInitVal + math.Log2(100_000)
	assert.Greater(t, 142-logRule, 100.0, "at 100K hits the counter is nowhere near a logarithm")
}

func TestInterleaveKeepsCountsAndPutsHotKeysLast(t *testing.T) {
	assert.Equal(t, []int{1, 3, 4, 1, 4, 1}, interleave([]int{3, 0, 1, 2}))
}

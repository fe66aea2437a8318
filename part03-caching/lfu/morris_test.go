package lfu

import (
	"math"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestIncrProbability(t *testing.T) {
	for _, c := range []struct {
		counter, factor int
		want            float64
	}{
		{0, 10, 1}, {4, 10, 1}, {5, 10, 1}, {6, 10, 1.0 / 11}, {15, 10, 1.0 / 101}, {105, 10, 1.0 / 1001},
		{6, 1, 0.5}, {255, 10, 0}, {254, 0, 1},
	} {
		if got := IncrProbability(c.counter, c.factor); math.Abs(got-c.want) > 1e-15 {
			t.Errorf("P(%d, factor %d) = %v, want %v", c.counter, c.factor, got, c.want)
		}
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
			if r := pred[n]; want < r.Lo || want > r.Hi {
				t.Errorf("factor %d, %d hits: redis.conf says %d, model range [%d, %d] (mean %.1f)", factor, n, want, r.Lo, r.Hi, r.Mean)
			}
		}
	}
}

func TestExpectedAccessesIsTheSumOfWaits(t *testing.T) {
	// 5→6 takes 1 access, 6→7 takes 11, 7→8 takes 21 at factor 10.
	if got := ExpectedAccesses(8, 10); got != 33 {
		t.Fatalf("ExpectedAccesses(8, 10) = %v, want 33", got)
	}
	if ExpectedAccesses(LFUInitVal, 10) != 0 {
		t.Fatal("a new key needs no accesses to be at LFU_INIT_VAL")
	}
}

func TestInterleaveKeepsCountsAndPutsHotKeysLast(t *testing.T) {
	hits := []int{3, 0, 1, 2}
	order := interleave(hits)
	want := []int{1, 3, 4, 1, 4, 1}
	if len(order) != len(want) {
		t.Fatalf("order %v, want %v", order, want)
	}
	for i := range want {
		if order[i] != want[i] {
			t.Fatalf("order %v, want %v", order, want)
		}
	}
}

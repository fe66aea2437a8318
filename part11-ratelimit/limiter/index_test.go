package limiter

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The index agrees with a Go map through random puts and deletes, with
// hashes drawn from a few high halves so that probe runs collide, wrap
// around the array and are shifted back on delete; it grows, and shrinks
// when emptied.
func TestIndexAgreesWithAMap(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	x := newIndex()
	want := map[uint64]uint32{}
	hash := func() uint64 { return r.Uint64N(24)<<32 | r.Uint64N(6) } // 144 hashes over few homes
	for op := range 100_000 {
		h := hash()
		i, held := want[h]
		switch {
		case !held && r.IntN(2) == 0:
			x.put(h, uint32(op))
			want[h] = uint32(op)
		case held:
			require.False(t, x.del(h, i+1), "op %d: del with another slot", op)
			require.True(t, x.del(h, i), "op %d: del %x", op, h)
			delete(want, h)
		}
		if op%1000 == 0 {
			x.shrink()
		}
		require.Equal(t, len(want), x.n, "op %d", op)
		probe := hash()
		g, ok := x.get(probe)
		wi, wok := want[probe]
		require.Equal(t, wok, ok, "op %d: get %x", op, probe)
		require.Equal(t, wi, g, "op %d: get %x", op, probe)
	}
	for h, i := range want {
		g, ok := x.get(h)
		require.True(t, ok, "%x", h)
		assert.Equal(t, i, g, "%x", h)
	}
	for h := range want {
		require.True(t, x.del(h, want[h]))
	}
	assert.Zero(t, x.n)
	x.shrink()
	assert.Len(t, x.e, minIndex, "an emptied index shrinks back")
}

// divmod is debt / interval and debt % interval exactly, at both ends of
// its float64 range and past it.
func TestDivmodIsExact(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	intervals := []int64{1, 2, 3, 7, 1000, 3_600_000, 999_999_937, math.MaxInt64 / 3}
	for range 200 {
		intervals = append(intervals, 1+r.Int64N(1<<40))
	}
	for _, iv := range intervals {
		per := 1 / float64(iv)
		debts := []int64{0, 1, iv - 1, iv, iv + 1, 2*iv - 1, 1<<50 - 1, 1 << 50, 1<<62 + 12345}
		for range 200 {
			debts = append(debts, r.Int64N(1<<50), r.Int64N(1<<62))
			if m := (1<<50 - 1) / iv; m > 0 {
				q := r.Int64N(m)
				debts = append(debts, q*iv, q*iv-1, q*iv+1)
			}
		}
		for _, d := range debts {
			if d < 0 {
				continue
			}
			q, rem := divmod(d, iv, per)
			require.Equal(t, d/iv, q, "%d / %d", d, iv)
			require.Equal(t, d%iv, rem, "%d %% %d", d, iv)
		}
	}
}

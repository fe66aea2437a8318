package limiter

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The index agrees with a Go map through random puts and deletes, with
// hashes drawn from a few high halves so that probe runs collide and are
// shifted back on delete; it grows, and shrinks when emptied. Its homes
// are 0..23, so runs rarely reach the array's end: FuzzIndexAgreesWithAMap
// and TestIndexRandomSequences wrap them around it.
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

// checkIndex asserts the index's invariant: n counts the live entries, no
// hash is held twice, and every entry is reached from its home without
// crossing an empty one (the invariant backward-shift deletion keeps).
func checkIndex(t *testing.T, x *index, step string) {
	t.Helper()
	m := len(x.e) - 1
	live := 0
	seen := map[uint64]bool{}
	for p, e := range x.e {
		if e.i == 0 {
			continue
		}
		live++
		require.False(t, seen[e.h], "%s: hash %x held twice", step, e.h)
		seen[e.h] = true
		for q := x.home(e.h); q != p; q = (q + 1) & m {
			require.NotZero(t, x.e[q].i, "%s: entry %x at %d is cut off from its home %d by the empty %d", step, e.h, p, x.home(e.h), q)
		}
	}
	require.Equal(t, live, x.n, "%s: live entries", step)
}

// FuzzIndexAgreesWithAMap drives the index with puts, deletes (of the
// right slot and of a wrong one) and shrinks read from the input, against
// a Go map. Hashes are drawn from homes at both ends of the array (the
// high half near 0 and near 2^32, so runs wrap around its end) and the
// index is checked after every operation.
func FuzzIndexAgreesWithAMap(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	f.Add([]byte("\x00\xff\x01\xfe\x02\xfd\x03\xfc\x83\x84\x85\x86\x87\x00\xff"))
	r := rand.New(rand.NewPCG(5, 6))
	for range 8 {
		b := make([]byte, 512)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, ops []byte) {
		x := newIndex()
		want := map[uint64]uint32{}
		for n, op := range ops {
			// 16 hashes: 4 high halves (homes 0, 1 and the array's last
			// two, for any size) × 4 low halves, colliding and wrapping.
			hi := []uint64{0, 1, 1<<32 - 1, 1<<32 - 2}[op&3]
			h := hi<<32 | uint64(op>>2&3)
			i, held := want[h]
			step := fmt.Sprintf("op %d (%#x, hash %x)", n, op, h)
			switch {
			case op>>4 == 0xf:
				x.shrink()
			case held && op&0x80 != 0:
				require.False(t, x.del(h, i+1), "%s: del with another slot", step)
				require.True(t, x.del(h, i), "%s: del", step)
				delete(want, h)
			case !held:
				x.put(h, uint32(n))
				want[h] = uint32(n)
			default:
				require.False(t, x.del(h^1<<40, i), "%s: del of a hash not held", step)
			}
			checkIndex(t, &x, step)
			for h, i := range want {
				g, ok := x.get(h)
				require.True(t, ok, "%s: get %x", step, h)
				require.Equal(t, i, g, "%s: get %x", step, h)
			}
		}
	})
}

// The same, with many seeds and more distinct homes: random hashes whose
// high halves cluster at the array's end, so that runs wrap, grow the
// index past its minimum and shrink it back.
func TestIndexRandomSequences(t *testing.T) {
	for seed := range uint64(100) {
		r := rand.New(rand.NewPCG(seed, 7))
		x := newIndex()
		want := map[uint64]uint32{}
		keys := 1 + r.IntN(64)
		hash := func() uint64 {
			k := uint64(r.IntN(keys))
			return (1<<32-1-k%8)<<32 | k // 8 homes at the array's end, any size
		}
		for op := range 500 {
			h := hash()
			i, held := want[h]
			switch {
			case held:
				require.True(t, x.del(h, i), "seed %d op %d", seed, op)
				delete(want, h)
			case r.IntN(3) > 0:
				x.put(h, uint32(op))
				want[h] = uint32(op)
			}
			if r.IntN(50) == 0 {
				x.shrink()
			}
			checkIndex(t, &x, fmt.Sprintf("seed %d op %d", seed, op))
			g, ok := x.get(h)
			wi, wok := want[h]
			require.Equal(t, wok, ok, "seed %d op %d", seed, op)
			require.Equal(t, wi, g, "seed %d op %d", seed, op)
		}
	}
}

// FuzzDivmod: divmod against Go's / and % for any debt ≥ 0 and any
// interval a valid policy gives (1 ns to 744 h; Keyed's debts stay below
// 2^62), plus the int64 ends.
func FuzzDivmod(f *testing.F) {
	f.Add(int64(0), int64(1))
	f.Add(int64(1<<50-1), int64(3))
	f.Add(int64(1<<50), int64(7))
	f.Add(int64(math.MaxInt64), int64(744*3600e9))
	f.Add(int64(1<<53+1), int64(744*3600e9-1))
	f.Add(int64(999_999_999_999), int64(3_600_000))
	f.Fuzz(func(t *testing.T, debt, interval int64) {
		if debt < 0 || interval < 1 || interval > 744*3600e9 {
			return
		}
		q, r := divmod(debt, interval, 1/float64(interval))
		require.Equal(t, debt/interval, q, "%d / %d", debt, interval)
		require.Equal(t, debt%interval, r, "%d %% %d", debt, interval)
	})
}

package ring

import (
	"cmp"
	"fmt"
	"hash/crc32"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.VerifyTestMain(m) }

func names(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = "node-" + strconv.Itoa(i)
	}
	return out
}

func keys(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = "key:" + strconv.Itoa(i)
	}
	return out
}

func build(v int, h Hash, nodes ...string) *Ring {
	r := New(v, WithHash(h))
	for _, n := range nodes {
		r.AddNode(n)
	}
	return r
}

// tinyHash forces collisions: 64 possible points for hundreds of vnodes.
func tinyHash(s string) uint32 { return CRC32(s) & 63 }

// reference builds the snapshot the slow, obvious way: every point of every
// node, sorted by (hash, node name), and the bucket index by binary search.
func reference(r *Ring) *snapshot {
	cur := r.snap.Load()
	type pt struct {
		h    uint32
		node string
	}
	var all []pt
	for i, n := range cur.nodes {
		for v := range r.vnodes * int(cur.weights[i]) {
			all = append(all, pt{r.hash(fmt.Sprintf("%s#%d", n, v)), n})
		}
	}
	slices.SortFunc(all, func(a, b pt) int {
		return cmp.Or(cmp.Compare(a.h, b.h), cmp.Compare(a.node, b.node))
	})
	var points []uint64
	for _, p := range all {
		i, _ := slices.BinarySearch(cur.nodes, p.node)
		points = append(points, uint64(p.h)<<32|uint64(i))
	}
	return newSnapshot(points, slices.Clone(cur.nodes), slices.Clone(cur.weights))
}

func sameSnapshot(t *testing.T, got, want *snapshot) {
	t.Helper()
	require.Equal(t, want.nodes, got.nodes, "nodes")
	require.Equal(t, want.weights, got.weights, "weights")
	require.Equal(t, len(want.points), len(got.points), "number of points")
	require.True(t, slices.Equal(want.points, got.points), "points differ")
	require.True(t, slices.Equal(want.index, got.index), "index differs")
}

func TestHashesMatchTheirReferences(t *testing.T) {
	for _, s := range []string{"", "a", "key:42", "node-3#199", "{user:1001}:profile"} {
		assert.Equal(t, crc32.ChecksumIEEE([]byte(s)), CRC32(s), "CRC32(%q)", s)
		f := fnv.New32a()
		f.Write([]byte(s))
		assert.Equal(t, f.Sum32(), FNV1a(s), "FNV1a(%q)", s)
		assert.Equal(t, uint32(xxhash.Sum64String(s)), XXHash(s), "XXHash(%q)", s)
	}
}

// New's default is xxhash; the article's CRC32 ring is one option away.
func TestDefaultHashIsXXHash(t *testing.T) {
	def := New(50)
	for _, n := range names(5) {
		def.AddNode(n)
	}
	xx, crc := build(50, XXHash, names(5)...), build(50, CRC32, names(5)...)
	sameSnapshot(t, def.snap.Load(), xx.snap.Load())
	differ := 0
	for _, k := range keys(1000) {
		if xx.GetNode(k) != crc.GetNode(k) {
			differ++
		}
	}
	assert.Greater(t, differ, 500, "a CRC32 ring should place most keys elsewhere than the xxhash ring")
}

func TestEmptyRing(t *testing.T) {
	r := New(10)
	assert.Empty(t, r.GetNode("k"))
	assert.Nil(t, r.GetN("k", 3))
	r.RemoveNode("absent")
	assert.Zero(t, r.Len())
	assert.Zero(t, r.Points())
}

func TestNewPanicsOnVirtualNodesOutOfRange(t *testing.T) {
	assert.Panics(t, func() { New(0) })
	assert.Panics(t, func() { New(MaxPointsPerNode + 1) })
	assert.NotPanics(t, func() { New(1) })
}

// A weight whose point count overflows (or would allocate terabytes) is an
// error, and leaves the ring as it was.
func TestAddWeightedNodeRejectsHugeWeights(t *testing.T) {
	r := build(200, XXHash, "a")
	before := r.snap.Load()
	for _, w := range []int{math.MaxInt, math.MaxInt / 100, MaxPointsPerNode/200 + 1} {
		err := r.AddWeightedNode("big", w)
		require.ErrorIs(t, err, ErrTooManyPoints, "weight %d", w)
		assert.Same(t, before, r.snap.Load(), "a rejected weight changed the ring")
	}
	require.NoError(t, r.AddWeightedNode("big", MaxPointsPerNode/200/1000))
	assert.Equal(t, MaxPointsPerNode/200/1000, r.Weight("big"))
}

func TestAddAndRemoveAreIdempotent(t *testing.T) {
	ks := keys(2000)
	r := build(50, CRC32, names(4)...)
	before := r.snap.Load()
	owners := make([]string, len(ks))
	for i, k := range ks {
		owners[i] = r.GetNode(k)
	}

	r.AddNode("node-2") // already there
	assert.Same(t, before, r.snap.Load(), "re-adding a node published a new snapshot")
	assert.Equal(t, 4*50, r.Points())
	assert.Equal(t, 4, r.Len())
	r.RemoveNode("node-9") // never there
	assert.Same(t, before, r.snap.Load(), "removing an absent node published a new snapshot")

	r.RemoveNode("node-1")
	r.RemoveNode("node-1")
	require.Equal(t, 3, r.Len())
	require.Equal(t, 150, r.Points())
	require.Zero(t, r.Weight("node-1"))
	r.AddNode("node-1")
	r.AddNode("node-1")
	for i, k := range ks {
		require.Equal(t, owners[i], r.GetNode(k), "after remove+add, owner of %s", k)
	}
	sameSnapshot(t, r.snap.Load(), reference(r))
}

// The article's ring stores vnode points in a map, so when two points collide
// the node added last wins and removing either node deletes the other's point.
// Here the ring is a function of the node set: any insertion order, with or
// without removals on the way, gives the same points and the same owners.
func TestOrderIndependentEvenWithCollisions(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    Hash
		v    int
	}{{"crc32", CRC32, 100}, {"xxhash", XXHash, 100}, {"tiny-64-point-hash", tinyHash, 40}} {
		t.Run(tc.name, func(t *testing.T) {
			nodes := names(8)
			want := build(tc.v, tc.h, nodes...)
			require.Equal(t, 8*tc.v, want.Points(), "a collision lost a point")
			sameSnapshot(t, want.snap.Load(), reference(want))
			rng := rand.New(rand.NewPCG(1, 2))
			for trial := range 20 {
				order := slices.Clone(nodes)
				rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
				r := New(tc.v, WithHash(tc.h))
				for i, n := range order {
					r.AddNode(n)
					if trial%2 == 1 && i > 0 { // churn: drop and re-add an earlier node
						r.RemoveNode(order[i-1])
						r.AddNode("temp")
						r.AddNode(order[i-1])
						r.RemoveNode("temp")
					}
				}
				sameSnapshot(t, r.snap.Load(), want.snap.Load())
				for _, k := range keys(500) {
					require.Equal(t, want.GetNode(k), r.GetNode(k), "trial %d order %v: owner of %s", trial, order, k)
				}
			}
		})
	}
}

func TestCollisionsKeepEveryPointAndBreakTiesByName(t *testing.T) {
	r := build(40, tinyHash, "b", "a", "c")
	s := r.snap.Load()
	require.Len(t, s.points, 120)
	collisions := 0
	for i := 1; i < len(s.points); i++ {
		if s.points[i]>>32 == s.points[i-1]>>32 {
			collisions++
			require.GreaterOrEqual(t, s.owner(i), s.owner(i-1), "tie at %d not ordered by name", s.points[i]>>32)
		}
	}
	require.NotZero(t, collisions, "tiny hash produced no collisions; the test proves nothing")
	// Removing one node of a colliding pair leaves the other's point in place.
	r.RemoveNode("a")
	sameSnapshot(t, r.snap.Load(), reference(r))
	assert.Equal(t, 80, r.Points())
}

func TestIncrementalMatchesRebuildUnderRandomChurn(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, h := range []Hash{CRC32, XXHash, tinyHash} {
		r := New(30, WithHash(h))
		for range 300 {
			n := "n" + strconv.Itoa(rng.IntN(12))
			switch rng.IntN(3) {
			case 0:
				r.AddNode(n)
			case 1:
				r.RemoveNode(n)
			default:
				require.NoError(t, r.AddWeightedNode(n, rng.IntN(4)))
			}
			sameSnapshot(t, r.snap.Load(), reference(r))
		}
	}
}

// search uses a bucket index over the top bits of the hash; it must find
// exactly what a binary search over all points finds, for rings small and
// large (the index stops growing at 1<<16 buckets), at the edges of the hash
// space and of the buckets, and with many points in one bucket.
func TestIndexedSearchMatchesBinarySearch(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, tc := range []struct {
		name string
		h    Hash
		v, n int
	}{
		{"one point", XXHash, 1, 1},
		{"two points", XXHash, 1, 2},
		{"N=10 V=200", XXHash, 200, 10},
		{"N=10 V=200 crc32", CRC32, 200, 10},
		{"over 1<<16 points", XXHash, 7000, 10},
		{"64 distinct points", tinyHash, 50, 6},
		{"all points equal", func(string) uint32 { return 1 << 31 }, 3, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := build(tc.v, tc.h, names(tc.n)...).snap.Load()
			want := func(h uint32) int {
				i, _ := slices.BinarySearchFunc(s.points, h, func(p uint64, h uint32) int { return cmp.Compare(uint32(p>>32), h) })
				if i == len(s.points) {
					return 0
				}
				return i
			}
			probes := []uint32{0, 1, math.MaxUint32, math.MaxUint32 - 1, 1 << 31}
			for _, p := range s.points[:min(len(s.points), 500)] {
				h := uint32(p >> 32)
				probes = append(probes, h, h-1, h+1, h&^(1<<s.shift-1), h|(1<<s.shift-1))
			}
			for range 20_000 {
				probes = append(probes, rng.Uint32())
			}
			for _, h := range probes {
				require.Equal(t, want(h), s.search(h), "search(%#x) with shift %d", h, s.shift)
			}
		})
	}
}

func TestGetNReturnsDistinctNodesInRingOrder(t *testing.T) {
	nodes := names(6)
	r := build(100, CRC32, nodes...)
	for _, k := range keys(3000) {
		got := r.GetN(k, 3)
		require.Len(t, got, 3, "GetN(%s, 3)", k)
		require.Equal(t, r.GetNode(k), got[0], "GetN(%s)[0]", k)
		require.Len(t, slices.Compact(slices.Sorted(slices.Values(got))), 3, "GetN(%s, 3) = %v has duplicates", k, got)
		all := r.GetN(k, 10)
		require.Equal(t, got, all[:3], "GetN(%s, 10) must extend GetN(3)", k)
		require.Equal(t, nodes, slices.Sorted(slices.Values(all)), "GetN(%s, 10) returns every node", k)
	}
	assert.Nil(t, r.GetN("k", 0))
	assert.Nil(t, r.GetN("k", -1))
}

// The article's GetN loops `for len(result) < n` over points: when a node's
// only points were overwritten by another node's colliding points it can never
// be found, so GetN(key, N) spins forever holding the read lock. Here every
// point is kept, so even when all points collide GetN finds every node, in
// name order for a tie, and returns.
func TestGetNEndsWhenEveryPointCollides(t *testing.T) {
	for _, tc := range []struct {
		name  string
		h     Hash
		nodes []string
	}{
		{"every point at 42", func(string) uint32 { return 42 }, []string{"c", "a", "b"}},
		// crc32("node-8755d764#0") == crc32("node-4170cb18#0") == 0x795030b3:
		// the article's ring keeps one of the two points at V=1.
		{"crc32 pair at V=1", CRC32, []string{"node-8755d764", "node-4170cb18"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := build(1, tc.h, tc.nodes...)
			require.Equal(t, len(tc.nodes), r.Points(), "every colliding point is kept")
			done := make(chan []string, 1)
			go func() { done <- r.GetN("user:1001", len(tc.nodes)) }()
			select {
			case got := <-done:
				assert.Equal(t, slices.Sorted(slices.Values(tc.nodes)), got, "ties in name order")
			case <-time.After(10 * time.Second):
				require.FailNow(t, "GetN did not return within 10 s")
			}
			assert.Equal(t, slices.Min(tc.nodes), r.GetNode("anything"))
		})
	}
}

// With one point per node, GetN must walk past other points of nodes it
// already has: it counts physical nodes, not points.
func TestGetNWithCollidingPoints(t *testing.T) {
	r := build(5, tinyHash, names(5)...)
	for _, k := range keys(500) {
		got := r.GetN(k, 5)
		require.Len(t, slices.Compact(slices.Sorted(slices.Values(got))), 5, "GetN(%s, 5) = %v", k, got)
	}
}

func TestRemapFractionOnAddAndRemove(t *testing.T) {
	ks := keys(50_000)
	for _, h := range []struct {
		name string
		h    Hash
	}{{"crc32", CRC32}, {"xxhash", XXHash}} {
		t.Run(h.name, func(t *testing.T) {
			for _, n := range []int{3, 10} {
				before := build(200, h.h, names(n)...)
				after := build(200, h.h, names(n+1)...)
				newNode := names(n + 1)[n]
				moved := 0
				for _, k := range ks {
					a, b := before.GetNode(k), after.GetNode(k)
					if a != b {
						moved++
						require.Equal(t, newNode, b, "N=%d: %s moved from %s to another old node", n, k, a)
					}
				}
				frac, ideal := float64(moved)/float64(len(ks)), 1/float64(n+1)
				t.Logf("N=%d->%d: moved %.1f%% (ideal %.1f%%)", n, n+1, 100*frac, 100*ideal)
				assert.InDelta(t, ideal*1.05, frac, ideal*0.55, "N=%d->%d moved fraction", n, n+1)

				// Removing a node moves exactly the keys it owned.
				victim := names(n)[1]
				less := build(200, h.h, names(n)...)
				less.RemoveNode(victim)
				for _, k := range ks {
					a, b := before.GetNode(k), less.GetNode(k)
					require.Equal(t, a == victim, a != b, "remove %s: %s went %s -> %s", victim, k, a, b)
				}
			}
		})
	}
}

func TestWeightScalesShareAndReweightOnlyMovesToThatNode(t *testing.T) {
	ks := keys(60_000)
	r := build(100, XXHash, "a", "b", "c")
	before := make([]string, len(ks))
	for i, k := range ks {
		before[i] = r.GetNode(k)
	}
	require.NoError(t, r.AddWeightedNode("c", 3))
	require.Equal(t, 3, r.Weight("c"))
	require.Equal(t, 500, r.Points())
	count := map[string]int{}
	for i, k := range ks {
		n := r.GetNode(k)
		count[n]++
		if n != before[i] {
			require.Equal(t, "c", n, "raising c's weight moved %s from %s elsewhere", k, before[i])
		}
	}
	ratio := float64(count["c"]) / float64(count["a"]+count["b"]) * 2
	assert.InDelta(t, 3, ratio, 1, "weight-3 node's keys relative to a weight-1 node's (counts %v)", count)
	require.NoError(t, r.AddWeightedNode("c", 1))
	for i, k := range ks {
		require.Equal(t, before[i], r.GetNode(k), "weight back to 1: owner of %s", k)
	}
	require.NoError(t, r.AddWeightedNode("c", 0))
	assert.Equal(t, []string{"a", "b"}, r.Nodes(), "weight 0 removes c")
}

func TestGetNodeDoesNotAllocate(t *testing.T) {
	for _, h := range []Hash{XXHash, CRC32} {
		r := build(200, h, names(10)...)
		ks := keys(64)
		i := 0
		assert.Zero(t, testing.AllocsPerRun(1000, func() { _ = r.GetNode(ks[i%len(ks)]); i++ }))
	}
}

// Readers run while a writer keeps adding and removing nodes; run with -race.
// Every answer must be a node that was on the ring at some point, never "".
func TestConcurrentReadsDuringAddRemove(t *testing.T) {
	stable := names(5)
	r := build(50, CRC32, stable...)
	valid := map[string]bool{"churn-a": true, "churn-b": true}
	for _, n := range stable {
		valid[n] = true
	}
	var stop atomic.Bool
	var bad atomic.Value
	var wg sync.WaitGroup
	ks := keys(1000)
	for g := range 4 {
		wg.Go(func() {
			for i := g; !stop.Load(); i++ {
				k := ks[i%len(ks)]
				if n := r.GetNode(k); !valid[n] {
					bad.Store("GetNode=" + n)
				}
				if ns := r.GetN(k, 3); len(ns) != 3 || !valid[ns[2]] {
					bad.Store(fmt.Sprint("GetN=", ns))
				}
			}
		})
	}
	for i := range 300 {
		r.AddNode("churn-a")
		require.NoError(t, r.AddWeightedNode("churn-b", 1+i%3))
		r.RemoveNode("churn-a")
		r.RemoveNode("churn-b")
	}
	stop.Store(true)
	wg.Wait()
	assert.Nil(t, bad.Load(), "a reader saw a node that was never on the ring")
	assert.Equal(t, stable, r.Nodes())
}

func FuzzGetNode(f *testing.F) {
	for _, s := range []string{"", "key:1", "{user:1001}", "\x00\xff", "node-0#0", "user:1001:profile"} {
		f.Add(s, uint8(3))
	}
	f.Add("key:7", uint8(0))
	f.Add("key:9", uint8(255))
	f.Fuzz(func(t *testing.T, key string, n uint8) {
		nodes := names(int(n%7) + 1)
		for _, h := range []Hash{XXHash, CRC32} {
			fwd := build(20, h, nodes...)
			rev := New(20, WithHash(h))
			for _, node := range slices.Backward(nodes) {
				rev.AddNode(node)
			}
			got := fwd.GetNode(key)
			require.Contains(t, nodes, got)
			require.Equal(t, got, rev.GetNode(key), "forward and reversed insertion disagree on %q", key)
			all := fwd.GetN(key, len(nodes)+1)
			require.Len(t, all, len(nodes))
			require.Equal(t, got, all[0])
			// The key's owner is the owner of the first point at or after its hash.
			s := fwd.snap.Load()
			i, _ := slices.BinarySearchFunc(s.points, h(key), func(p uint64, h uint32) int { return cmp.Compare(uint32(p>>32), h) })
			if i == len(s.points) {
				i = 0
			}
			require.Equal(t, s.nodes[s.owner(i)], got, "GetNode(%q) is not the first point clockwise", key)
		}
	})
}

// Why CRC32 spreads a ring badly: CRC is linear over GF(2), so for vnode keys
// of equal length crc("node-3#i") ⊕ crc("node-0#i") is the same constant for
// every i. Each node's points are one XOR-translate of node-0's, not
// independent random points (the chapter README has the measured effect).
func TestCRC32VnodePointsAreXORTranslates(t *testing.T) {
	for _, node := range []string{"node-1", "node-3", "node-9"} {
		want := CRC32(node+"#10") ^ CRC32("node-0#10")
		for i := 10; i < 100; i++ {
			require.Equal(t, want, CRC32(node+"#"+strconv.Itoa(i))^CRC32("node-0#"+strconv.Itoa(i)), "%s#%d", node, i)
		}
		t.Logf("crc32(%s#i) = crc32(node-0#i) ^ %#08x for i in 10..99", node, want)
		assert.NotEqual(t, XXHash(node+"#10")^XXHash("node-0#10"), XXHash(node+"#11")^XXHash("node-0#11"),
			"xxhash shows the same structure for %s", node)
	}
}

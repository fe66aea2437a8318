package ring

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func bounded(t *testing.T, r *Ring, eps float64) *Bounded {
	t.Helper()
	b, err := NewBounded(r, eps)
	require.NoError(t, err)
	return b
}

func TestBoundedCapsEveryNode(t *testing.T) {
	ks := keys(20_000)
	for _, eps := range []float64{1e-9, 0.05, 0.25, 1} {
		b := bounded(t, build(50, CRC32, names(7)...), eps)
		for i, k := range ks {
			require.NotEmpty(t, b.Place(k), "eps %v: key %d not placed", eps, i)
		}
		loads := b.Loads()
		limit := int(math.Ceil((1 + eps) * float64(len(ks)) / 7))
		total, lo, hi := 0, len(ks), 0
		for _, l := range loads {
			total += l
			lo, hi = min(lo, l), max(hi, l)
		}
		require.Len(t, loads, 7)
		require.Equal(t, len(ks), total)
		assert.LessOrEqual(t, hi, limit, "eps %v: max load over the cap", eps)
		if eps < 1e-6 {
			assert.LessOrEqual(t, hi-lo, 2, "a tiny ε must balance almost perfectly: loads %v", loads)
		}
	}
}

// ε must be finite and > 0. An infinite ε used to be accepted, overflow the
// cap to a negative int and make Place panic ("every node is full").
func TestNewBoundedRejectsBadEpsilon(t *testing.T) {
	r := build(10, XXHash, names(3)...)
	for _, eps := range []float64{math.Inf(1), math.Inf(-1), math.NaN(), 0, -0.5} {
		b, err := NewBounded(r, eps)
		require.Error(t, err, "ε = %v", eps)
		assert.Contains(t, err.Error(), "finite and > 0")
		assert.Nil(t, b)
	}
}

// A huge but finite ε is no bound at all: every key goes where the ring puts
// it, and the cap cannot overflow.
func TestBoundedHugeEpsilonNeverBinds(t *testing.T) {
	r := build(200, XXHash, names(4)...)
	for _, eps := range []float64{10, 1e300, math.MaxFloat64} {
		b := bounded(t, r, eps)
		for _, k := range keys(5000) {
			require.Equal(t, r.GetNode(k), b.Place(k), "ε = %v: %s", eps, k)
		}
		assert.Equal(t, 5001, b.Capacity("node-0"), "ε = %v: cap is clamped to placed+1", eps)
	}
}

// A node's cap is proportional to its weight: a 3:1 weighted ring keeps its
// 75/25 split under bounded loads (with a cap equal for every node it split
// 62.5/37.5 at ε=0.25), and a tight ε holds each node to its own share.
func TestBoundedCapFollowsWeights(t *testing.T) {
	ks := keys(40_000)
	r := New(200)
	require.NoError(t, r.AddWeightedNode("big", 3))
	r.AddNode("small")
	for _, eps := range []float64{0.25, 0.02} {
		b := bounded(t, r, eps)
		for _, k := range ks {
			b.Place(k)
		}
		l := b.Loads()
		share := float64(l["big"]) / float64(len(ks))
		t.Logf("ε=%v: big %d, small %d (%.1f%% on the weight-3 node)", eps, l["big"], l["small"], 100*share)
		assert.InDelta(t, 0.75, share, 0.03, "ε=%v: the weight-3 node's share", eps)
		assert.LessOrEqual(t, l["big"], int(math.Ceil((1+eps)*float64(len(ks))*3/4)), "ε=%v: big over its cap", eps)
		assert.LessOrEqual(t, l["small"], int(math.Ceil((1+eps)*float64(len(ks))/4)), "ε=%v: small over its cap", eps)
		assert.InDelta(t, 3, float64(b.Capacity("big"))/float64(b.Capacity("small")), 0.01)
	}
}

// Without a binding cap, bounded loads place every key where the ring does.
func TestBoundedMatchesRingWhenCapNeverBinds(t *testing.T) {
	r := build(200, XXHash, names(4)...)
	b := bounded(t, r, 10)
	for _, k := range keys(5000) {
		require.Equal(t, r.GetNode(k), b.Place(k), k)
	}
}

// A full node sends the key on clockwise: to the first node after it in ring
// order (GetN order) that has room, not to just any node with room.
func TestBoundedOverflowWalksClockwise(t *testing.T) {
	r := build(1, XXHash, names(4)...)
	for _, k := range keys(50) {
		order := r.GetN(k, 4)
		b := bounded(t, r, 0.5)
		// 7 keys placed: the next key's cap is ceil(1.5·8/4) = 3. The first two
		// nodes clockwise from k are full, the third and fourth have room.
		b.load = map[string]int{order[0]: 3, order[1]: 3, order[2]: 1, order[3]: 0}
		require.Equal(t, 3, b.Capacity(order[0]))
		require.Equal(t, order[2], b.Place(k), "ring order %v", order)
		b.Remove(order[0])
		require.Equal(t, order[0], b.Place(k), "after Remove(%s)", order[0])
	}
}

func TestBoundedEmptyRing(t *testing.T) {
	b := bounded(t, New(10), 0.25)
	assert.Empty(t, b.Place("k"))
	assert.Zero(t, b.Capacity("k"))
	b.Remove("ghost") // no-op
	assert.Empty(t, b.Loads())
}

func TestJumpMovesOnlyToTheNewBucket(t *testing.T) {
	ks := keys(20_000)
	for n := 1; n < 12; n++ {
		moved := 0
		for _, k := range ks {
			a, b := JumpString(k, n), JumpString(k, n+1)
			require.True(t, a >= 0 && a < n, "JumpString(%s, %d) = %d", k, n, a)
			if a != b {
				moved++
				require.Equal(t, n, b, "%s moved %d -> %d growing %d -> %d buckets", k, a, b, n, n+1)
			}
		}
		frac, ideal := float64(moved)/float64(len(ks)), 1/float64(n+1)
		assert.InDelta(t, ideal, frac, 0.02, "%d -> %d buckets", n, n+1)
	}
	assert.Equal(t, -1, Jump(42, 0))
	assert.Equal(t, 0, Jump(42, 1))
}

// NewBounded says loads of nodes that left the ring are ignored: after a node
// leaves, the cap must follow the mean of the nodes still on the ring, not a
// mean inflated by keys counted on a node that is gone.
func TestBoundedCapIgnoresNodesThatLeft(t *testing.T) {
	const eps = 1e-9
	r := build(50, CRC32, names(4)...)
	b := bounded(t, r, eps)
	ks := keys(8000)
	for _, k := range ks[:4000] {
		b.Place(k)
	}
	r.RemoveNode("node-3") // its 1000 keys are gone with it; the caller re-places them elsewhere
	for _, k := range ks[4000:] {
		b.Place(k)
	}
	loads := b.Loads()
	onRing, hi := 0, 0
	for _, n := range r.Nodes() {
		onRing += loads[n]
		hi = max(hi, loads[n])
	}
	limit := int(math.Ceil((1 + eps) * float64(onRing) / float64(r.Len())))
	assert.LessOrEqual(t, hi, limit, "max load over the cap of the %d nodes on the ring (loads %v)", r.Len(), loads)
	want := int(math.Ceil((1 + eps) * float64(onRing+1) / float64(r.Len())))
	assert.Equal(t, want, b.Capacity("node-0"), "Capacity from the nodes on the ring")
	assert.Zero(t, b.Capacity("node-3"), "a node that left has no capacity")
}

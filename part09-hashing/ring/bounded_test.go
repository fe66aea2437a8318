package ring

import (
	"math"
	"testing"
)

func TestBoundedCapsEveryNode(t *testing.T) {
	ks := keys(20_000)
	for _, eps := range []float64{0, 0.05, 0.25, 1} {
		b := NewBounded(build(50, CRC32, names(7)...), eps)
		for i, k := range ks {
			if b.Place(k) == "" {
				t.Fatalf("eps %v: key %d not placed", eps, i)
			}
		}
		loads := b.Loads()
		limit := int(math.Ceil((1 + eps) * float64(len(ks)) / 7))
		total, lo, hi := 0, len(ks), 0
		for _, l := range loads {
			total += l
			lo, hi = min(lo, l), max(hi, l)
		}
		if total != len(ks) || len(loads) != 7 {
			t.Fatalf("eps %v: loads %v sum to %d over %d nodes", eps, loads, total, len(loads))
		}
		if hi > limit {
			t.Errorf("eps %v: max load %d over cap %d", eps, hi, limit)
		}
		if eps == 0 && hi-lo > 1 {
			t.Errorf("eps 0 must balance perfectly: loads %v", loads)
		}
	}
}

// Without a binding cap, bounded loads place every key where the ring does.
func TestBoundedMatchesRingWhenCapNeverBinds(t *testing.T) {
	r := build(200, XXHash, names(4)...)
	b := NewBounded(r, 10)
	for _, k := range keys(5000) {
		if got, want := b.Place(k), r.GetNode(k); got != want {
			t.Fatalf("%s: bounded %s, ring %s", k, got, want)
		}
	}
}

// A full node sends the key on clockwise: to the first node after it in ring
// order (GetN order) that has room, not to just any node with room.
func TestBoundedOverflowWalksClockwise(t *testing.T) {
	r := build(1, XXHash, names(4)...)
	for _, k := range keys(50) {
		order := r.GetN(k, 4)
		b := NewBounded(r, 0)
		// 7 keys placed: the next key's cap is ceil(8/4) = 2. Only the third and
		// fourth nodes clockwise from k have room.
		b.load = map[string]int{order[0]: 2, order[1]: 2, order[2]: 1, order[3]: 2}
		if c := b.Capacity(); c != 2 {
			t.Fatalf("Capacity = %d, want 2", c)
		}
		if got := b.Place(k); got != order[2] {
			t.Fatalf("%s: placed on %s, want %s (ring order %v)", k, got, order[2], order)
		}
		b.Remove(order[0])
		if got := b.Place(k); got != order[0] {
			t.Fatalf("%s: after Remove(%s) placed on %s", k, order[0], got)
		}
	}
}

func TestBoundedEmptyRingAndBadEpsilon(t *testing.T) {
	b := NewBounded(New(10), 0.25)
	if b.Place("k") != "" || b.Capacity() != 0 {
		t.Error("empty ring should place nothing")
	}
	b.Remove("ghost") // no-op
	defer func() {
		if recover() == nil {
			t.Error("NewBounded(NaN) did not panic")
		}
	}()
	NewBounded(New(10), math.NaN())
}

func TestJumpMovesOnlyToTheNewBucket(t *testing.T) {
	ks := keys(20_000)
	for n := 1; n < 12; n++ {
		moved := 0
		for _, k := range ks {
			a, b := JumpString(k, n), JumpString(k, n+1)
			if a < 0 || a >= n {
				t.Fatalf("JumpString(%s, %d) = %d", k, n, a)
			}
			if a != b {
				moved++
				if b != n {
					t.Fatalf("%s moved %d -> %d growing %d -> %d buckets", k, a, b, n, n+1)
				}
			}
		}
		frac, ideal := float64(moved)/float64(len(ks)), 1/float64(n+1)
		if math.Abs(frac-ideal) > 0.02 {
			t.Errorf("%d -> %d buckets moved %.3f, want about %.3f", n, n+1, frac, ideal)
		}
	}
	if Jump(42, 0) != -1 || Jump(42, 1) != 0 {
		t.Error("Jump edge cases")
	}
}

// NewBounded says loads of nodes that left the ring are ignored: after a node
// leaves, the cap must follow the mean of the nodes still on the ring, not a
// mean inflated by keys counted on a node that is gone.
func TestBoundedCapIgnoresNodesThatLeft(t *testing.T) {
	r := build(50, CRC32, names(4)...)
	b := NewBounded(r, 0)
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
	if limit := int(math.Ceil(float64(onRing) / float64(r.Len()))); hi > limit {
		t.Errorf("ε=0: max load %d over ceil(mean) %d of the %d nodes on the ring (loads %v)", hi, limit, r.Len(), loads)
	}
	if c, want := b.Capacity(), int(math.Ceil(float64(onRing+1)/float64(r.Len()))); c != want {
		t.Errorf("Capacity = %d, want %d from the nodes on the ring", c, want)
	}
}

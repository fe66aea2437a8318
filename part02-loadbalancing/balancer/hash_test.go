package balancer

import (
	"fmt"
	"testing"

	"github.com/cespare/xxhash/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func user(i int) string { return fmt.Sprintf("user-%d", i) }

// The same key always reaches the same backend, and 10,000 keys spread over
// four backends within ±15% of a quarter each.
func TestConsistentHashIsStickyAndSpread(t *testing.T) {
	bs := backends(1, 1, 1, 1)
	p := newPool(t, NewConsistentHash(bs, 0, nil), bs...)
	first := map[string]string{}
	got := counts(t, p, 10_000, func(i int) string { return user(i) })
	for name, c := range got {
		assert.InDelta(t, 2500, c, 0.15*2500, name)
	}
	for i := range 10_000 {
		b, err := p.Pick(user(i))
		require.NoError(t, err)
		first[user(i)] = b.Name
	}
	for range 3 {
		for i := range 10_000 {
			b, _ := p.Pick(user(i))
			require.Equal(t, first[user(i)], b.Name, user(i))
		}
	}
}

// Ejecting a backend moves only its own keys, and they come back when it
// is readmitted; requests without a key fall back to round robin.
func TestConsistentHashEjection(t *testing.T) {
	bs := backends(1, 1, 1, 1)
	p := newPool(t, NewConsistentHash(bs, 0, nil), bs...)
	before := map[string]*Backend{}
	for i := range 5000 {
		before[user(i)], _ = p.Pick(user(i))
	}
	p.SetHealthy(bs[2], false)
	moved := 0
	for i := range 5000 {
		b, err := p.Pick(user(i))
		require.NoError(t, err)
		require.NotEqual(t, bs[2], b)
		if before[user(i)] != bs[2] {
			assert.Same(t, before[user(i)], b, "a key of a healthy backend stays put")
		} else {
			moved++
		}
	}
	assert.InDelta(t, 1250, moved, 0.15*1250)
	p.SetHealthy(bs[2], true)
	for i := range 5000 {
		b, _ := p.Pick(user(i))
		assert.Same(t, before[user(i)], b, "back home after readmission")
	}
	assert.Equal(t, map[string]int{"b1": 25, "b2": 25, "b3": 25, "b4": 25}, counts(t, p, 100, nil))
}

// Adding a fifth backend moves about 1/5 of the keys with consistent
// hashing, and about 4/5 with hash mod N: the FAQ's "minimizes remapping",
// measured. "Regardless of cluster size changes" is too strong: the keys
// the new backend takes over do move.
func TestConsistentHashMovesAboutOneNth(t *testing.T) {
	const keys = 20_000
	four, five := backends(1, 1, 1, 1), backends(1, 1, 1, 1, 1)
	p4, p5 := newPool(t, NewConsistentHash(four, 0, nil), four...), newPool(t, NewConsistentHash(five, 0, nil), five...)
	movedRing, movedMod := 0, 0
	for i := range keys {
		k := user(i)
		b4, err := p4.Pick(k)
		require.NoError(t, err)
		b5, err := p5.Pick(k)
		require.NoError(t, err)
		if b4.Name != b5.Name {
			movedRing++
		}
		h := xxhash.Sum64String(k)
		if h%4 != h%5 {
			movedMod++
		}
	}
	assert.InDelta(t, 0.20, float64(movedRing)/keys, 0.03, "ring: about 1/(N+1)")
	assert.InDelta(t, 0.80, float64(movedMod)/keys, 0.02, "mod N: about N/(N+1)")
	assert.Equal(t, movedRing, MovedKeys(keys, 4, 5, true))
	assert.Equal(t, movedMod, MovedKeys(keys, 4, 5, false))
}

// IP hash: every user behind one office NAT has the same source IP, so they
// all land on one backend, whatever their number.
func TestIPHashSendsAWholeNATToOneBackend(t *testing.T) {
	bs := backends(1, 1, 1, 1)
	p := newPool(t, NewConsistentHash(bs, 0, nil), bs...)
	got := counts(t, p, 1000, func(int) string { return "203.0.113.7" })
	assert.Len(t, got, 1, "1,000 users, one NAT address, one backend: %v", got)
}
